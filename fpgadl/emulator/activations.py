"""Element-wise activation kernels: nnet_activation.h (io_parallel) on int64 mantissas.

The function hls4ml calls is read from the layer's generated call (``function_cpp``), so the
kernel reproduces what the firmware runs, not what the front end meant.  Lookup-table functions
rebuild the firmware's tables exactly: table inputs are computed in single precision as the C++
does, the function itself through the C library the firmware links (``expf``/``tanh`` from libm,
loaded with ctypes, no compiler involved), and the value assigned to ``table_t``.
"""

from __future__ import annotations

import ctypes
import ctypes.util

import numpy as np

from fpgadl.emulator.fastfixed import (
    cast,
    cast_float,
    clip,
    convert,
    float_cast_ok,
    from_float,
    round_saturate_float,
)
from fpgadl.emulator.fixed import FixedType
from fpgadl.emulator.registry import (
    UnsupportedLayerError,
    attr_type,
    firmware_function,
    input_types,
    register,
    require,
    result_type,
    weight_mantissas,
)

LIBM = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
LIBM.expf.restype = ctypes.c_float
LIBM.expf.argtypes = [ctypes.c_float]
LIBM.tanh.restype = ctypes.c_double
LIBM.tanh.argtypes = [ctypes.c_double]
LIBM.log.restype = ctypes.c_double
LIBM.log.argtypes = [ctypes.c_double]


def _int32_wrap(v: np.ndarray) -> np.ndarray:
    return ((v + 2**31) % 2**32) - 2**31


