"""The model zoo: Brevitas QAT model builders, looked up by a recipe's `model.arch`.

A builder is `build(params: dict, quant: QuantConfig, input_shape: tuple, n_out: int) -> nn.Module`,
registered under its architecture name in `fpgadl.ml.models` (importing this package registers them all,
with the family trainers, metrics and pictures; nothing in the flow or the HLS side imports the zoo).
Every model starts with an input quantizer (the FPGA's input port type) and ends in a float output (the
last layer's accumulator, dequantized).
"""

from __future__ import annotations

import torch

from fpgadl.ml.models import ARCHITECTURES, build_model, register_architecture


def register(name: str):
    """Register a builder for recipes' `model.arch: name` (its facts are in fpgadl.ml.catalog)."""
    return register_architecture(name)


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

__all__ = ["ARCHITECTURES", "build_model", "register", "xavier_init"]
