"""The model zoo: Brevitas QAT model builders, looked up by a recipe's `model.arch`.

A builder is `build(params: dict, quant: QuantConfig, input_shape: tuple, n_out: int) -> nn.Module`,
registered under its architecture name. Every model starts with an input quantizer (the FPGA's input
port type) and ends in a float output (the last layer's accumulator, dequantized).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from fpgadl.core.errors import UsageError
from fpgadl.ml.recipes import QuantConfig

ARCHITECTURES: dict[str, Callable[..., torch.nn.Module]] = {}


def register(name: str):
    def wrap(fn):
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


def xavier_init(model: torch.nn.Module) -> torch.nn.Module:
    """Xavier/Glorot uniform weights and zero biases for every linear and conv layer."""
    for m in model.modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d)):
            torch.nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                torch.nn.init.zeros_(m.bias)
    return model


# Builders register themselves on import.
from fpgadl.zoo import (  # noqa: E402, F401
    autoencoder,
    cnn,
    dbn,
    dqn,
    gan,
    logic,
    mlp,
    recurrent,
    sae,
)
