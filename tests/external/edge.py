"""Edge cases users hit: pre-processing before the input quantizer, an activation-only model, a 784-fan-in
bipolar (1-bit weight) layer, depthwise convolution, a MobileNet-like net with an op hls4ml lacks (Trunc),
lookup-table activations. Builders return calibrated models in eval mode; seeds are fixed."""

from __future__ import annotations

import torch
from brevitas import nn as qnn
from brevitas.core.restrict_val import RestrictValueType
from brevitas.quant import Int8ActPerTensorFixedPoint as I8A
from brevitas.quant import Int8WeightPerTensorFixedPoint as I8W
from brevitas.quant import Uint8ActPerTensorFixedPoint as U8A
from brevitas_examples.bnn_pynq.models.common import CommonActQuant, CommonWeightQuant
from torch import nn

from tests.external.common import calibrate, seeded
from tests.external.tutorial import Chain, _inp, _qconv, _qlin, _relu, pixel_sample, signed_sample

CIFAR_MEAN = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
CIFAR_STD = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)


def pre_2x_minus_1(x):
    return 2.0 * x - torch.tensor([1.0])


def pre_div_255(x):
    return x / 255.0


def pre_mean_std(x):
    return (x - CIFAR_MEAN) / CIFAR_STD


def preprocessed_mlp(seed: int = 7):
    """bnn_pynq-style `2x - 1` on [0, 1] pixels, then an 8-bit signed input quantizer and a small MLP."""
    seeded(seed)
    m = Chain(nn.Flatten(), _inp(), _qlin(16, 16), _relu(), _qlin(16, 5), pre=pre_2x_minus_1)
    return calibrate(m, pixel_sample((16,)), seed)


def preprocessed_cnn(kind: str, seed: int = 8):
    """x/255 on 0..255 pixels (unsigned input quantizer), or CIFAR mean/std (signed), then a small CNN."""
    seeded(seed)
    ch = 3 if kind == "mean_std" else 1
    pre = pre_mean_std if kind == "mean_std" else pre_div_255
    top = 1.0 if kind == "mean_std" else 255.0
    mods = [_inp(kind == "mean_std"), _qconv(ch, 4, padding=1), _relu(), nn.MaxPool2d(2), nn.Flatten()]
    mods.append(qnn.QuantLinear(4 * 3 * 3, 5, bias=True, weight_quant=I8W))
    return calibrate(Chain(*mods, pre=pre), pixel_sample((ch, 6, 6), top), seed)


def activation_only(seed: int = 9):
    seeded(seed)
    m = Chain(qnn.QuantIdentity(act_quant=I8A, return_quant_tensor=True), qnn.QuantReLU(act_quant=U8A))
    return calibrate(m, signed_sample((8,)), seed)


def bipolar_784(act_bits: int = 2, seed: int = 10):
    """One bipolar-weight (1-bit) QuantLinear with fan-in 784 on a bnn_pynq-style 2-bit input: the
    accumulator spans +-784, far beyond hls4ml's default ap_fixed<16,6>."""
    seeded(seed)
    m = Chain(
        nn.Flatten(),
        qnn.QuantIdentity(act_quant=CommonActQuant, bit_width=act_bits),
        qnn.QuantLinear(784, 10, bias=False, weight_quant=CommonWeightQuant, weight_bit_width=1),
    )
    with torch.no_grad():
        m.mods[2].weight.uniform_(-1, 1)
    return calibrate(m, lambda n: torch.rand(n, 1, 28, 28) * 2 - 1, seed)


def depthwise(seed: int = 11):
    seeded(seed)
    mods = [_inp(), _qconv(2, 4, k=1), _relu(), _qconv(4, 4, padding=1, groups=4), _relu(), nn.Flatten()]
    mods.append(qnn.QuantLinear(4 * 5 * 5, 5, bias=True, weight_quant=I8W))
    return calibrate(Chain(*mods), signed_sample((2, 5, 5)), seed)


def _dw_separable(cin, cout, stride):
    w4 = {"weight_bit_width": 4, "weight_quant": I8W, "return_quant_tensor": True, "bias": False}
    a4 = {"act_quant": U8A, "bit_width": 4, "return_quant_tensor": True}
    return [
        qnn.QuantConv2d(cin, cin, 3, stride=stride, padding=1, groups=cin, **w4),
        nn.BatchNorm2d(cin),
        qnn.QuantReLU(**a4),
        qnn.QuantConv2d(cin, cout, 1, **w4),
        nn.BatchNorm2d(cout),
        qnn.QuantReLU(**a4),
    ]


def mobilenet_like(seed: int = 12):
    """FINN's 4-bit MobileNet-v1 pattern in miniature: depthwise-separable blocks, a TruncAvgPool2d head."""
    seeded(seed)
    mods = [
        _inp(),
        qnn.QuantConv2d(3, 8, 3, stride=2, padding=1, weight_quant=I8W, bias=False, return_quant_tensor=True),
        nn.BatchNorm2d(8),
        _relu(),
    ]
    mods += _dw_separable(8, 16, 1) + _dw_separable(16, 16, 2)
    mods += [qnn.TruncAvgPool2d(4, bit_width=4, return_quant_tensor=True), nn.Flatten()]
    mods.append(qnn.QuantLinear(16, 10, bias=True, weight_quant=I8W))
    return calibrate(Chain(*mods), signed_sample((3, 16, 16)), seed)


def lut_head(seed: int = 13):
    """A QuantSigmoid output: a lookup table in the firmware, never equal to torch."""
    seeded(seed)
    m = Chain(_inp(), _qlin(8, 8), qnn.QuantSigmoid(act_quant=U8A, return_quant_tensor=False))
    return calibrate(m, signed_sample((8,)), seed)


def conv1d(seed: int = 14):
    seeded(seed)
    mods = [_inp(), qnn.QuantConv1d(2, 4, 3, bias=True, weight_quant=I8W, return_quant_tensor=True), _relu()]
    mods += [nn.Flatten(), qnn.QuantLinear(4 * 8, 5, bias=True, weight_quant=I8W)]
    return calibrate(Chain(*mods), signed_sample((2, 10)), seed)


def pot_restricted_relu(seed: int = 15):
    """A QuantReLU whose learned scale is restricted to powers of two (RestrictValueType.POWER_OF_TWO)."""
    seeded(seed)
    m = Chain(
        _inp(),
        _qlin(8, 8, bias=False),
        qnn.QuantReLU(
            bit_width=4, restrict_scaling_type=RestrictValueType.POWER_OF_TWO, max_val=4.0, return_quant_tensor=True
        ),
        _qlin(8, 4, bias=False),
    )
    return calibrate(m, signed_sample((8,)), seed)
