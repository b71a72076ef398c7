"""Brevitas quantizers chosen from a recipe's `quant:` block.

`power_of_two` uses Brevitas' *FixedPoint quantizers (scales 2^-k, exactly representable in ap_fixed, so
every stage can be bit-exact); `float` uses per-tensor float scales, which the tool reports as inexact.
Biases are quantized at the accumulator's scale (input scale x weight scale), so they are exact too
(with power-of-two scales; float-scaled models keep float biases).
"""

from __future__ import annotations

from brevitas.quant import (
    Int8ActPerTensorFixedPoint,
    Int8ActPerTensorFloat,
    Int8WeightPerTensorFixedPoint,
    Int8WeightPerTensorFloat,
    Int16Bias,
    Uint8ActPerTensorFixedPoint,
    Uint8ActPerTensorFloat,
)

from fpgadl.ml.recipes import QuantConfig


def weight_quant(q: QuantConfig, bits: int | None = None):
    base = Int8WeightPerTensorFixedPoint if q.scaling == "power_of_two" else Int8WeightPerTensorFloat
    return base.let(bit_width=bits or q.weight_bits)


def act_quant(q: QuantConfig, signed: bool = True, bits: int | None = None):
    if q.scaling == "power_of_two":
        base = Int8ActPerTensorFixedPoint if signed else Uint8ActPerTensorFixedPoint
    else:
        base = Int8ActPerTensorFloat if signed else Uint8ActPerTensorFloat
    return base.let(bit_width=bits or q.act_bits)


def input_quant(q: QuantConfig):
    return act_quant(q, signed=True, bits=q.input_bits)


def bias_quant(q: QuantConfig):
    # With float scales the accumulator scale is not a power of two either, and hls4ml's QONNX flow
    # fails on such quantized biases (IndexError in its precision inference): keep those biases float.
    if q.scaling != "power_of_two":
        return None
    return Int16Bias.let(bit_width=q.bias_bits)
