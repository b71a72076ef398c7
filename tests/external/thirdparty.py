"""Model definitions from other projects' Brevitas tests, reproduced with their quantizer settings.

hls4ml: test/pytest/test_brevitas_parsing.py (QuantModelLinear, QuantModelConv1d/2d, the upsampling
models, QuantEltwiseAddModel). FINN: tests/brevitas/test_brevitas_qlinear.py, test_brevitas_qconv2d.py
(per-channel LOG_FP weights, float bias, depthwise), test_brevitas_relu_act_export.py,
test_brevitas_scaled_qhardtanh_export.py, test_brevitas_avg_pool_export.py. FINN's tests use Brevitas'
pre-0.8 keyword spellings (`weight_quant_type=QuantType.INT`); here the same settings go through today's
keyword overrides. Sizes are reduced where FINN's are large (its 111x111x32 depthwise input).
"""

from __future__ import annotations

import torch
from brevitas import nn as qnn
from brevitas.core.restrict_val import RestrictValueType
from brevitas.core.scaling import ScalingImplType
from brevitas.quant import Int8ActPerTensorFixedPoint, Int8WeightPerTensorFixedPoint, Int8WeightPerTensorFloat
from torch import nn

from tests.external.common import calibrate, seeded
from tests.external.tutorial import pixel_sample, signed_sample

HLS4ML_QUANTS = {"fixed": Int8WeightPerTensorFixedPoint, "float": Int8WeightPerTensorFloat}


class QuantModelLinear(nn.Module):
    def __init__(self, weight_quant):
        super().__init__()
        self.lin1 = qnn.QuantLinear(4, 4, bias=False, weight_quant=weight_quant, input_quant=Int8ActPerTensorFixedPoint)
        self.relu1 = qnn.QuantReLU(act_quant=Int8ActPerTensorFixedPoint)

    def forward(self, x):
        return self.relu1(self.lin1(x))


class QuantModelConv(nn.Module):
    def __init__(self, dims: int):
        super().__init__()
        conv = (
            qnn.QuantConv2d(3, 6, 5, bias=True, weight_quant=Int8WeightPerTensorFixedPoint)
            if dims == 2
            else qnn.QuantConv1d(3, 6, 4, bias=True, weight_quant=Int8WeightPerTensorFixedPoint)
        )
        self.conv1 = conv
        self.relu1 = nn.ReLU()

    def forward(self, x):
        return self.relu1(self.conv1(x))


class QuantUpsample2DModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.identity = qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, return_quant_tensor=True)
        self.upsample = qnn.QuantUpsamplingNearest2d(scale_factor=(1, 2))
        self.relu = nn.ReLU()

    def forward(self, x):
        y = self.upsample(self.identity(x))
        return self.relu(y.value if hasattr(y, "value") else y)


class QuantEltwiseAddModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.add = qnn.QuantEltwiseAdd(input_quant=Int8ActPerTensorFixedPoint, output_quant=Int8ActPerTensorFixedPoint)

    def forward(self, x, y):
        return self.add(x, y)


def hls4ml_linear(weight: str, seed: int = 20):
    seeded(seed)
    return calibrate(QuantModelLinear(HLS4ML_QUANTS[weight]), lambda n: torch.rand(n, 4), seed)


def hls4ml_conv(dims: int, seed: int = 21):
    seeded(seed)
    shape = (3, 6, 5) if dims == 2 else (3, 5)
    return calibrate(QuantModelConv(dims), signed_sample(shape), seed)


def hls4ml_upsample(seed: int = 22):
    seeded(seed)
    return calibrate(QuantUpsample2DModel(), lambda n: torch.rand(n, 4, 6, 8), seed)


def hls4ml_eltwise_add(seed: int = 23):
    seeded(seed)
    m = QuantEltwiseAddModel()
    m.train()
    with torch.no_grad():
        for _ in range(4):
            m(torch.rand(8, 4, 4), torch.rand(8, 4, 4))
    return m.eval()


def _finn_weight_kw() -> dict:
    """FINN's per-output-channel, LOG_FP-restricted, narrow 4-bit weight settings."""
    return {
        "weight_bit_width": 4,
        "weight_scaling_impl_type": ScalingImplType.STATS,
        "weight_scaling_per_output_channel": True,
        "weight_restrict_scaling_type": RestrictValueType.LOG_FP,
        "weight_narrow_range": True,
        "weight_scaling_min_val": 2e-16,
    }


def finn_qlinear(bias: bool, seed: int = 24):
    """test_brevitas_qlinear: QuantLinear(3 -> 4), float bias, per-channel 4-bit weights, UINT4 inputs."""
    seeded(seed)
    m = qnn.QuantLinear(3, 4, bias=bias, weight_bit_width=4, weight_scaling_per_output_channel=True)
    with torch.no_grad():
        m.weight.uniform_(-1, 1)
    return calibrate(m, lambda n: torch.randint(0, 16, (n, 3)).float(), seed)


def finn_qconv2d(dw: bool, seed: int = 25):
    """test_brevitas_qconv2d at 8 channels, 12x12: depthwise 3x3 (pad 1) or pointwise 1x1, float bias."""
    seeded(seed)
    cin = 8
    kw = (
        {"groups": cin, "kernel_size": 3, "padding": 1, "out_channels": cin}
        if dw
        else {"groups": 1, "kernel_size": 1, "padding": 0, "out_channels": 16}
    )
    m = qnn.QuantConv2d(in_channels=cin, bias=True, stride=1, **kw, **_finn_weight_kw())
    with torch.no_grad():
        m.weight.copy_(torch.randint(-7, 8, m.weight.shape).float())
    return calibrate(m, lambda n: torch.rand(n, cin, 12, 12) * 2 - 1, seed)


def finn_relu(pot: bool, seed: int = 26):
    """test_brevitas_relu_act_export: QuantReLU(4 bits, max_val 1.5), LOG_FP or power-of-two scale."""
    seeded(seed)
    restrict = RestrictValueType.POWER_OF_TWO if pot else RestrictValueType.LOG_FP
    m = qnn.QuantReLU(bit_width=4, max_val=1.5, scaling_impl_type=ScalingImplType.CONST, restrict_scaling_type=restrict)
    return calibrate(m, lambda n: torch.rand(n, 15) * 2.5 - 1, seed)


def finn_hardtanh(seed: int = 27):
    """test_brevitas_scaled_qhardtanh_export: QuantHardTanh(4 bits, [-1, 1]); Brevitas picks scale 1/8."""
    seeded(seed)
    m = qnn.QuantHardTanh(bit_width=4, min_val=-1.0, max_val=1.0, scaling_impl_type=ScalingImplType.CONST)
    return calibrate(m, lambda n: torch.rand(n, 16) * 4 - 2, seed)


def finn_avgpool(seed: int = 28):
    """test_brevitas_avg_pool_export: TruncAvgPool2d(k=2, s=2, 4 bits) after a 4-bit input quantizer."""
    seeded(seed)
    m = nn.Sequential(
        qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=4, return_quant_tensor=True),
        qnn.TruncAvgPool2d(kernel_size=2, stride=2, bit_width=4, return_quant_tensor=False),
    )
    return calibrate(m, pixel_sample((2, 8, 8)), seed)
