"""Quantized building blocks shared by the zoo's builders: layers with the recipe's quantizers applied."""

from __future__ import annotations

import brevitas.nn as qnn
import torch

from fpgadl.ml.recipes import QuantConfig
from fpgadl.zoo.quant import act_quant, bias_quant, input_quant, weight_quant


def quant_input(quant: QuantConfig) -> qnn.QuantIdentity:
    """The FPGA's input port: a signed fixed-point quantizer at input_bits."""
    return qnn.QuantIdentity(act_quant=input_quant(quant), return_quant_tensor=True)


def quant_activation(kind: str, quant: QuantConfig) -> torch.nn.Module:
    if kind == "relu":
        return qnn.QuantReLU(act_quant=act_quant(quant, signed=False), return_quant_tensor=True)
    if kind == "sigmoid":
        return qnn.QuantSigmoid(act_quant=act_quant(quant, signed=False), return_quant_tensor=True)
    if kind == "tanh":
        return qnn.QuantTanh(act_quant=act_quant(quant, signed=True), return_quant_tensor=True)
    if kind == "identity":
        return qnn.QuantIdentity(act_quant=act_quant(quant, signed=True), return_quant_tensor=True)
    raise ValueError(f"activation {kind!r} (valid: relu, sigmoid, tanh, identity)")


def quant_linear(n_in: int, n_out: int, quant: QuantConfig, out_quant_tensor: bool) -> qnn.QuantLinear:
    return qnn.QuantLinear(
        n_in,
        n_out,
        bias=True,
        weight_quant=weight_quant(quant),
        bias_quant=bias_quant(quant),
        return_quant_tensor=out_quant_tensor,
    )


def quant_conv(
    dims: int,
    c_in: int,
    c_out: int,
    kernel: int,
    quant: QuantConfig,
    *,
    padding: int = 0,
    stride: int = 1,
    bias: bool = True,
    out_quant_tensor: bool = True,
) -> torch.nn.Module:
    cls = {1: qnn.QuantConv1d, 2: qnn.QuantConv2d}[dims]
    return cls(
        c_in,
        c_out,
        kernel,
        padding=padding,
        stride=stride,
        bias=bias,
        weight_quant=weight_quant(quant),
        bias_quant=bias_quant(quant) if bias else None,
        return_quant_tensor=out_quant_tensor,
    )


def dense_head(
    n_in: int, hidden: list[int], n_out: int, quant: QuantConfig, dropout: float
) -> list[torch.nn.Module]:
    """Flatten, then ReLU dense layers (with dropout) and a float output layer."""
    layers: list[torch.nn.Module] = [torch.nn.Flatten()]
    for h in hidden:
        layers += [quant_linear(n_in, h, quant, True), quant_activation("relu", quant)]
        if dropout > 0:
            layers.append(torch.nn.Dropout(dropout))
        n_in = h
    layers.append(quant_linear(n_in, n_out, quant, False))
    return layers


def take(params: dict, **defaults):
    """Pop the known keys of a builder's params (with defaults); leftovers are a usage error."""
    values = [params.pop(k, v) for k, v in defaults.items()]
    if params:
        raise TypeError(f"unknown keys {sorted(params)}; valid: {sorted(defaults)}")
    return values
