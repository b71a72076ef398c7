"""Binary (XNOR) layers of FINN-style BNNs, as hls4ml's QONNX flow builds them from BipolarQuant.

A bipolar value {-1, +1} travels as `ap_uint<1>` (0 stands for -1; hls4ml's XnorPrecisionType).
`binary_tanh` (nnet_activation.h) maps x >= 0 to 1 and x < 0 to -1, then `binary_cast` stores -1 as 0 in
an ap_uint<1> result. A Dense layer with binary data and binary weights (`product::both_binary`, nnet_mult.h)
counts matches `a == w` into accum_t and returns `ap_int<ceillog2(n_in)+2>(2 * acc - n_in)` as res_T
(nnet_mult.h `cast`); binary weights alone (`weight_binary`) negate the data where w == 0, binary data alone
(`data_binary`) negates the weight where a == 0. `BatchNormalizationQuantizedTanh` (nnet_batchnorm.h
`normalize_binary_tanh`) outputs 1 where x >= threshold, else 0, the threshold held in the input's type.
"""

from __future__ import annotations

import math

import numpy as np

from fpgadl.emulator.fastfixed import cast, convert
from fpgadl.emulator.fixed import FixedType
from fpgadl.emulator.registry import (
    attr_type,
    input_types,
    register,
    require,
    result_type,
    weight_mantissas,
)


def is_xnor(precision) -> bool:
    from hls4ml.model.types import XnorPrecisionType

    return isinstance(getattr(precision, "precision", precision), XnorPrecisionType)


def binary_tanh(layer):
    """nnet::binary_tanh: sign, stored as 1/0 in an ap_uint<1> result or as +-1 in any other."""
    res_t = result_type(layer)
    out_shape = tuple(layer.get_output_variable().shape)
    xnor_out = is_xnor(layer.get_output_variable().type.precision)

    def kernel(m: np.ndarray) -> np.ndarray:
        sign = np.where(m >= 0, 1, -1).astype(np.int64)
        y = np.where(sign > 0, 1, 0) if xnor_out else cast(sign, 0, res_t)
        return y.astype(np.int64).reshape((m.shape[0], *out_shape))

    return kernel


def binary_dense(layer):
    """Dense with binary data and/or weights (products both_binary, weight_binary, data_binary)."""
    matmul, n_in = binary_matmul(layer)
    out_shape = tuple(layer.get_output_variable().shape)

    def kernel(x: np.ndarray) -> np.ndarray:
        return matmul(x.reshape(-1, n_in)).reshape((x.shape[0], *out_shape))

    return kernel