def table_index(
    m: np.ndarray, x_t: FixedType, table_size: int, span: int, offset_num: int, clamp: bool = True
) -> np.ndarray:
    """``int idx = data * table_size / span + offset_num * table_size / span``, clamped.

    ``data * N / span`` is an ap_fixed product divided by an int: the quotient truncates toward
    zero, and ``int`` conversion of an ap_fixed also truncates toward zero.
    """
    offset = offset_num * table_size // span
    pow2 = _pow2_quotient(x_t, table_size, span)
    if pow2 is not None:
        # N / (span * 2**frac) == 2**-k: truncating m * 2**-k toward zero is one biased shift,
        # and the quotient provably fits an int32 (no wrap)
        k = pow2
        if k > 0:
            # the bias 2**k - 1 for negative m from the sign bits: bool * int64 runs a slow casting loop
            q = np.asarray(m, dtype=np.int64) >> 63
            q &= np.int64((1 << k) - 1)
            q += m
            q >>= k
        else:
            q = m << -k
        q += offset
        return clip(q, 0, table_size - 1, out=q) if clamp else q
    num = m * table_size  # value num * 2**-frac / span
    if x_t.frac >= 0:
        n, d = num, span << x_t.frac
    else:
        n, d = num << -x_t.frac, span
    q = np.sign(n) * (np.abs(n) // d)  # truncation toward zero
    idx = _int32_wrap(q) + offset
    return clip(idx, 0, table_size - 1) if clamp else idx


def _pow2_quotient(x_t: FixedType, table_size: int, span: int) -> int | None:
    """k with N / (span * 2**frac) == 2**-k when that is a power of two and every quotient of x_t
    fits an int32 without overflow in int64; else None."""
    if table_size & (table_size - 1) or span & (span - 1):
        return None
    k = span.bit_length() - 1 + x_t.frac - (table_size.bit_length() - 1)
    max_abs = max(-x_t.min_mantissa, x_t.max_mantissa)
    if x_t.width > 62 or max_abs * table_size >= 2**62 or (k < 0 and max_abs << -k >= 2**31):
        return None
    if k >= 0 and max_abs >> k >= 2**31 - table_size:
        return None
    return k


def lut_inputs(table_size: int, half_range: float) -> np.ndarray:
    """``float in_val = 2 * R * (ii - float(N) / 2.0) / float(N)`` (evaluated in double, stored float)."""
    ii = np.arange(table_size, dtype=np.float64)
    n = np.float64(np.float32(table_size))
    return (2 * half_range * (ii - n / 2.0) / n).astype(np.float32)


def sigmoid_table(table_size: int, table_t: FixedType) -> np.ndarray:
    vals = []
    for v in lut_inputs(table_size, 8.0):
        e = np.float32(LIBM.expf(float(-v)))
        denom = np.float32(np.float32(1) + e)  # int + float is float
        vals.append(np.float32(1.0 / np.float64(denom)))  # 1.0 / float is double, returned as float
    return from_float(np.array(vals, dtype=np.float64), table_t)


def tanh_table(table_size: int, table_t: FixedType) -> np.ndarray:
    # `tanh(in_val)` in init_tanh_table resolves to ::tanh(double) (nnet::tanh is declared later).
    vals = [LIBM.tanh(float(v)) for v in lut_inputs(table_size, 4.0)]
    return from_float(np.array(vals, dtype=np.float64), table_t)


def elu_table(table_size: int, table_t: FixedType) -> np.ndarray:
    # in_val = -8.0 * ii / float(N) (double, stored float); std::exp(float) - 1. is double, returned float
    ii = np.arange(table_size, dtype=np.float64)
    in_val = (-8.0 * ii / np.float64(np.float32(table_size))).astype(np.float32)
    vals = [np.float32(np.float64(LIBM.expf(float(v))) - 1.0) for v in in_val]
    return from_float(np.array(vals, dtype=np.float64), table_t)


def softplus_table(table_size: int, table_t: FixedType) -> np.ndarray:
    # std::log(std::exp(input) + 1.): expf, then double addition and log, returned as float
    vals = [np.float32(LIBM.log(float(np.float32(LIBM.expf(float(v)))) + 1.0)) for v in lut_inputs(table_size, 8.0)]
    return from_float(np.array(vals, dtype=np.float64), table_t)


def softsign_table(table_size: int, table_t: FixedType) -> np.ndarray:
    # input / (std::abs(input) + 1.): float abs, double arithmetic, returned as float
    vals = [np.float32(float(v) / (abs(float(v)) + 1.0)) for v in lut_inputs(table_size, 8.0)]
    return from_float(np.array(vals, dtype=np.float64), table_t)


def selu_table(table_size: int, table_t: FixedType) -> np.ndarray:
    ii = np.arange(table_size, dtype=np.float64)
    in_val = (-8.0 * ii / np.float64(np.float32(table_size))).astype(np.float32)
    vals = [
        np.float32(
            1.0507009873554804934193349852946 * (1.6732632423543772848170429916717 * (LIBM.expf(float(v)) - 1.0))
        )
        for v in in_val
    ]
    return from_float(np.array(vals, dtype=np.float64), table_t)


def lut_activation(name: str, x_t: FixedType, res_t: FixedType, table_size: int, table_t: FixedType):
    """A table activation (sigmoid, tanh, softplus, softsign) from input mantissas to result mantissas."""
    if name == "sigmoid":
        table, span, off = sigmoid_table(table_size, table_t), 16, 8
    elif name == "softplus":
        table, span, off = softplus_table(table_size, table_t), 16, 8
    elif name == "softsign":
        table, span, off = softsign_table(table_size, table_t), 16, 8
    elif name == "tanh":
        table, span, off = tanh_table(table_size, table_t), 8, 4
    else:
        raise ValueError(name)
    out = cast(table, table_t.frac, res_t)  # res[ii] = (res_T) table[index]

    def fn(m):
        # take's index clipping is table_index's clamp: one pass fewer than clamping, then indexing
        return out.take(table_index(m, x_t, table_size, span, off, clamp=False), mode="clip")

    fn.max_abs = int(np.abs(out).max())  # bound on every output mantissa, for overflow proofs
    fn.float_lookup = _float_lookup(out, x_t, table_size, span, off)
    return fn


def _float_lookup(out: np.ndarray, x_t: FixedType, table_size: int, span: int, offset_num: int):
    """``fn`` on float64 mantissas of x_t (|m| < 2**53), returning float64 ones; None unless the
    index is a power-of-two quotient (table_index's shift path), where it is trunc(m * 2**-k): exact.

    The lookup carries ``scale`` (2**-k), ``offset`` and ``table`` (float64) so that a caller that
    already holds m * scale (scaled weights) can index the table itself with ``table_lookup``."""
    k = _pow2_quotient(x_t, table_size, span)
    if k is None:
        return None
    scale, offset, table = 2.0**-k, offset_num * table_size // span, out.astype(np.float64)

    def lookup(v: np.ndarray) -> np.ndarray:
        return table_lookup(table, np.multiply(v, scale), offset)

    lookup.scale, lookup.offset, lookup.table = scale, offset, table
    return lookup


def table_lookup(table: np.ndarray, q: np.ndarray, offset: int) -> np.ndarray:
    """``table[clamp(trunc(q) + offset)]`` for float quotients q (|q| < 2**31, as _pow2_quotient proves).

    The cast to an integer truncates toward zero, as the firmware's quotient and int conversion do;
    ``mode="clip"`` is the index clamp."""
    idx = q.astype(np.intp)
    idx += offset
    return np.take(table, idx, mode="clip")


def _elementwise(layer, fn):
    out_shape = tuple(layer.get_output_variable().shape)

    def kernel(x: np.ndarray) -> np.ndarray:
        return fn(x).reshape((x.shape[0], *out_shape))

    return kernel


@register("Activation")
def activation(layer):
    (x_t,) = input_types(layer)
    res_t = result_type(layer)
    name = firmware_function(layer, required=True)
    if name == "binary_tanh":
        from fpgadl.emulator.kernels_binary import binary_tanh

        return binary_tanh(layer)
    if name in ("linear", "relu"):
        relu = name == "relu"
        kernel = _elementwise(layer, lambda m: convert(np.maximum(m, 0) if relu else m, x_t, res_t))

        def float_stage(bound: int, dtype):
            """The same function on exact-integer floats (|m| <= bound), for a fused producer."""
            if not float_cast_ok(bound, x_t.frac, res_t, dtype):
                return None

            # rounding is monotone and keeps 0, so a saturating cast onto a grid >= 0 clips at 0
            # already: max(v, 0) changes nothing then (and costs a full pass)
            clips_at_zero = res_t.min_mantissa >= 0 and res_t.saturation in ("SAT", "SAT_SYM")

            def fn(v: np.ndarray) -> np.ndarray:
                if relu and not clips_at_zero:
                    np.maximum(v, 0, out=v)
                return cast_float(v, x_t.frac, res_t)

            shift = x_t.frac - res_t.frac
            if 0 < shift < 60:
                # cast_float scales by 2**-shift first: a producer may fold that into its weights and hand
                # over v * 2**-shift (max(v, 0) commutes with a positive scale), leaving one rounding pass
                def prescaled(v: np.ndarray) -> np.ndarray:
                    if relu and not clips_at_zero:
                        np.maximum(v, 0, out=v)
                    return round_saturate_float(v, shift, res_t)

                fn.prescale, fn.prescaled = 2.0**-shift, prescaled
            return fn

        kernel.float_stage = float_stage
        return kernel
    if name in ("relu6", "relu1"):
        top = 6 if name == "relu6" else 1

        def relu_max(m):
            hi = top << x_t.frac if x_t.frac >= 0 else None
            require(layer, hi is not None, "relu_max on a type without fractional bits")
            return cast(np.clip(m, 0, hi), x_t.frac, res_t)

        return _elementwise(layer, relu_max)
    if name in ("sigmoid", "tanh", "softplus", "softsign"):
        table_size = int(layer.get_attr("table_size"))
        return _elementwise(layer, lut_activation(name, x_t, res_t, table_size, attr_type(layer, "table_t")))
    if name == "selu":
        table_size = int(layer.get_attr("table_size"))
        table_t = attr_type(layer, "table_t")
        table = cast(selu_table(table_size, table_t), table_t.frac, res_t)
        lam_t = FixedType(16, 1, signed=False)  # typedef ap_ufixed<16, 1> selu_const_t
        lam = from_float(np.array([1.0507009873554805]), lam_t)[0]

        def selu(m):
            # index = datareg * N / -8, clamped to [0, N-1]; positive branch lambda * datareg
            idx = np.clip(-table_index(m, x_t, table_size, 8, 0, clamp=False), 0, table_size - 1)
            return np.where(m >= 0, cast(m * lam, x_t.frac + lam_t.frac, res_t), table[idx])

        return _elementwise(layer, selu)
    raise UnsupportedLayerError(layer, f"activation function nnet::{name}")


@register("ParametrizedActivation")
def parametrized_activation(layer):
    (x_t,) = input_types(layer)
    res_t = result_type(layer)
    name = firmware_function(layer, required=True)
    param_t = attr_type(layer, "param_t")
    alpha = from_float(np.array([float(layer.get_attr("activ_param", 1.0))]), param_t)[0]
    if name == "leaky_relu":
        frac = x_t.frac + param_t.frac

        def leaky(m):
            # res = datareg > 0 ? datareg : alpha * datareg (full-precision product)
            return np.where(m > 0, cast(m, x_t.frac, res_t), cast(m * alpha, frac, res_t))

        return _elementwise(layer, leaky)
    if name == "thresholded_relu":
        # datareg > theta compares ap_fixed with param_t exactly
        f = max(x_t.frac, param_t.frac)
        theta = alpha << (f - param_t.frac)
        return _elementwise(layer, lambda m: np.where((m << (f - x_t.frac)) > theta, cast(m, x_t.frac, res_t), 0))
    if name == "elu":
        table_size = int(layer.get_attr("table_size"))
        table_t = attr_type(layer, "table_t")
        table = elu_table(table_size, table_t)
        frac = param_t.frac + table_t.frac

        def elu(m):
            # index = datareg * N / -8: quotient and int conversion both truncate toward zero
            idx = -table_index(m, x_t, table_size, 8, 0, clamp=False)
            idx = np.minimum(idx, table_size - 1)
            neg = cast(alpha * table[np.clip(idx, 0, table_size - 1)], frac, res_t)
            return np.where(m >= 0, cast(m, x_t.frac, res_t), neg)

        return _elementwise(layer, elu)
    raise UnsupportedLayerError(layer, f"activation function nnet::{name}")


@register("PReLU")
def prelu(layer):
    """prelu(): res = data > 0 ? data : alpha[i] * data (full-precision product)."""
    (x_t,) = input_types(layer)
    res_t = result_type(layer)
    alpha, a_t = weight_mantissas(layer, "param")
    alpha = alpha.reshape(-1)
    frac = x_t.frac + a_t.frac

    def kernel(m):
        flat = m.reshape(m.shape[0], -1)
        y = np.where(flat > 0, cast(flat, x_t.frac, res_t), cast(flat * alpha, frac, res_t))
        return y.reshape(m.shape)

    return kernel
