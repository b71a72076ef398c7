"""Dense and convolution kernels (io_parallel, latency and resource strategies).

hls4ml's ``dense_latency`` (and the conv kernels, which run it on im2col patches) computes each
product ``data * weight`` in full precision, assigns it to ``accum_t`` (rounding and overflow of
``accum_t`` apply per product), starts every accumulator from ``(accum_t) bias``, adds the
products in input order with the sum assigned back to ``accum_t`` after every step, and finally
assigns the accumulator to the result type.  Here the same arithmetic runs on int64 mantissas.
Whole-array shortcuts are taken only where they are provably identical: a wrapping accumulator is
arithmetic modulo 2**width (so the order of additions is irrelevant), and when no partial sum can
leave the accumulator's range its overflow mode never acts.  Integer matrix products go through
float64 BLAS only when every partial sum is an integer below 2**53, where float64 is exact.
"""

from __future__ import annotations

import re

import numpy as np

from fpgadl.emulator.fastfixed import cast, convert
from fpgadl.emulator.fixed import FixedType
from fpgadl.emulator.registry import (
    UnsupportedLayerError,
    attr_type,
    input_types,
    register,
    require,
    result_type,
    weight_mantissas,
)

_EXACT_FLOAT = 2**53  # integers below this are exact in float64, and so are their sums
_EXACT_INT = 2**62
# Upper bound on elements of a (batch, n_in, n_out) product tensor materialised at once.
_MAX_PRODUCT_ELEMENTS = 1 << 24
# Largest im2col-folded conv weight matrix (elements) used instead of gathering patches.
_MAX_UNROLLED_WEIGHTS = 1 << 22


def _max_abs_mantissa(t: FixedType) -> int:
    return max(abs(t.min_mantissa), abs(t.max_mantissa))


def _is_modular(t: FixedType) -> bool:
    return t.saturation == "WRAP" and t.saturation_bits == 0


def _product_weights(layer, w: np.ndarray, w_t: FixedType) -> np.ndarray:
    """Effective weight mantissas of the C++ product function in the layer's generated config."""
    products = set(re.findall(r"nnet::product::(\w+)<", layer.get_attr("config_cpp") or ""))
    require(layer, len(products) == 1, f"cannot read the product function from the config ({products or 'none'})")
    (product,) = products
    if product == "weight_ternary":
        # product::weight_ternary: w == 0 -> 0, w == -1 -> -a, anything else -> +a
        return np.where(w == 0, 0, np.where(w == -1, -1, 1)).astype(np.int64)
    require(layer, product == "mult", f"product function nnet::product::{product}")
    return w


