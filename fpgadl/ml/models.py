"""The architectures a recipe can name: model builders registered by the zoo, looked up by `model.arch`.

A builder is `build(params: dict, quant: QuantConfig, input_shape: tuple, n_out: int) -> nn.Module`.
Only names listed in `fpgadl.ml.catalog` (front end, exactness facts) can be registered. The flow builds
models from here and never imports the zoo; `fpgadl.api` imports `fpgadl.zoo`, which registers everything.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from fpgadl.core.errors import UsageError
from fpgadl.ml.catalog import CATALOG
from fpgadl.ml.recipes import QuantConfig

Builder = Callable[[dict, QuantConfig, tuple, int], torch.nn.Module]


ARCHITECTURES: dict[str, Builder] = {}


def register_architecture(name: str) -> Callable[[Builder], Builder]:
    if name not in CATALOG:
        raise ValueError(f"architecture {name!r} is not in fpgadl.ml.catalog.CATALOG; add its facts there first")

    def wrap(fn: Builder) -> Builder:
        if name in ARCHITECTURES:
            raise ValueError(f"architecture {name!r} registered twice")
        ARCHITECTURES[name] = fn
        return fn

    return wrap


def build_model(arch: str, params: dict, quant: QuantConfig, input_shape: tuple, n_out: int) -> torch.nn.Module:
    if arch not in ARCHITECTURES:
        raise UsageError(f"unknown architecture {arch!r}; valid: {', '.join(sorted(ARCHITECTURES))}")
    try:
        return ARCHITECTURES[arch](dict(params), quant, tuple(input_shape), n_out)
    except TypeError as e:
        raise UsageError(f"architecture {arch!r}: bad model.params ({e})") from e
