"""Tutorial-style compositions of Brevitas building blocks, written the way Brevitas' own tutorials and
most users write them: default float biases, fixed-point (power-of-two) quantizers from `brevitas.quant`,
BatchNorm between layers, residual adds, concatenation, pooling, pre-processing before the input quantizer.

Every builder returns a calibrated model in eval mode (see `common.calibrate`); seeds are fixed.
"""

from __future__ import annotations

import torch
from brevitas import nn as qnn
from brevitas.quant import Int8ActPerTensorFixedPoint as I8A
from brevitas.quant import Int8WeightPerTensorFixedPoint as I8W
from brevitas.quant import Int16Bias
from brevitas.quant import Uint8ActPerTensorFixedPoint as U8A
from torch import nn

from tests.external.common import calibrate, seeded


def signed_sample(shape):
    return lambda n: torch.randn(n, *shape) * 2


def pixel_sample(shape, top: float = 1.0):
    return lambda n: torch.rand(n, *shape) * top


class Chain(nn.Module):
    """Modules applied in order, with an optional float pre-processing function before the first one."""

    def __init__(self, *mods: nn.Module, pre=None):
        super().__init__()
        self.mods = nn.ModuleList(mods)
        self.pre = pre

    def forward(self, x):
        if self.pre is not None:
            x = self.pre(x)
        for m in self.mods:
            x = m(x)
        return x


def _qlin(i, o, bias=True, **kw):
    return qnn.QuantLinear(i, o, bias=bias, weight_quant=I8W, return_quant_tensor=True, **kw)


def _qconv(i, o, k=3, bias=True, **kw):
    return qnn.QuantConv2d(i, o, k, bias=bias, weight_quant=I8W, return_quant_tensor=True, **kw)


def _relu():
    return qnn.QuantReLU(act_quant=U8A, return_quant_tensor=True)


def _inp(signed=True):
    return qnn.QuantIdentity(act_quant=I8A if signed else U8A, return_quant_tensor=True)


def _done(model, sample, seed):
    return calibrate(model, sample, seed)


def mlp(bias: bool | str = True, seed: int = 1, per_channel: bool = False, bn: bool = False):
    """QuantIdentity -> QuantLinear -> [BN] -> QuantReLU -> QuantLinear; bias True (float), False, 'int16'."""
    seeded(seed)
    kw = {"weight_scaling_per_output_channel": True} if per_channel else {}
    if bias == "int16":
        kw["bias_quant"] = Int16Bias
    mods = [_inp(), _qlin(16, 32, bias=bool(bias), **kw)]
    if bn:
        mods.append(nn.BatchNorm1d(32))
    mods += [_relu(), _qlin(32, 10, bias=bool(bias), **kw)]
    return _done(Chain(*mods), signed_sample((16,)), seed)


def mlp_float_scales(seed: int = 2):
    """Brevitas' defaults everywhere: Int8WeightPerTensorFloat weights, Int8ActPerTensorFloat acts."""
    seeded(seed)
    m = Chain(
        qnn.QuantIdentity(return_quant_tensor=True),
        qnn.QuantLinear(16, 32, bias=True, return_quant_tensor=True),
        qnn.QuantReLU(return_quant_tensor=True),
        qnn.QuantLinear(32, 10, bias=True),
    )
    return _done(m, signed_sample((16,)), seed)


def cnn(bias: bool | str = True, bn: bool = False, seed: int = 3, signed_input: bool = True, pre=None):
    """QuantIdentity -> conv -> [BN] -> QuantReLU -> MaxPool -> conv -> QuantReLU -> flatten -> QuantLinear."""
    seeded(seed)
    kw = {"bias_quant": Int16Bias} if bias == "int16" else {}
    mods = [_inp(signed_input), _qconv(1, 4, padding=1, bias=bool(bias), **kw)]
    if bn:
        mods.append(nn.BatchNorm2d(4))
    mods += [_relu(), nn.MaxPool2d(2), _qconv(4, 8, bias=bool(bias), **kw), _relu(), nn.Flatten()]
    mods.append(qnn.QuantLinear(8 * 2 * 2, 5, bias=bool(bias), weight_quant=I8W, **kw))
    sample = signed_sample((1, 8, 8)) if signed_input else pixel_sample((1, 8, 8), 255.0 if pre else 1.0)
    return _done(Chain(*mods, pre=pre), sample, seed)


class Residual(nn.Module):
    """y = q(conv2(relu(conv1(x)))) + relu(conv1(x)): both branches on power-of-two grids."""

    def __init__(self, conv: bool):
        super().__init__()
        self.inp = _inp()
        if conv:
            self.l1, self.l2 = _qconv(2, 4, padding=1), _qconv(4, 4, padding=1)
            self.head = qnn.QuantLinear(4 * 6 * 6, 5, bias=True, weight_quant=I8W)
        else:
            self.l1, self.l2 = _qlin(16, 16), _qlin(16, 16)
            self.head = qnn.QuantLinear(16, 5, bias=True, weight_quant=I8W)
        self.r1 = _relu()
        self.q2 = _inp()
        self.q_sum = _inp()

    def forward(self, x):
        a = self.r1(self.l1(self.inp(x)))
        # float add of the two quantized branches (QuantTensor + QuantTensor insists on equal scales)
        y = self.q_sum(self.q2(self.l2(a)).value + a.value)
        return self.head(torch.flatten(y, 1))


def residual(conv: bool, seed: int = 4):
    seeded(seed)
    return _done(Residual(conv), signed_sample((2, 6, 6) if conv else (16,)), seed)


class Concat(nn.Module):
    """Two conv branches concatenated on the channel axis, then a linear head."""

    def __init__(self):
        super().__init__()
        self.inp = _inp()
        self.a, self.b = _qconv(1, 3, padding=1), _qconv(1, 2, k=1)
        self.ra, self.rb = _relu(), _relu()
        self.q = _inp()
        self.head = qnn.QuantLinear(5 * 6 * 6, 4, bias=True, weight_quant=I8W)

    def forward(self, x):
        x = self.inp(x)
        y = torch.cat([self.ra(self.a(x)).value, self.rb(self.b(x)).value], dim=1)
        return self.head(torch.flatten(self.q(y), 1))


def concat(seed: int = 5):
    seeded(seed)
    return _done(Concat(), signed_sample((1, 6, 6)), seed)


def pooled(kind: str, seed: int = 6):
    """conv -> QuantReLU -> a pooling layer -> QuantIdentity -> flatten -> QuantLinear.

    kind: 'avg_quant' (nn.AvgPool2d on a QuantTensor), 'avg' (nn.AvgPool2d on a float tensor),
    'gap' (AdaptiveAvgPool2d(1), a 4x4 window), 'trunc' (Brevitas' TruncAvgPool2d: a Trunc node)."""
    seeded(seed)
    relu = qnn.QuantReLU(act_quant=U8A, return_quant_tensor=kind in ("avg_quant", "trunc"))
    pool = {
        "avg_quant": nn.AvgPool2d(2),
        "avg": nn.AvgPool2d(2),
        "gap": nn.AdaptiveAvgPool2d(1),
        "trunc": qnn.TruncAvgPool2d(2, bit_width=8, return_quant_tensor=True),
    }[kind]
    n = 4 if kind == "gap" else 4 * 2 * 2
    mods = [_inp(), _qconv(1, 4, padding=1), relu, pool, _inp(), nn.Flatten(), qnn.QuantLinear(n, 5, weight_quant=I8W)]
    return _done(Chain(*mods), signed_sample((1, 4, 4)), seed)