class DenseArithmetic:
    """``acc = (accum_t) bias; acc += (accum_t)(x_i * w_ij); res = (result_t) acc``, vectorised.

    ``w`` has shape (n_in, n_out), index ``i * n_out + j`` as in the firmware's weight array.
    """

    def __init__(
        self,
        layer,
        x_t: FixedType,
        w: np.ndarray,
        w_t: FixedType,
        b: np.ndarray | None,
        b_t: FixedType | None,
        accum_t: FixedType,
        res_t: FixedType,
    ):
        w_eff = _product_weights(layer, w.astype(np.int64), w_t)
        if b is None:
            b_acc = np.zeros(w_eff.shape[1], dtype=np.int64)
        else:
            b_acc = cast(b.astype(np.int64), b_t.frac, accum_t)  # acc = (accum_t) bias
        self._setup(layer, x_t, w_eff, x_t.frac + w_t.frac, b_acc, accum_t, res_t)

    @classmethod
    def from_accum_bias(cls, other: DenseArithmetic, w: np.ndarray, b_acc: np.ndarray) -> DenseArithmetic:
        """Same types as `other`, new effective weights and bias already in accum_t."""
        new = cls.__new__(cls)
        new._setup(other.layer, other.x_t, w, other.p_frac, b_acc, other.accum_t, other.res_t)
        return new

    def _setup(self, layer, x_t, w, p_frac, b_acc, accum_t, res_t):
        self.layer = layer
        self.x_t, self.accum_t, self.res_t = x_t, accum_t, res_t
        self.w = w
        self.p_frac = p_frac
        self.b_acc = b_acc
        self.shift = accum_t.frac - self.p_frac
        xmax = _max_abs_mantissa(x_t)
        # exact Python ints: the largest |sum of products| any output column can reach
        absw = np.abs(self.w)
        if int(absw.max(initial=0)) * max(1, absw.shape[0]) < 2**62:
            colsum = int(absw.sum(axis=0).max(initial=0))
        else:
            colsum = int(max(absw.astype(object).sum(axis=0), default=0))
        col_bound = xmax * colsum
        self.fits_float = col_bound < _EXACT_FLOAT
        # float32 BLAS is exact too while every partial sum stays below 2**24
        self.blas_dtype = np.float32 if col_bound < 2**24 else np.float64
        self.w_float = self.w.astype(self.blas_dtype)
        self.fast = False
        self.accum_identity = False
        if self.shift >= 0 and col_bound * 2**self.shift < _EXACT_INT:
            # Products are exact on accum_t's grid, so only overflow could act per product/step.
            worst = int(np.abs(self.b_acc).max(initial=0)) + col_bound * 2**self.shift
            never_overflows = accum_t.signed and worst <= min(accum_t.max_mantissa, -accum_t.min_mantissa)
            self.fast = _is_modular(accum_t) or never_overflows
            # Without overflow every assignment to accum_t is the identity.
            self.accum_identity = bool(never_overflows)
        if not self.fast and col_bound >= _EXACT_INT:
            raise UnsupportedLayerError(layer, "accumulator sums wider than 62 bits")

    def _products_int(self, x: np.ndarray) -> np.ndarray:
        """Exact x @ w as int64 (x: (N, n_in))."""
        if self.fits_float:
            y = x.astype(self.blas_dtype) @ self.w_float
            # float32 -> int64 is slow in numpy; via int32 (exact: |y| < 2**24) it is not
            return y.astype(np.int32).astype(np.int64) if self.blas_dtype == np.float32 else y.astype(np.int64)
        return x @ self.w

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.fast:
            s = self._products_int(x)
            if self.shift:
                s = s << self.shift
            acc = s + self.b_acc
            if not self.accum_identity:
                acc = cast(acc, self.accum_t.frac, self.accum_t)
            return convert(acc, self.accum_t, self.res_t)
        return convert(self._sequential(x), self.accum_t, self.res_t)

    def _sequential(self, x: np.ndarray) -> np.ndarray:
        n, n_in = x.shape
        n_out = self.w.shape[1]
        acc_out = np.empty((n, n_out), dtype=np.int64)
        step = max(1, _MAX_PRODUCT_ELEMENTS // max(1, n_in * n_out))
        for lo in range(0, n, step):
            xs = x[lo : lo + step]
            prod = xs[:, :, None] * self.w[None, :, :]  # full-precision products, frac p_frac
            q = cast(prod, self.p_frac, self.accum_t)  # each product assigned to accum_t
            acc = np.broadcast_to(self.b_acc, (xs.shape[0], n_out)).copy()
            if _is_modular(self.accum_t):
                acc = cast(acc + q.sum(axis=1), self.accum_t.frac, self.accum_t)
            else:
                for i in range(n_in):  # acc += mult: the sum is assigned back every step
                    acc = cast(acc + q[:, i, :], self.accum_t.frac, self.accum_t)
            acc_out[lo : lo + step] = acc
        return acc_out


def _check_strategy(layer, arith: DenseArithmetic) -> None:
    strategy = str(layer.get_attr("strategy", "latency")).lower()
    require(layer, strategy in ("latency", "resource"), f"strategy {strategy}")
    if strategy == "resource":
        # Resource kernels add the same per-product accum_t values in another order; that order
        # is irrelevant when the accumulator wraps or provably never overflows.
        require(
            layer,
            _is_modular(arith.accum_t) or arith.accum_identity,
            "resource strategy with an accum_t that can saturate (accumulation order not modelled)",
        )


def matrix(layer, key: str) -> tuple[np.ndarray, FixedType]:
    """A weight matrix as (n_in, n_out) mantissas, index ``i * n_out + j`` as dense_latency reads it.

    The resource strategy stores the transpose (hls4ml's ApplyResourceStrategy moves the output
    axis first); dense_resource indexes that layout, so the arithmetic is the same matrix.
    """
    w, w_t = weight_mantissas(layer, key)
    if layer.get_attr("_weights_transposed", False):
        return w.reshape(w.shape[0], -1).T.copy(), w_t
    return w.reshape(-1, w.shape[-1]), w_t


def _layer_arith(layer) -> DenseArithmetic:
    (x_t,) = input_types(layer)
    accum_t = attr_type(layer, "accum_t")
    w, w_t = matrix(layer, "weight")
    b, b_t = (None, None)
    if "bias" in layer.weights:
        b, b_t = weight_mantissas(layer, "bias")
    arith = DenseArithmetic(layer, x_t, w, w_t, b, b_t, accum_t, result_type(layer))
    _check_strategy(layer, arith)
    return arith


@register("Dense")
def dense(layer):
    from fpgadl.emulator.kernels_binary import binary_dense, is_xnor

    if is_xnor(layer.get_input_variable().type.precision) or is_xnor(layer.types["weight_t"].precision):
        return binary_dense(layer)
    arith = _layer_arith(layer)
    out_shape = tuple(layer.get_output_variable().shape)
    n_in = arith.w.shape[0]

    def kernel(x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        # hls4ml Dense on a multi-dimensional input applies to the last axis.
        y = arith(x.reshape(-1, n_in))
        return y.reshape((n, *out_shape))

    return kernel


def _im2col_index(in_shape, kernel, stride, pads):
    """Flat input indices (or -1 for zero padding) of every patch, patch order (f..., c)."""
    *spatial, n_chan = in_shape
    grids = []
    out_spatial = []
    for size, k, s, (p0, p1) in zip(spatial, kernel, stride, pads):
        out = (size + p0 + p1 - k) // s + 1
        out_spatial.append(out)
        pos = np.arange(out)[:, None] * s + np.arange(k)[None, :] - p0  # (out, k)
        grids.append(pos)
    idx = np.zeros([*out_spatial, *kernel, n_chan], dtype=np.int64)
    valid = np.ones(idx.shape, dtype=bool)
    ndim = len(spatial)
    strides_in = np.cumprod([1, n_chan, *spatial[::-1][:-1]])[::-1]  # elements per step of each spatial dim
    for d, pos in enumerate(grids):
        shape = [1] * (2 * ndim + 1)
        shape[d] = pos.shape[0]
        shape[ndim + d] = pos.shape[1]
        p = pos.reshape(shape)
        idx = idx + p * int(strides_in[d])
        valid &= (p >= 0) & (p < spatial[d])
    idx = idx + np.arange(n_chan)
    idx = np.where(valid, idx, -1)
    return idx.reshape(int(np.prod(out_spatial)), -1), out_spatial


def _conv_builder(layer, ndim: int):
    data_format = layer.get_attr("data_format", "channels_last")
    require(layer, data_format == "channels_last", f"data_format {data_format}")
    for attr in ("dilation", "dilation_width", "dilation_height"):
        require(layer, layer.get_attr(attr, 1) in (1, None), "dilated convolution")
    in_var = layer.get_input_variable()
    if ndim == 1:
        in_shape = (layer.get_attr("in_width"), layer.get_attr("n_chan"))
        kernel = (layer.get_attr("filt_width"),)
        stride = (layer.get_attr("stride_width"),)
        pads = ((layer.get_attr("pad_left"), layer.get_attr("pad_right")),)
    else:
        in_shape = (layer.get_attr("in_height"), layer.get_attr("in_width"), layer.get_attr("n_chan"))
        kernel = (layer.get_attr("filt_height"), layer.get_attr("filt_width"))
        stride = (layer.get_attr("stride_height"), layer.get_attr("stride_width"))
        pads = (
            (layer.get_attr("pad_top"), layer.get_attr("pad_bottom")),
            (layer.get_attr("pad_left"), layer.get_attr("pad_right")),
        )
    require(layer, int(np.prod(in_var.shape)) == int(np.prod(in_shape)), "input shape mismatch")
    arith = _layer_arith(layer)
    idx, _ = _im2col_index(in_shape, kernel, stride, pads)
    pad = idx < 0
    gather = np.where(pad, 0, idx)
    out_shape = tuple(layer.get_output_variable().shape)
    n_pix, patch = idx.shape
    n_filt = arith.w.shape[1]
    require(layer, arith.w.shape[0] == patch, "weight shape does not match the patch size")
    in_size = int(np.prod(in_shape))

    if arith.fast and in_size * n_pix * n_filt <= _MAX_UNROLLED_WEIGHTS:
        # Fold im2col into one (in_size, n_pix * n_filt) weight matrix: the same products,
        # plus exact zeros, so the fast path's single exact sum is unchanged.
        w_big = np.zeros((in_size, n_pix, n_filt), dtype=np.int64)
        pix, pos = np.nonzero(~pad)
        w_big[idx[pix, pos], pix, :] = arith.w[pos, :]
        b_big = np.tile(arith.b_acc, n_pix)
        unrolled = DenseArithmetic.from_accum_bias(arith, w_big.reshape(in_size, -1), b_big)
        if unrolled.fast:

            def kern_unrolled(x: np.ndarray) -> np.ndarray:
                n = x.shape[0]
                return unrolled(x.reshape(n, in_size)).reshape((n, *out_shape))

            return kern_unrolled

    def kern(x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        flat = x.reshape(n, -1)
        cols = flat[:, gather]  # (n, n_pix, patch)
        if pad.any():
            cols = np.where(pad, 0, cols)
        y = arith(cols.reshape(n * n_pix, patch))
        return y.reshape((n, *out_shape))

    return kern


# hls4ml turns 1x1 convolutions into Pointwise classes; their kernels (pointwise_conv_1d_latency_cl,
# and conv_2d_latency_cl for 2-D) compute the same per-product accum_t sums over the channels.
@register("Conv1D", "PointwiseConv1D")
def conv1d(layer):
    return _conv_builder(layer, 1)


@register("Conv2D", "PointwiseConv2D")
def conv2d(layer):
    return _conv_builder(layer, 2)
