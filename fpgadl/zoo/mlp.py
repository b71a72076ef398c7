"""Dense networks: MLP / back-propagation nets (ReLU, sigmoid, tanh) and single-layer regression."""

from __future__ import annotations

import math

import torch

from fpgadl.ml.recipes import QuantConfig
from fpgadl.zoo import register, xavier_init
from fpgadl.zoo.layers import quant_activation, quant_input, quant_linear


@register("mlp")
def build_mlp(params: dict, quant: QuantConfig, input_shape: tuple, n_out: int) -> torch.nn.Module:
    """params: hidden (list of widths), activation (relu|sigmoid|tanh), dropout (0..1)."""
    hidden = list(params.pop("hidden", [64, 32]))
    activation = params.pop("activation", "relu")
    dropout = float(params.pop("dropout", 0.0))
    if params:
        raise TypeError(f"unknown keys {sorted(params)}")
    layers: list[torch.nn.Module] = [quant_input(quant)]
    if len(input_shape) > 1:
        layers.insert(0, torch.nn.Flatten())
    width = math.prod(input_shape)
    for h in hidden:
        layers.append(quant_linear(width, h, quant, out_quant_tensor=True))
        layers.append(quant_activation(activation, quant))
        if dropout > 0:
            layers.append(torch.nn.Dropout(dropout))
        width = h
    layers.append(quant_linear(width, n_out, quant, out_quant_tensor=False))
    return xavier_init(torch.nn.Sequential(*layers))


@register("linear")
def build_linear(params: dict, quant: QuantConfig, input_shape: tuple, n_out: int) -> torch.nn.Module:
    """Softmax regression (with cross-entropy loss) or linear regression (with MSE loss): one layer."""
    return build_mlp({"hidden": [], **params}, quant, input_shape, n_out)
