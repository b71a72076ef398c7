"""The corpus: one `Entry` per external model, with where it comes from and what the issue requires of it.

`expect` is the outcome fpgadl must reach (issue 9): 'exact', 'exact-except-float32' (>= 99.9% rows equal
torch, the rest explained by torch's float32 sums), 'twin-only' (a named reason: non-power-of-two scales,
lookup tables), or 'refused' (exit 2 naming the op). Never 'claims exact but differs', never internal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from tests.external import bnn_pynq, edge, thirdparty, tutorial

EXPORTS = ("dynamo", "ts")  # export_qonnx's default (torch's dynamo exporter) and dynamo=False


@dataclass(frozen=True)
class Entry:
    name: str
    source: str
    build: Callable
    input_shape: tuple[int, ...]  # without batch, ONNX (torch) layout
    expect: str
    what: str
    pre_inverse: Callable[[np.ndarray], np.ndarray] | None = None  # quantizer domain -> raw input
    typical: str = "signed"  # 'signed' (normal * 2), 'pixel' ([0, 1]), 'pixel255' ([0, 255]), 'uint4'
    exports: tuple[str, ...] = EXPORTS
    n_inputs: int = 1
    refuse_word: str = ""  # what a refusal must name (the op), for expect == 'refused'
    tags: frozenset[str] = field(default_factory=frozenset)


def _inv_2x_minus_1(q):
    return (q + 1.0) / 2.0


def _inv_div_255(q):
    return q * 255.0


def _inv_mean_std(q):
    shape = (1, 3, 1, 1)
    return q * edge.CIFAR_STD.numpy().reshape(shape) + edge.CIFAR_MEAN.numpy().reshape(shape)


def _bnn_entries() -> list[Entry]:
    out = []
    for kind in ("tfc", "sfc", "lfc"):
        for w, a in ((1, 1), (1, 2), (2, 2)):
            # SFC/LFC: TFC's layers, wider (LFC 1024): the benchmark covers them, the test run does not
            tags = {"bnn", kind} | ({"lfc-big", "heavy"} if kind == "lfc" else {"heavy"} if kind == "sfc" else set())
            out.append(
                Entry(
                    f"bnn_pynq-{kind}-{w}w{a}a",
                    "brevitas_examples.bnn_pynq",
                    lambda kind=kind, w=w, a=a: bnn_pynq.fc(kind, w, a),
                    (1, 28, 28),
                    "exact",
                    f"{kind.upper()} MLP {w}-bit weights {a}-bit acts, 2x-1 input, BN, TensorNorm",
                    pre_inverse=_inv_2x_minus_1,
                    typical="pixel",
                    tags=frozenset(tags),
                )
            )
    for w, a in ((1, 1), (1, 2), (2, 2)):
        out.append(
            Entry(
                f"bnn_pynq-cnv-{w}w{a}a-div8",
                "brevitas_examples.bnn_pynq (CNV widths / 8)",
                lambda w=w, a=a: bnn_pynq.cnv_small(w, a),
                (3, 32, 32),
                "exact",
                f"CNV (widths/8) {w}W{a}A: 6 conv+BN, 2 maxpool, 3 FC, 2x-1 input, TensorNorm",
                pre_inverse=_inv_2x_minus_1,
                typical="pixel",
                tags=frozenset({"bnn", "cnv"} | ({"heavy"} if (w, a) != (1, 1) else set())),
            )
        )
    return out


def _tutorial_entries() -> list[Entry]:
    T, E = tutorial, edge
    return [
        Entry(
            "mlp-float-bias",
            "tutorial",
            lambda: T.mlp(True),
            (16,),
            "exact-except-float32",
            "QuantLinear x2, default float bias, Int8 fixed-point weights/acts",
            tags=frozenset({"quick"}),
        ),
        Entry("mlp-int16-bias", "tutorial", lambda: T.mlp("int16"), (16,), "exact", "QuantLinear x2 with Int16Bias"),
        Entry("mlp-no-bias", "tutorial", lambda: T.mlp(False), (16,), "exact", "bias-free QuantLinear x2"),
        Entry(
            "mlp-per-channel",
            "tutorial",
            lambda: T.mlp(True, per_channel=True),
            (16,),
            "exact-except-float32",
            "per-output-channel power-of-two weight scales, float bias",
        ),
        Entry(
            "mlp-bn",
            "tutorial",
            lambda: T.mlp(True, bn=True),
            (16,),
            "exact-except-float32",
            "QuantLinear -> BatchNorm1d -> QuantReLU, float bias",
        ),
        Entry(
            "mlp-float-scales",
            "tutorial",
            T.mlp_float_scales,
            (16,),
            "twin-only",
            "Brevitas defaults: Int8WeightPerTensorFloat / Int8ActPerTensorFloat (non-power-of-two scales)",
        ),
        Entry(
            "cnn-float-bias",
            "tutorial",
            lambda: T.cnn(True),
            (1, 8, 8),
            "exact-except-float32",
            "conv-relu-maxpool-conv-relu-linear, float biases",
        ),
        Entry(
            "cnn-int16-bias",
            "tutorial",
            lambda: T.cnn("int16"),
            (1, 8, 8),
            "exact",
            "conv-relu-maxpool-conv-relu-linear, Int16Bias",
        ),
        Entry(
            "cnn-bn",
            "tutorial",
            lambda: T.cnn(True, bn=True),
            (1, 8, 8),
            "exact-except-float32",
            "conv -> BatchNorm2d -> QuantReLU -> maxpool ..., float biases",
        ),
        Entry(
            "cnn-unsigned-input",
            "tutorial",
            lambda: T.cnn("int16", signed_input=False),
            (1, 8, 8),
            "exact",
            "Uint8 input quantizer on [0, 1] pixels",
            typical="pixel",
        ),
        Entry(
            "residual-mlp",
            "tutorial",
            lambda: T.residual(False),
            (16,),
            "exact-except-float32",
            "residual add of two power-of-two branches (linear)",
        ),
        Entry(
            "residual-cnn",
            "tutorial",
            lambda: T.residual(True),
            (2, 6, 6),
            "exact-except-float32",
            "residual add of two power-of-two conv branches",
        ),
        Entry(
            "concat-cnn",
            "tutorial",
            T.concat,
            (1, 6, 6),
            "exact-except-float32",
            "two conv branches concatenated on channels",
        ),
        Entry(
            "avgpool-on-quant-tensor",
            "tutorial",
            lambda: T.pooled("avg_quant"),
            (1, 4, 4),
            "exact-except-float32",
            "nn.AvgPool2d(2) applied to a QuantTensor",
        ),
        Entry(
            "avgpool-float",
            "tutorial",
            lambda: T.pooled("avg"),
            (1, 4, 4),
            "exact-except-float32",
            "nn.AvgPool2d(2) on a float tensor, requantized",
        ),
        Entry(
            "global-avgpool",
            "tutorial",
            lambda: T.pooled("gap"),
            (1, 4, 4),
            "exact-except-float32",
            "AdaptiveAvgPool2d(1) over a 4x4 map",
        ),
        Entry(
            "trunc-avgpool",
            "tutorial",
            lambda: T.pooled("trunc"),
            (1, 4, 4),
            "refused",
            "Brevitas TruncAvgPool2d (Trunc op)",
            refuse_word="Trunc",
        ),
        Entry(
            "pre-2x-1-mlp",
            "tutorial",
            E.preprocessed_mlp,
            (16,),
            "exact-except-float32",
            "2x-1 before the input quantizer",
            pre_inverse=_inv_2x_minus_1,
            typical="pixel",
        ),
        Entry(
            "pre-div255-cnn",
            "tutorial",
            lambda: E.preprocessed_cnn("div255"),
            (1, 6, 6),
            "exact-except-float32",
            "x/255 before a Uint8 input quantizer",
            pre_inverse=_inv_div_255,
            typical="pixel255",
        ),
        Entry(
            "pre-mean-std-cnn",
            "tutorial",
            lambda: E.preprocessed_cnn("mean_std"),
            (3, 6, 6),
            "twin-only",
            "CIFAR mean/std normalisation before the input quantizer (on the host); torch's batched conv "
            "accumulates onto its float bias and moves ~0.5% of rows, which the probe measures",
            pre_inverse=_inv_mean_std,
            typical="pixel",
        ),
        Entry(
            "activation-only",
            "tutorial",
            E.activation_only,
            (8,),
            "exact",
            "QuantIdentity -> QuantReLU only",
            tags=frozenset({"quick"}),
        ),
        Entry(
            "bipolar-784",
            "tutorial",
            E.bipolar_784,
            (1, 28, 28),
            "exact",
            "one 1-bit-weight QuantLinear, fan-in 784, 2-bit input",
        ),
        Entry(
            "depthwise-conv",
            "tutorial",
            E.depthwise,
            (2, 5, 5),
            "exact-except-float32",
            "pointwise + depthwise QuantConv2d (groups=C), float biases",
        ),
        Entry(
            "mobilenet-like",
            "FINN mobilenet pattern",
            E.mobilenet_like,
            (3, 16, 16),
            "refused",
            "4-bit depthwise-separable blocks with BN, TruncAvgPool2d head (Trunc)",
            refuse_word="Trunc",
        ),
        Entry("sigmoid-head", "tutorial", E.lut_head, (8,), "twin-only", "QuantSigmoid output (lookup table)"),
        Entry("conv1d", "tutorial", E.conv1d, (2, 10), "exact-except-float32", "QuantConv1d, float bias"),
        Entry(
            "pot-relu",
            "tutorial",
            E.pot_restricted_relu,
            (8,),
            "exact",
            "QuantReLU with a learned power-of-two-restricted scale, bias-free QuantLinear",
        ),
    ]


def _thirdparty_entries() -> list[Entry]:
    P = thirdparty
    return [
        Entry(
            "hls4ml-quantlinear-fixed",
            "hls4ml test_brevitas_parsing",
            lambda: P.hls4ml_linear("fixed"),
            (4,),
            "exact",
            "QuantModelLinear: input_quant Int8 fixed point, QuantReLU(Int8ActPerTensorFixedPoint)",
            typical="pixel",
        ),
        Entry(
            "hls4ml-quantlinear-float",
            "hls4ml test_brevitas_parsing",
            lambda: P.hls4ml_linear("float"),
            (4,),
            "twin-only",
            "QuantModelLinear with Int8WeightPerTensorFloat",
            typical="pixel",
        ),
        Entry(
            "hls4ml-quantconv2d",
            "hls4ml test_brevitas_parsing",
            lambda: P.hls4ml_conv(2),
            (3, 6, 5),
            "twin-only",
            "QuantConv2d(3, 6, 5) float bias, no input quantizer, nn.ReLU",
        ),
        Entry(
            "hls4ml-quantconv1d",
            "hls4ml test_brevitas_parsing",
            lambda: P.hls4ml_conv(1),
            (3, 5),
            "twin-only",
            "QuantConv1d(3, 6, 4) float bias, no input quantizer, nn.ReLU",
        ),
        Entry(
            "hls4ml-upsample2d",
            "hls4ml test_brevitas_parsing",
            P.hls4ml_upsample,
            (4, 6, 8),
            "exact",
            "QuantIdentity -> QuantUpsamplingNearest2d(1, 2) -> ReLU",
            typical="pixel",
        ),
        Entry(
            "hls4ml-eltwise-add",
            "hls4ml test_brevitas_parsing",
            P.hls4ml_eltwise_add,
            (4, 4),
            "refused",
            "QuantEltwiseAdd of two graph inputs",
            n_inputs=2,
            refuse_word="input",
        ),
        Entry(
            "finn-qlinear-bias",
            "FINN test_brevitas_qlinear",
            lambda: P.finn_qlinear(True),
            (3,),
            "twin-only",
            "QuantLinear(3, 4) per-channel 4-bit weights, float bias, no input quantizer",
            typical="uint4",
        ),
        Entry(
            "finn-qlinear-nobias",
            "FINN test_brevitas_qlinear",
            lambda: P.finn_qlinear(False),
            (3,),
            "twin-only",
            "QuantLinear(3, 4) per-channel 4-bit weights, no bias, no input quantizer",
            typical="uint4",
        ),
        Entry(
            "finn-qconv2d-depthwise",
            "FINN test_brevitas_qconv2d",
            lambda: P.finn_qconv2d(True),
            (8, 12, 12),
            "twin-only",
            "depthwise 3x3 per-channel LOG_FP 4-bit, float bias",
        ),
        Entry(
            "finn-qconv2d-pointwise",
            "FINN test_brevitas_qconv2d",
            lambda: P.finn_qconv2d(False),
            (8, 12, 12),
            "twin-only",
            "pointwise 1x1 per-channel LOG_FP 4-bit, float bias",
        ),
        Entry(
            "finn-relu-logfp",
            "FINN test_brevitas_relu_act_export",
            lambda: P.finn_relu(False),
            (15,),
            "twin-only",
            "QuantReLU 4-bit max_val 1.5, LOG_FP scale",
        ),
        Entry(
            "finn-relu-pot",
            "FINN test_brevitas_relu_act_export",
            lambda: P.finn_relu(True),
            (15,),
            "exact",
            "QuantReLU 4-bit max_val 1.5, power-of-two scale",
        ),
        Entry(
            "finn-qhardtanh",
            "FINN test_brevitas_scaled_qhardtanh_export",
            P.finn_hardtanh,
            (16,),
            "exact",
            "QuantHardTanh 4-bit [-1, 1], const scale (Brevitas makes it 1/8: power of two)",
        ),
        Entry(
            "finn-avgpool",
            "FINN test_brevitas_avg_pool_export",
            P.finn_avgpool,
            (2, 8, 8),
            "refused",
            "TruncAvgPool2d(2, 4 bits) after a 4-bit input quantizer (Trunc)",
            typical="pixel",
            refuse_word="Trunc",
        ),
    ]


CORPUS: list[Entry] = _bnn_entries() + _tutorial_entries() + _thirdparty_entries()
BY_NAME = {e.name: e for e in CORPUS}
assert len(BY_NAME) == len(CORPUS), "duplicate corpus names"
