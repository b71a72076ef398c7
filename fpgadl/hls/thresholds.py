"""BatchNorm before a two- or three-level quantizer, made exact: FINN's thresholds, decided as torch decides them.

bnn_pynq's BNNs put a BatchNorm between every accumulator and a sign (BipolarQuant) or 2-bit narrow (-1/0/1)
quantizer. The accumulator takes finitely many values (a grid g, a range known from the quantized weights and
the input quantizer's levels), and torch's float32 BN followed by the quantizer is a monotone step function of
it: per channel, one or two integer thresholds. `ExactBatchNormThresholds` finds them with torch's own float32
arithmetic, reproduced exactly (measured on torch 2.x CPU: alpha = w * (1 / sqrt(var + eps)), beta =
fma(-mean, alpha, b), y = fma(a, alpha, beta), each rounded once to float32; all BN values of bnn_pynq's TFCs
equal torch's with this and 75% with a separate multiply and add), then rewrites the BN's constants
(mean 0, var 1, eps 0) so that its output falls on the same quantizer level for every reachable accumulator
with a margin of half a grid step: hls4ml's fixed-point BN (or its fused binary threshold), the qonnx reference
and torch then agree bit for bit. A BN this cannot cover (more levels, a float bias before it, an unknown
range, a negative scale before a sign) is left alone and stays inexact.
"""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.general.intquant import max_int, min_int
from qonnx.transformation.base import Transformation

METADATA_KEY = "fpgadl_exact_batchnorms"
LAYOUT_OPS = ("Transpose", "Reshape", "Flatten", "MaxPool")  # keep the set of values a tensor takes
MAX_GRID_STEPS = 2**16  # accumulator values per channel checked one by one


def _attrs(node) -> dict:
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def _pot_scalar(value) -> float | None:
    v = None if value is None else np.asarray(value, dtype=np.float64).ravel()
    if v is None or v.size != 1 or v[0] <= 0 or np.log2(v[0]) != np.round(np.log2(v[0])):
        return None
    return float(v[0])


def quantizer_levels(model: ModelWrapper, node) -> tuple[np.ndarray, float] | None:
    """(integer levels, power-of-two scale) of a per-tensor BipolarQuant/Quant, None for anything else."""
    if node.op_type not in ("BipolarQuant", "Quant"):
        return None
    scale = _pot_scalar(model.get_initializer(node.input[1]))
    if scale is None:
        return None
    if node.op_type == "BipolarQuant":
        return np.array([-1, 1]), scale
    if node.op_type != "Quant":
        return None
    zero, bits = model.get_initializer(node.input[2]), model.get_initializer(node.input[3])
    a = _attrs(node)
    if zero is None or np.any(np.asarray(zero) != 0) or bits is None or a.get("rounding_mode", "ROUND") != "ROUND":
        return None
    bits, signed, narrow = int(np.asarray(bits).ravel()[0]), bool(a.get("signed", 1)), bool(a.get("narrow", 0))
    if bits == 1 and signed:
        return None  # qonnx treats it as bipolar, hls4ml may not: left alone
    return np.arange(int(min_int(signed, narrow, bits)), int(max_int(signed, narrow, bits)) + 1), scale


def _quantized_constant(model: ModelWrapper, tensor: str) -> tuple[np.ndarray, float] | None:
    """The values of a weight tensor (an initializer behind a BipolarQuant/Quant, computed as qonnx does) and
    the power-of-two grid they lie on (the smallest of its scales)."""
    from qonnx.custom_op.general.bipolar_quant import binary_quant
    from qonnx.custom_op.general.intquant import int_quant

    node = model.find_producer(tensor)
    if node is None or node.op_type not in ("BipolarQuant", "Quant") or model.get_initializer(node.input[0]) is None:
        return None
    scale = np.asarray(model.get_initializer(node.input[1]), dtype=np.float64)
    if scale.size == 0 or np.any(scale <= 0) or np.any(np.log2(scale) != np.round(np.log2(scale))):
        return None
    w = np.asarray(model.get_initializer(node.input[0]), dtype=np.float32)
    if node.op_type == "BipolarQuant":
        values = binary_quant(w, scale.astype(np.float32))
    else:
        zero, bits = (model.get_initializer(i) for i in node.input[2:4])
        a = _attrs(node)
        values = int_quant(
            w, scale, zero, bits, a.get("signed", 1), a.get("narrow", 0), a.get("rounding_mode", "ROUND")
        )
    return np.asarray(values, dtype=np.float64), float(scale.min())


