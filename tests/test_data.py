"""Offline datasets: shapes, determinism, and what each one's x_test is."""

from __future__ import annotations

import numpy as np
import pytest

from fpgadl.core.errors import UsageError
from fpgadl.ml.datasets import DATASETS, load_dataset


def test_registry_holds_the_zoo_datasets():
    assert {"digits", "mnist1d", "linreg", "digits-recon", "digits-latent", "cartpole"} <= set(DATASETS)


def test_unknown_dataset_names_the_valid_ones():
    with pytest.raises(UsageError, match="mnist1d"):
        load_dataset("nope")


def test_mnist1d_matches_the_package_generator_and_leaves_global_rng_alone():
    from mnist1d.data import get_dataset_args, make_dataset

    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    x, y, n = DATASETS["mnist1d"](layout="flat")
    assert np.array_equal(np.random.get_state()[1], before)
    ref = make_dataset(get_dataset_args())
    assert n == 10 and x.shape == (5000, 40)
    assert np.array_equal(x[:4000], ref["x"].astype(np.float32)) and np.array_equal(y[4000:], ref["y_test"])
    # Standardised as in the paper.
    assert abs(float(x.mean())) < 1e-3 and abs(float(x.std()) - 1) < 1e-3


def test_linreg_is_a_noisy_linear_target():
    d = load_dataset("linreg")
    assert d.n_classes == 0 and d.n_out == 1 and d.input_shape == (8,)
    a = np.c_[d.x_train, np.ones(len(d.x_train))]
    coef, *_ = np.linalg.lstsq(a, d.y_train, rcond=None)
    residual = d.y_test - np.c_[d.x_test, np.ones(len(d.x_test))] @ coef
    assert 0.04 < float(residual.std()) < 0.06  # the generating noise is 0.05


def test_reconstruction_and_gan_datasets():
    rec = load_dataset("digits-recon")
    assert np.array_equal(rec.x_test, rec.y_test) and rec.n_out == 64
    gan = load_dataset("digits-latent", params={"latent_dim": 16})
    assert gan.input_shape == (16,) and gan.y_test.shape[1:] == (1, 8, 8) and gan.n_out == 64
    assert abs(float(gan.x_train.std()) - 1) < 0.05


def test_cartpole_states_are_normalised_observations_with_actions():
    d = load_dataset("cartpole")
    assert d.input_shape == (4,) and d.n_classes == 2
    assert set(np.unique(d.y_train)) == {0, 1}
    assert float(np.abs(d.x_train).max()) <= 1.2  # inside the termination limits, scaled to ~[-1, 1]
