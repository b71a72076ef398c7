"""Offline, deterministic datasets: nothing is downloaded at run time.

Each loader returns a `Dataset` of float32 arrays already split into train/validation/test with a fixed
seed. Images are NCHW (the ONNX layout); `params.flatten` gives flat vectors for dense networks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fpgadl.errors import UsageError


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


DATASETS: dict[str, Callable[..., tuple[np.ndarray, np.ndarray, int]]] = {}


def register_dataset(name: str):
    def wrap(fn):
        DATASETS[name] = fn
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
    x, y, n_classes = DATASETS[name](**(params or {}))
    if subset is not None and subset < len(x):
        idx = np.random.default_rng(seed).permutation(len(x))[:subset]
        x, y = x[idx], y[idx]
    parts = split(x, y, val_fraction, test_fraction, seed)
    return Dataset(name, *parts, n_classes=n_classes)
