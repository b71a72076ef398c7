"""Normalisation kernels: BatchNormalization / ApplyAlpha (nnet::normalize) and LayerNormalization."""

from __future__ import annotations

import re

import numpy as np

from fpgadl.emulator.fastfixed import cast, convert, from_float
from fpgadl.emulator.fixed import FixedType
from fpgadl.emulator.kernels_misc import layer_out_shape
from fpgadl.emulator.registry import (
    attr_type,
    input_types,
    register,
    require,
    result_type,
    weight_mantissas,
)


def norm_constants(layer) -> tuple[np.ndarray, FixedType, np.ndarray, FixedType]:
    """(scale, scale_t, bias, bias_t) of nnet::normalize, mantissas broadcast to every input element:
    per element, or per channel (channels last) when the layer has n_filt. The fast engine and the RTL
    tracer both read the constants here, so they cannot disagree on the broadcast."""
    scale, s_t = weight_mantissas(layer, "scale")
    bias, b_t = weight_mantissas(layer, "bias")
    n_filt = int(layer.get_attr("n_filt", -1))
    n_in = int(layer.get_attr("n_in"))
    idx = np.arange(n_in) if n_filt == -1 else np.arange(n_in) % n_filt
    return scale.reshape(-1)[idx], s_t, bias.reshape(-1)[idx], b_t


@register("BatchNormalization", "ApplyAlpha")
def batch_normalization(layer):
    """normalize(): res = data * scale + bias, in full precision, assigned to res_t."""
    (x_t,) = input_types(layer)
    res_t = result_type(layer)
    scale, s_t, bias, b_t = norm_constants(layer)
    fp = x_t.frac + s_t.frac
    f = max(fp, b_t.frac)
    out_shape = layer_out_shape(layer)
    # data * scale + bias in int64: refuse (never wrap silently) when the full-precision sum could exceed it.
    # The bound uses the actual constants (|x| <= 2**(wx-1)): float scales given wide types are small numbers
    bound = ((1 << (x_t.width - 1)) * int(np.abs(scale).max(initial=0)) << (f - fp)) + (
        int(np.abs(bias).max(initial=0)) << (f - b_t.frac)
    )
    require(layer, bound < 2**62, f"data * scale + bias needs {bound.bit_length() + 1} bits, more than int64 holds")

    def kernel(m):
        n = m.shape[0]
        p = m.reshape(n, -1) * scale
        s = (p << (f - fp)) + (bias << (f - b_t.frac))
        return cast(s, f, res_t).reshape((n, *out_shape))

    return kernel


# ---- layer normalisation -----------------------------------------------------------------------


def _invert_sqrt_table(eps_pow10: int, range_pow2: int, size: int, table_t: FixedType) -> np.ndarray:
    """init_invert_sqr_table: float min/max/step/in_val; 1.0 / sqrt(in_val) in double."""
    min_val = np.float32(10.0**-eps_pow10)  # pow(10.0f, -int) is double, stored as float
    max_val = np.float32(2.0**-range_pow2)
    step = np.float32(max_val / np.float32(size))
    in_val = (min_val + step * np.arange(size, dtype=np.float32)).astype(np.float32)
    return from_float(1.0 / np.sqrt(in_val.astype(np.float64)), table_t)


@register("LayerNormalization")
def layer_normalization(layer):
    """layernormalize(): per sequence step, mean and variance in accum_t, 1/sqrt(var) from a table."""
    from fpgadl.emulator.fastfixed import from_float as _from_float

    (x_t,) = input_types(layer)
    res_t = result_type(layer)
    raw = dict(re.findall(r"static const \w+ (\w+) = ([\w* ]+);", layer.get_attr("config_cpp") or ""))
    # sizes are spelled as C++ products (n_in = 4*8)
    cfg = {k: int(np.prod([int(t) for t in v.split("*")])) for k, v in raw.items() if re.fullmatch(r"[\d* ]+", v)}
    require(layer, {"n_in", "seq_len", "table_size"} <= set(cfg), "cannot read the layernorm config")
    require(layer, re.search(r"nnet::product::mult<", layer.get_attr("config_cpp")) is not None, "product type")
    n_in, seq_len, size = int(cfg["n_in"]), int(cfg["seq_len"]), int(cfg["table_size"])
    eps, rng = int(cfg["epsilon_power_of_10"]), int(cfg["table_range_power2"])
    dim = n_in // seq_len
    accum_t, table_t = attr_type(layer, "accum_t"), attr_type(layer, "table_t")
    scale, s_t = weight_mantissas(layer, "scale")
    bias, b_t = weight_mantissas(layer, "bias")
    scale, bias = scale.reshape(-1), bias.reshape(-1)
    table = _invert_sqrt_table(eps, rng, size, table_t)
    k_inv = _from_float(np.array([1.0 / dim]), accum_t)[0]
    fa = accum_t.frac
    # res = data_diff * deno_inver * scale + bias, formed exactly
    fp = fa + table_t.frac + s_t.frac
    f = max(fp, b_t.frac)
    bound = (1 << (accum_t.width - 1)) * int(np.abs(table).max()) * int(np.abs(scale).max(initial=1)) << (f - fp)
    require(layer, bound + (int(np.abs(bias).max(initial=0)) << (f - b_t.frac)) < 2**62, "result wider than int64")
    require(layer, 2 * accum_t.width < 62, "accumulator products wider than int64")
    out_shape = tuple(int(d) for d in layer.get_output_variable().shape)

    def kernel(m):
        n = m.shape[0]
        x = convert(m.reshape(n, seq_len, dim), x_t, accum_t)  # static_cast<accum_t>(data[i])
        total = np.zeros((n, seq_len), dtype=np.int64)
        for i in range(dim):
            total = cast(total + x[..., i], fa, accum_t)
        mean = cast(total * k_inv, 2 * fa, accum_t)
        diff = cast(x - mean[..., None], fa, accum_t)
        sq = cast(diff * diff, 2 * fa, accum_t)
        total2 = np.zeros((n, seq_len), dtype=np.int64)
        for i in range(dim):
            total2 = cast(total2 + sq[..., i], fa, accum_t)
        var = cast(total2 * k_inv, 2 * fa, accum_t)
        # int index = var * table_size * inv_range_inv: truncation toward zero of an exact product
        num = var * (size << rng)
        idx = np.sign(num) * (np.abs(num) >> fa) if fa >= 0 else num << -fa
        idx = np.clip(idx, 0, size - 1)
        inv = table[idx]
        prod = diff * inv[..., None] * scale
        y = cast((prod << (f - fp)) + (bias << (f - b_t.frac)), f, res_t)
        return y.reshape((n, *out_shape))

    return kernel
