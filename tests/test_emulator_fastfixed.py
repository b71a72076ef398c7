"""fastfixed's arithmetic shortcuts give exactly what the bit-level reference fixed.py gives."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fpgadl.emulator import fastfixed, fixed
from fpgadl.emulator.fixed import ROUNDING_MODES, SATURATION_MODES, FixedType

types = st.builds(
    FixedType,
    width=st.integers(1, 62),
    integer=st.integers(-12, 70),
    signed=st.booleans(),
    rounding=st.sampled_from(ROUNDING_MODES),
    saturation=st.sampled_from(SATURATION_MODES),
    saturation_bits=st.just(0),
)


def _mantissas(rng, n=4000):
    m = rng.integers(-(2**40), 2**40, n)
    m[:200] = rng.integers(-300, 300, 200)
    m[200:212] = [2**62 - 1, -(2**62), 2**63 - 1, -(2**63), 0, 1, -1, 2**61, -(2**61), 5, 2**31, -(2**31)]
    return m


def _floats(rng, t, n=4000):
    x = rng.standard_normal(n) * np.ldexp(1.0, rng.integers(-30, 60, n))
    # exact ties and near-ties of the target grid
    grid = np.round(rng.standard_normal(400) * 64) / 2
    x[:400] = np.ldexp(grid, -t.frac)
    x[400:800] = np.nextafter(x[:400], np.inf)
    x[800:811] = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-310, -1e-310, 1e300, -1e300, 2.0**-1074, 2.0**52]
    return x


@settings(max_examples=1000, deadline=None)
@given(t=types, seed=st.integers(0, 2**32 - 1), shift=st.integers(-70, 70))
def test_cast_matches_reference(t, seed, shift):
    m = _mantissas(np.random.default_rng(seed))
    frac = t.frac + shift
    assert np.array_equal(fastfixed.cast(m, frac, t), fixed.cast(m, frac, t))
    small = m[np.abs(m) < 2**61]  # without the extremes the biased-shift rounding path runs
    assert np.array_equal(fastfixed.cast(small, frac, t), fixed.cast(small, frac, t))


@settings(max_examples=1000, deadline=None)
@given(t=types, seed=st.integers(0, 2**32 - 1))
def test_from_float_matches_reference(t, seed):
    x = _floats(np.random.default_rng(seed), t)
    assert np.array_equal(fastfixed.from_float(x, t), fixed.from_float(x, t))


@pytest.mark.parametrize("saturation_bits", [1, 3])
def test_saturation_bits_use_the_reference(saturation_bits):
    t = FixedType(8, 3, True, "RND", "WRAP", saturation_bits)
    m = _mantissas(np.random.default_rng(0))
    assert np.array_equal(fastfixed.cast(m, 9, t), fixed.cast(m, 9, t))


@settings(max_examples=400, deadline=None)
@given(
    t=st.builds(
        FixedType,
        width=st.integers(1, 52),
        integer=st.integers(-12, 60),
        signed=st.booleans(),
        rounding=st.sampled_from(ROUNDING_MODES),
        saturation=st.sampled_from(SATURATION_MODES),
    ),
    dtype=st.sampled_from([np.float32, np.float64]),
    bound_bits=st.integers(0, 52),
    shift=st.integers(-30, 52),
    seed=st.integers(0, 2**32 - 1),
)
def test_cast_float_matches_reference_within_its_bound(t, dtype, bound_bits, shift, seed):
    """The float-domain cast of the GEMM epilogues, wherever float_cast_ok admits it, incl. its edge."""
    bound = (1 << bound_bits) - 1
    frac = t.frac + shift
    if not fastfixed.float_cast_ok(bound, frac, t, dtype):
        return
    rng = np.random.default_rng(seed)
    m = rng.integers(-bound, bound, 3000, endpoint=True)
    m[:4] = [bound, -bound, 0, 1]
    if shift > 0:  # exact ties of the target grid and one LSB either side
        k = rng.integers(-(bound >> shift), (bound >> shift) + 1, 1000)
        m[4:1004] = np.clip((k << shift) + (1 << (shift - 1)) + rng.integers(-1, 2, 1000), -bound, bound)
    got = fastfixed.cast_float(m.astype(dtype), frac, t)
    assert got.dtype == dtype
    assert np.array_equal(got.astype(np.int64), fixed.cast(m, frac, t))


# the types an Input layer carries and the float conversion accepts: a quantizer's, narrow, saturating
input_types = st.integers(2, 22).flatmap(
    lambda w: st.builds(
        FixedType,
        width=st.just(w),
        integer=st.integers(w - 30, w),
        signed=st.booleans(),
        rounding=st.sampled_from(["RND_CONV", "TRN", "RND"]),
        saturation=st.sampled_from(["SAT", "SAT_SYM"]),
        saturation_bits=st.just(0),
    )
)


@settings(max_examples=600, deadline=None)
@given(t=input_types, seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from([np.float32, np.float64]))
def test_float_input_conversion_matches_reference(t, seed, dtype):
    """The runner's input conversion straight into float mantissas: same values as fixed.from_float,
    for float32 and float64 inputs (ties, overflow to inf, subnormals); a NaN gives None."""
    assert fastfixed.float_input_ok(t)
    x = _floats(np.random.default_rng(seed), t)
    x[811:1211] = np.nextafter(x[:400], -np.inf)  # one ulp below the ties too
    x = x.astype(dtype)  # float32: the huge ones become inf
    x[804] = 0.0  # the NaN, checked below
    got = fastfixed.from_float_mantissas(x, t)
    assert got.dtype == dtype and np.array_equal(got.astype(np.int64), fixed.from_float(x, t))
    x[5] = np.nan
    assert fastfixed.from_float_mantissas(x, t) is None


@pytest.mark.parametrize(
    "spelling",
    [
        "ap_fixed<23,3,AP_RND_CONV,AP_SAT>",
        "ap_fixed<8,9,AP_RND_CONV,AP_SAT>",
        "ap_fixed<8,3,AP_RND_CONV,AP_WRAP>",
        "ap_fixed<8,3,AP_RND_INF,AP_SAT>",
        "ap_ufixed<1,0,AP_TRN,AP_SAT_SYM>",
    ],
)
def test_float_input_conversion_refuses_other_types(spelling):
    """Wider than 22 bits, negative frac, wrapping, other roundings, 1-bit SAT_SYM: the int64 path converts."""
    assert not fastfixed.float_input_ok(FixedType.parse(spelling))


@pytest.mark.parametrize("dtype", [np.int64, np.float32, np.float64])
def test_clip_is_np_clip(dtype):
    """fastfixed.clip (np.clip's ufunc without its wrapper) returns what np.clip returns, in place or not."""
    rng = np.random.default_rng(3)
    v = (rng.standard_normal((50, 7)) * 1000).astype(dtype)
    if dtype != np.int64:
        v[0, :3] = [np.nan, np.inf, -np.inf]
    lo, hi = dtype(-300), dtype(511)
    want = np.clip(v, lo, hi)
    got = fastfixed.clip(v, lo, hi)
    assert got.dtype == want.dtype and np.array_equal(got, want, equal_nan=True)
    buf = v.copy()
    assert fastfixed.clip(buf, lo, hi, out=buf) is buf and np.array_equal(buf, want, equal_nan=True)