def _data_levels(model: ModelWrapper, tensor: str) -> tuple[float, float, float] | None:
    """(lowest value, highest value, scale) of a data tensor produced by a quantizer (through layout ops)."""
    node = model.find_producer(tensor)
    while node is not None and node.op_type in LAYOUT_OPS:
        node = model.find_producer(node.input[0])
    found = quantizer_levels(model, node) if node is not None else None
    if found is None:
        return None
    levels, scale = found
    return float(levels.min() * scale), float(levels.max() * scale), scale


def _bias_free(model: ModelWrapper, node) -> bool:
    """No bias input (or a zero one), and for Gemm (torch's dynamo exporter) a plain A @ B."""
    if node.op_type == "Gemm":
        a = _attrs(node)
        if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0:
            return False
    if len(node.input) < 3 or not node.input[2]:
        return len(node.input) >= 2
    bias = model.get_initializer(node.input[2])
    return bias is not None and not np.any(np.asarray(bias))


def accumulator_grid(model: ModelWrapper, node) -> tuple[np.ndarray, np.ndarray, float] | None:
    """Per output channel (lowest, highest) value of a bias-free MatMul/Gemm/Conv of quantized operands, and
    the grid every value lies on (data scale x weight scale). Zero is in the data range (padding)."""
    if node is None or node.op_type not in ("MatMul", "Conv", "Gemm") or not _bias_free(model, node):
        return None
    weights, data = _quantized_constant(model, node.input[1]), _data_levels(model, node.input[0])
    if weights is None or data is None:
        return None
    (w, w_scale), (lo_x, hi_x, x_scale) = weights, data
    lo_x, hi_x = min(lo_x, 0.0), max(hi_x, 0.0)
    if node.op_type == "Conv" or (node.op_type == "Gemm" and _attrs(node).get("transB", 0)):
        w = w.reshape(w.shape[0], -1).T  # (fan-in, channels)
    lo = np.sum(np.minimum(w * lo_x, w * hi_x), axis=0)
    hi = np.sum(np.maximum(w * lo_x, w * hi_x), axis=0)
    return lo, hi, x_scale * w_scale


def _f32(q: Fraction) -> np.float32:
    """q rounded once to float32, to nearest, ties to even (what an FMA or a float32 operation returns)."""
    best = np.float32(float(q))
    for cand in (np.nextafter(best, np.float32(-np.inf)), np.nextafter(best, np.float32(np.inf))):
        d_cand, d_best = abs(Fraction(float(cand)) - q), abs(Fraction(float(best)) - q)
        if d_cand < d_best or (d_cand == d_best and int(cand.view(np.int32)) % 2 == 0):
            best = cand
    return best


