"""Offline, deterministic datasets: nothing is downloaded at run time.

Each loader returns a `Dataset` of float32 arrays already split into train/validation/test with a fixed
seed. Images are NCHW (the ONNX layout); `params.flatten` gives flat vectors for dense networks.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fpgadl.core.errors import UsageError


@dataclass
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int  # 0 for regression / reconstruction targets

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def n_out(self) -> int:
        """Width of the network's output: one logit per class, or one value per target element."""
        return self.n_classes or int(np.prod(self.y_train.shape[1:], dtype=np.int64))


DATASETS: dict[str, Callable[..., tuple[np.ndarray, np.ndarray, int]]] = {}
# Datasets that are a whole finite domain (a truth table): every split is the full set, so the test split,
# and with it every emulated stage, covers all 2^n inputs.
UNSPLIT: set[str] = set()


def register_dataset(name: str, unsplit: bool = False):
    def wrap(fn):
        DATASETS[name] = fn
        if unsplit:
            UNSPLIT.add(name)
        return fn

    return wrap


@register_dataset("digits")
def _digits(flatten: bool = False, seed: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """sklearn's bundled 8x8 digits (1,797 images), pixel values scaled from 0..16 to 0..1."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None, :, :]
    if flatten:
        x = x.reshape(len(x), -1)
    return x, d.target.astype(np.int64), 10


def split(x: np.ndarray, y: np.ndarray, val_fraction: float, test_fraction: float, seed: int):
    """Shuffled split, stratified for integer labels, deterministic for a seed."""
    from sklearn.model_selection import train_test_split

    stratify = y if y.dtype.kind in "iu" and y.ndim == 1 else None
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=stratify
    )
    stratify = y_rest if stratify is not None else None
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=val_fraction / (1 - test_fraction), random_state=seed, stratify=stratify
    )
    return x_train, y_train, x_val, y_val, x_test, y_test


@functools.lru_cache(maxsize=8)
def _generate(name: str, params_json: str):
    """Generated data is deterministic: make it once per process (the arrays are never written to)."""
    x, y, n_classes = DATASETS[name](**json.loads(params_json))
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y, n_classes


def load_dataset(
    name: str,
    *,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    subset: int | None = None,
    seed: int = 0,
    params: dict | None = None,
) -> Dataset:
    if name not in DATASETS:
        raise UsageError(f"unknown dataset {name!r}; valid: {', '.join(sorted(DATASETS))}")
    x, y, n_classes = _generate(name, json.dumps(params or {}, sort_keys=True))
    if name in UNSPLIT:
        return Dataset(name, x, y, x, y, x, y, n_classes=n_classes)
    if subset is not None and subset < len(x):
        idx = np.random.default_rng(seed).permutation(len(x))[:subset]
        x, y = x[idx], y[idx]
    parts = split(x, y, val_fraction, test_fraction, seed)
    return Dataset(name, *parts, n_classes=n_classes)


@register_dataset("mnist1d")
def _mnist1d(
    layout: str = "channels", step_features: int = 1, num_samples: int = 5000, seed: int = 42
) -> tuple[np.ndarray, np.ndarray, int]:
    """MNIST-1D (Greydanus 2020), generated locally from the package's built-in templates.

    `mnist1d.data.make_dataset` builds the 40-sample signals in code (no download; only `get_dataset`
    fetches the published pickle). With the default seed the samples are those of the paper's data.
    layout: `channels` (N, 1, 40) for Conv1d, `flat` (N, 40) for dense nets, `sequence`
    (N, 40 / step_features, step_features) batch-first for recurrent nets.
    """
    import random

    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.seed = num_samples, seed
    # make_dataset reseeds the global generators; keep the caller's streams untouched.
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    x = np.concatenate([d["x"], d["x_test"]]).astype(np.float32)
    y = np.concatenate([d["y"], d["y_test"]]).astype(np.int64)
    if layout == "channels":
        x = x[:, None, :]
    elif layout == "sequence":
        if x.shape[1] % step_features:
            raise ValueError(f"step_features={step_features} does not divide the signal length {x.shape[1]}")
        x = x.reshape(len(x), -1, step_features)
    elif layout != "flat":
        raise ValueError(f"layout {layout!r} (valid: channels, flat, sequence)")
    return x, y, 10


@register_dataset("linreg")
def _linreg(
    n_samples: int = 2000, n_features: int = 8, noise: float = 0.05, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, int]:
    """Synthetic linear regression y = x.w + b + noise, x uniform in [-1, 1): the single-layer baseline."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(-1, 1, size=(n_features, 1))
    b = rng.uniform(-0.5, 0.5)
    x = rng.uniform(-1, 1, size=(n_samples, n_features))
    y = x @ w + b + noise * rng.standard_normal((n_samples, 1))
    return x.astype(np.float32), y.astype(np.float32), 0


@register_dataset("digits-recon")
def _digits_recon(flatten: bool = True) -> tuple[np.ndarray, np.ndarray, int]:
    """Digits as their own targets: reconstruction for (denoising) autoencoders."""
    x, _, _ = _digits(flatten=flatten)
    return x, x.copy(), 0


@register_dataset("digits-latent")
def _digits_latent(latent_dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """GAN data: x are latent vectors z ~ N(0, 1) (what the deployed generator sees), y are real digits.

    The pairing is arbitrary: the adversarial trainer draws fresh noise and uses y as the real samples;
    x_test is the fixed set of latents every stage (torch, onnxruntime, csim) is compared on.
    """
    images, _, _ = _digits()
    z = np.random.default_rng(seed).standard_normal((len(images), latent_dim))
    return z.astype(np.float32), images, 0


@register_dataset("cartpole")
def _cartpole(n_samples: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """CartPole states visited by a noisy balancing controller; y is that controller's action (0/1).

    The Q-network is trained by interacting with `fpgadl.ml.cartpole.CartPole`; these states are what the
    deployed network is compared on across stages, and the labels give a policy-agreement score.
    """
    from fpgadl.ml.cartpole import collect_states

    x, y = collect_states(n_samples, seed)
    return x, y, 2


# Two-input logic functions of the threshold-logic recipes; `not` negates the first input.
LOGIC_FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "and": lambda x: x.all(1),
    "or": lambda x: x.any(1),
    "nand": lambda x: ~x.all(1),
    "nor": lambda x: ~x.any(1),
    "not": lambda x: ~x[:, 0],
    "xor": lambda x: x.sum(1) % 2 == 1,
}


DEFAULT_LOGIC_FUNCTIONS = ("and", "or", "not", "nand", "xor")


@register_dataset("truth-table", unsplit=True)
def _truth_table(
    n_inputs: int = 2, functions: tuple[str, ...] = DEFAULT_LOGIC_FUNCTIONS
) -> tuple[np.ndarray, np.ndarray, int]:
    """All 2^n binary inputs (0/1, first input most significant) and one 0/1 target column per function
    (`xor` is the parity of the inputs). Every split is the whole table."""
    unknown = [f for f in functions if f not in LOGIC_FUNCTIONS]
    if unknown:
        raise UsageError(f"truth-table functions {unknown}: valid: {', '.join(LOGIC_FUNCTIONS)}")
    bits = (np.arange(2**n_inputs)[:, None] >> np.arange(n_inputs)[::-1]) & 1
    y = np.stack([LOGIC_FUNCTIONS[f](bits.astype(bool)) for f in functions], axis=1)
    return bits.astype(np.float32), y.astype(np.float32), 0
