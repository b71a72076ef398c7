"""The fast engine's max over tiled pooling windows against a plain window maximum (tests/test_emulator.py
holds the pooling kernels to csim on whole models)."""

from __future__ import annotations

import numpy as np
import pytest

from fpgadl.emulator.kernels_pool import tiled_max


@pytest.mark.parametrize(
    ("shape", "pool"),
    [
        ((7, 6, 6, 4), (2, 2)),  # the CNN's
        ((5, 9, 6, 3), (3, 2)),  # odd window on one axis
        ((4, 8, 1), (4,)),  # MaxPool1D
        ((3, 4, 6, 2), (1, 3)),  # a window of one row
    ],
)
@pytest.mark.parametrize("dtype", [np.int64, np.float32])
def test_tiled_max_equals_the_window_maximum(shape, pool, dtype):
    m = np.random.default_rng(len(shape)).integers(-(2**20), 2**20, shape).astype(dtype)
    n, *spatial, chan = shape
    windows = m.reshape(n, *[x for size, k in zip(spatial, pool) for x in (size // k, k)], chan)
    want = windows.max(axis=tuple(2 + 2 * d for d in range(len(pool))))
    got = tiled_max(m, pool)
    assert got.dtype == m.dtype and got.shape == want.shape
    assert np.array_equal(got, want)
    assert not np.shares_memory(got, m)