def torch_bn_terms(gamma, beta, mean, var, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """torch's eval-mode BatchNorm as y = fma(x, alpha, shift) (ATen's batch_norm_cpu_collect_linear_and_
    constant_terms, compiled with FMA): alpha = gamma * (1 / sqrt(var + eps)), shift = fma(-mean, alpha, beta)."""
    f = np.float32
    invstd = f(1) / np.sqrt(np.asarray(var, f) + f(eps))
    alpha = (invstd * np.asarray(gamma, f)).astype(f)
    shift = np.array(
        [_f32(Fraction(float(b)) - Fraction(float(m)) * Fraction(float(a))) for a, b, m in zip(alpha, beta, mean)], f
    )
    return alpha, shift


def _level_index(y: np.float32, levels: np.ndarray, scale: float, bipolar: bool) -> int:
    """Index into `levels` of what the quantizer (qonnx's and Brevitas' arithmetic) makes of y."""
    if bipolar:
        return int(y >= 0)
    q = np.round(np.clip(np.float32(y) / np.float32(scale), levels[0], levels[-1]))
    return int(q) - int(levels[0])


def channel_thresholds(alpha, shift, grid: float, k_lo: int, k_hi: int, quant) -> list[int]:
    """Smallest k (accumulator k * grid, non-decreasing direction) reaching each level above the lowest:
    binary search over torch's exact float32 result (the step function is monotone)."""
    levels, scale, bipolar, sign = quant
    a_exact, s_exact, g_exact = Fraction(float(alpha)), Fraction(float(shift)), Fraction(grid)

    def level(k: int) -> int:
        return _level_index(_f32(sign * k * g_exact * a_exact + s_exact), levels, scale, bipolar)

    out = []
    for j in range(1, len(levels)):
        lo, hi = k_lo, k_hi + 1  # answer in [lo, hi]; hi = never reached
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if level(mid) >= j else (mid + 1, hi)
        out.append(lo)
    return out


def affine_for(thresholds: list[int], levels: np.ndarray, scale: float, grid: float) -> tuple[float, float]:
    """(gamma, beta) such that gamma * k * grid + beta lands on level i for k in [T_i, T_i+1), half a level
    from any rounding boundary (sign quantizer: gamma = 1, beta = -T * grid, a threshold on the grid)."""
    if len(levels) == 2 and levels[0] == -1 and levels[1] == 1:
        return 1.0, -thresholds[0] * grid
    l0 = float(levels[0])
    if len(levels) == 2:  # u(k) = k - T + l0 + 1
        return scale / grid, scale * (l0 + 1 - thresholds[0])
    t1, t2 = thresholds
    d = t2 - t1
    if d == 0:  # no middle level: u(k) = 2 (k - T) + l0 + 2
        return 2 * scale / grid, scale * (l0 + 2 - 2 * t1)
    return scale / (d * grid), scale * ((0.5 - t1) / d + l0 + 0.5)


def _verify(gamma: np.float32, beta: np.float32, grid: float, k_lo: int, k_hi: int, table: np.ndarray, quant) -> bool:
    """The rewritten BN gives the level table at every reachable k, computed as onnxruntime may (float32
    multiply then add, or an FMA) and as the firmware does (exact fixed point)."""
    levels, scale, bipolar, _ = quant
    a = np.arange(k_lo, k_hi + 1, dtype=np.float64) * grid
    exact = a.astype(np.longdouble) * np.longdouble(gamma) + np.longdouble(beta)
    for y in (
        a.astype(np.float32) * gamma + beta,
        (a * np.float64(gamma) + np.float64(beta)).astype(np.float32),
        exact,
    ):
        if bipolar:
            got = (y >= 0).astype(int)
        else:
            q = np.round(np.clip(np.asarray(y, np.float64) / scale, levels[0], levels[-1]))
            got = q.astype(int) - int(levels[0])
        if not np.array_equal(got, table):
            return False
    return True


def exact_bn_constants(alpha, shift, lo, hi, grid: float, levels, scale: float, bipolar: bool):
    """Per-channel (gamma, beta) of the rewritten BN, or None where a channel cannot be made exact (or the
    quantizer has more than the two or three levels `affine_for` places: those keep torch's constants)."""
    if len(levels) > 3:
        return None
    gammas, betas = [], []
    for c in range(len(alpha)):
        k_lo, k_hi = int(np.floor(lo[c] / grid)), int(np.ceil(hi[c] / grid))
        if k_hi - k_lo > MAX_GRID_STEPS:
            return None
        sign = -1 if alpha[c] < 0 else 1
        if sign < 0 and bipolar:
            return None  # hls4ml's fused sign layer compares x >= threshold only
        span = (k_lo, k_hi) if sign > 0 else (-k_hi, -k_lo)
        quant = (levels, scale, bipolar, sign)
        thresholds = channel_thresholds(alpha[c], shift[c], grid, *span, quant)
        gamma, beta = affine_for(thresholds, levels, scale, grid)
        gamma, beta = np.float32(sign * gamma), np.float32(beta)
        k = np.arange(k_lo, k_hi + 1)
        table = sum((sign * k >= t).astype(int) for t in thresholds)
        if not _verify(gamma, beta, grid, k_lo, k_hi, table, quant):
            return None
        gammas.append(gamma)
        betas.append(beta)
    return np.array(gammas, np.float32), np.array(betas, np.float32)


TORCH_CHECK_ELEMENTS = 1 << 22  # accumulator values x channels run through torch's own BatchNorm


def torch_agrees(params, eps: float, constants, lo, hi, grid: float, levels, scale: float, bipolar: bool) -> bool:
    """torch's BatchNorm on this machine, then the quantizer, gives the rewritten BN's level at every reachable
    accumulator value: guards `torch_bn_terms` (measured with FMA) against a torch built or run without it."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency; without it the emulation stands
        return True
    k_lo, k_hi = int(np.floor(np.min(lo) / grid)), int(np.ceil(np.max(hi) / grid))
    channels = len(constants[0])
    if (k_hi - k_lo + 1) * channels > TORCH_CHECK_ELEMENTS:
        return True
    a = np.repeat((np.arange(k_lo, k_hi + 1, dtype=np.float64) * grid).astype(np.float32)[:, None], channels, 1)
    gamma, beta, mean, var = (torch.from_numpy(np.asarray(p, np.float32)) for p in params)
    with torch.no_grad():
        y = torch.nn.functional.batch_norm(torch.from_numpy(a), mean, var, gamma, beta, False, 0.0, eps).numpy()
    rewritten = a * constants[0] + constants[1]

    def level(v):
        return (v >= 0).astype(int) if bipolar else np.clip(np.round(v / np.float32(scale)), levels[0], levels[-1])

    reachable = (a >= np.asarray(lo, np.float32)) & (a <= np.asarray(hi, np.float32))
    return bool(np.all((level(y) == level(rewritten)) | ~reachable))


class ExactBatchNormThresholds(Transformation):
    """Rewrite each BatchNormalization that sits between a quantized MatMul/Conv and a 2- or 3-level quantizer
    into one whose output lands on torch's quantizer level for every reachable accumulator (module docstring).
    The rewritten nodes are listed in the model's metadata (`METADATA_KEY`)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        done = exact_batchnorms(model)
        for node in model.graph.node:
            if node.op_type != "BatchNormalization" or node.name in done:
                continue
            consumers = model.find_consumers(node.output[0]) or []
            found = quantizer_levels(model, consumers[0]) if len(consumers) == 1 else None
            grid = accumulator_grid(model, model.find_producer(node.input[0]))
            params = [model.get_initializer(i) for i in node.input[1:5]]
            if found is None or grid is None or any(p is None for p in params):
                continue
            (levels, scale), (lo, hi, step) = found, grid
            alpha, shift = torch_bn_terms(*params, _attrs(node).get("epsilon", 1e-5))
            bipolar = consumers[0].op_type == "BipolarQuant"
            constants = exact_bn_constants(alpha, shift, lo, hi, step, levels, scale, bipolar)
            eps = _attrs(node).get("epsilon", 1e-5)
            if constants is None or not torch_agrees(params, eps, constants, lo, hi, step, levels, scale, bipolar):
                continue
            _set_constants(model, node, *constants)
            model.set_metadata_prop(METADATA_KEY, json.dumps([*done, node.name]))
            return model, True
        return model, False


def exact_batchnorms(model: ModelWrapper) -> list[str]:
    text = model.get_metadata_prop(METADATA_KEY)
    return json.loads(text) if text else []


FLOAT32_METADATA_KEY = "fpgadl_float32_batchnorms"


class TorchBatchNormConstants(Transformation):
    """Every other BatchNormalization gets torch's own folded constants (gamma = alpha, beta = shift, mean 0,
    var 1, eps 0; `torch_bn_terms`). The firmware then computes x * alpha + shift exactly (the audit gives
    the constants exact types) where torch rounds that one FMA to float32: the same class as a float bias,
    "exact except float32 rounding in torch". hls4ml's own folding (gamma / sqrt(var + eps) in another
    order) would add constants torch never used. Listed in the metadata (`FLOAT32_METADATA_KEY`)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        skip = set(exact_batchnorms(model)) | set(float32_batchnorms(model))
        for node in model.graph.node:
            if node.op_type != "BatchNormalization" or node.name in skip or len(node.input) < 5:
                continue
            params = [model.get_initializer(i) for i in node.input[1:5]]
            if any(p is None for p in params):
                continue
            alpha, shift = torch_bn_terms(*params, _attrs(node).get("epsilon", 1e-5))
            if not (np.all(np.isfinite(alpha)) and np.all(np.isfinite(shift))):
                continue
            _set_constants(model, node, alpha, shift)
            model.set_metadata_prop(FLOAT32_METADATA_KEY, json.dumps([*float32_batchnorms(model), node.name]))
            return model, True
        return model, False


def _set_constants(model: ModelWrapper, node, gamma: np.ndarray, beta: np.ndarray) -> None:
    """The BN becomes gamma * x + beta exactly: mean 0, var 1, epsilon 0 (sqrt(1 + 0) == 1 everywhere)."""
    values = (gamma.astype(np.float32), beta.astype(np.float32), np.zeros_like(gamma), np.ones_like(gamma))
    for index, value in zip(range(1, 5), values):
        name = model.make_new_valueinfo_name()
        model.set_initializer(name, np.asarray(value, np.float32))
        node.input[index] = name
    for a in [a for a in node.attribute if a.name == "epsilon"]:
        node.attribute.remove(a)
    node.attribute.append(helper.make_attribute("epsilon", 0.0))


def float32_batchnorms(model: ModelWrapper) -> list[str]:
    text = model.get_metadata_prop(FLOAT32_METADATA_KEY)
    return json.loads(text) if text else []