def binary_conv(layer):
    """Conv1D/Conv2D with binary data and/or weights: conv_{1,2}d_latency_cl runs the dense arithmetic
    (same products, accum_t and final cast, n_in = the patch size) on every im2col patch; padding
    is data_T 0 (which an ap_uint<1> reads as -1, as the firmware does)."""
    from fpgadl.emulator.kernels_dense import conv_patches

    idx, in_shape = conv_patches(layer)
    matmul, n_in = binary_matmul(layer)
    require(layer, idx.shape[1] == n_in, "weight shape does not match the patch size")
    in_size, (n_pix, patch) = int(np.prod(in_shape)), idx.shape
    gather = np.where(idx < 0, in_size, idx).ravel()
    out_shape = tuple(layer.get_output_variable().shape)

    def kernel(x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        flat = np.zeros((n, in_size + 1), dtype=np.int64)  # the last column: zero padding
        flat[:, :in_size] = x.reshape(n, in_size)
        cols = np.take(flat, gather, axis=1).reshape(n * n_pix, patch)
        return matmul(cols).reshape((n, *out_shape))

    return kernel


def binary_matmul(layer):
    """(f, n_in): f maps (rows, n_in) data mantissas to (rows, n_out) result mantissas as dense_latency's
    binary products, accumulation and cast compute them."""
    x_xnor = is_xnor(layer.get_input_variable().type.precision)
    w_xnor = is_xnor(layer.types["weight_t"].precision)
    (x_t,) = input_types(layer)
    w, w_t = weight_mantissas(layer, "weight")
    w = w.reshape(-1, w.shape[-1])
    accum_t, res_t = attr_type(layer, "accum_t"), result_type(layer)
    n_in = w.shape[0]
    b_acc = np.zeros(w.shape[1], dtype=np.int64)
    if "bias" in layer.weights and not is_xnor(layer.types["bias_t"].precision):
        b, b_t = weight_mantissas(layer, "bias")
        b_acc = cast(b.astype(np.int64), b_t.frac, accum_t)
    require(layer, str(layer.get_attr("strategy", "latency")).lower() == "latency", "binary layers: latency only")
    if x_xnor and w_xnor:
        prod_frac = 0
    elif w_xnor:
        prod_frac, w = x_t.frac, np.where(w == 0, -1, 1)
    else:
        prod_frac = w_t.frac
    count_t = FixedType(math.ceil(math.log2(n_in)) + 2, math.ceil(math.log2(n_in)) + 2)  # ap_int<ceillog2(n)+2>

    max_product = 1  # both binary: a match counts 1
    if w_xnor and not x_xnor:
        max_product = max(abs(x_t.min_mantissa), x_t.max_mantissa)
    elif x_xnor and not w_xnor:
        max_product = int(np.abs(w).max(initial=0))
    shift = accum_t.frac - prod_frac
    worst = int(np.abs(b_acc).max(initial=0)) + n_in * (max_product << max(shift, 0))
    # no partial sum can leave accum_t: every assignment is the identity, one integer matrix product is exact
    never_overflows = shift >= 0 and worst <= min(accum_t.max_mantissa, -accum_t.min_mantissa) and worst < 2**53
    # float32 BLAS is exact while every |partial sum| of products stays below 2**24 (CNV's convs: always)
    dtype = np.float32 if n_in * max_product < 2**24 else np.float64
    w_float = w.astype(dtype)
    w_pm = (2 * w_float - 1) if x_xnor and w_xnor else None

    def accumulate_exact(x: np.ndarray) -> np.ndarray:
        xf = x.astype(dtype)
        if x_xnor and w_xnor:
            # matches of a == w: ((2a - 1) . (2w - 1) + n_in) / 2, one product instead of two
            s = ((2 * xf - 1) @ w_pm + n_in) / 2
        elif w_xnor:
            s = xf @ w_float
        else:
            s = (2 * xf - 1) @ w_float  # a == 0 -> -w, else w
        return (s.astype(np.int64) << shift) + b_acc[None, :]

    def accumulate(x: np.ndarray) -> np.ndarray:
        if never_overflows:
            return accumulate_exact(x)
        if x_xnor and w_xnor:  # a == w counts, as x_T (ap_uint<1>)
            prods = x[:, :, None] == w[None, :, :]
        elif w_xnor:
            prods = x[:, :, None] * w[None, :, :]
        else:
            prods = np.where(x[:, :, None] == 0, -w[None, :, :], w[None, :, :])
        acc = b_acc[None, :].copy()
        for i in range(n_in):  # acc += (accum_t) product, assigned back each step
            acc = cast(acc + cast(prods[:, i, :].astype(np.int64), prod_frac, accum_t), accum_t.frac, accum_t)
        return acc

    def matmul(x: np.ndarray) -> np.ndarray:
        acc = accumulate(x)
        if x_xnor and w_xnor:
            twice = cast(acc * 2 - (n_in << accum_t.frac), accum_t.frac, count_t)
            return convert(twice, count_t, res_t)
        return convert(acc, accum_t, res_t)

    return matmul, n_in


@register("BatchNormalizationQuantizedTanh")
def bn_binary_tanh(layer):
    require(layer, "threshold" in layer.weights, "ternary thresholds (threshold_hi/lo) are not modelled")
    (x_t,) = input_types(layer)
    t, t_t = weight_mantissas(layer, "threshold")
    threshold = cast(t.astype(np.int64), t_t.frac, x_t)  # the C++ holds the thresholds as data_T
    out_shape = tuple(layer.get_output_variable().shape)
    n_filt = int(layer.get_attr("n_filt", -1) or -1)

    def kernel(m: np.ndarray) -> np.ndarray:
        flat = m.reshape(m.shape[0], -1)
        th = threshold if n_filt == -1 else np.tile(threshold, flat.shape[1] // len(threshold))
        return (flat >= th[None, :]).astype(np.int64).reshape((m.shape[0], *out_shape))

    return kernel
