"""Softmax kernel: the four nnet_activation.h variants (stable, latency, legacy, argmax).

All table sizes and types are read from the layer's generated C++ config (``config_cpp``), so the
kernel uses the values the firmware was compiled with (after hls4ml's table-size fixes and
``inp_norm_t`` defaulting).  Tables are rebuilt as the C++ builds them: the address of a table
entry is the top ``ceillog2(size)`` bits of the input's raw bits, table inputs are single-precision
floats, ``std::exp(float)`` is libm's ``expf``.  Sums use hls4ml's balanced-tree ``reduce`` with
every partial sum assigned to ``accum_t``.
"""

from __future__ import annotations

import re

import numpy as np

from fpgadl.emulator.activations import LIBM, lut_inputs, table_index
from fpgadl.emulator.fastfixed import cast, from_float
from fpgadl.emulator.fixed import FixedType
from fpgadl.emulator.registry import (
    UnsupportedLayerError,
    fixed_type,
    input_types,
    is_io_stream,
    register,
    require,
    result_type,
)


def _ceillog2(x: int) -> int:
    return 1 if x <= 2 else 1 + _ceillog2((x + 1) // 2)


def _floorlog2(x: int) -> int:
    return 0 if x < 2 else 1 + _floorlog2(x // 2)


def _config(layer) -> dict[str, str]:
    text = layer.get_attr("config_cpp") or ""
    values = dict(re.findall(r"static (?:const|constexpr) [\w:]+ (\w+) = ([^;]+);", text))
    values.update({name: typ for typ, name in re.findall(r"typedef ([^;]+?) (\w+);", text)})
    if not values:
        raise UnsupportedLayerError(layer, "no generated config to read the softmax parameters from")
    return values


def _type(layer, spelled: str) -> FixedType:
    """A typedef'd type of the config: a literal ap_[u]fixed<...> or the name of a layer type."""
    spelled = spelled.strip()
    if "<" in spelled:
        return FixedType.parse(spelled)
    for value in layer.attributes.values():
        if getattr(value, "name", None) == spelled and hasattr(value, "precision"):
            return fixed_type(layer, value.precision)
    for var in layer.variables.values() if hasattr(layer, "variables") else []:
        if var.type.name == spelled:
            return fixed_type(layer, var.type.precision)
    raise UnsupportedLayerError(layer, f"cannot resolve type {spelled}")


def _raw(m: np.ndarray, t: FixedType) -> np.ndarray:
    return m & np.int64((1 << t.width) - 1)


def _idx_from_real_val(m: np.ndarray, t: FixedType, size: int) -> np.ndarray:
    """softmax_idx_from_real_val: the top N = ceillog2(size) raw bits."""
    n = _ceillog2(size)
    return _raw(m, t) >> (t.width - n)


def _real_val_from_idx(t: FixedType, size: int) -> np.ndarray:
    """softmax_real_val_from_idx: x(W-1, W-N) = i on a zero data_T, returned as float."""
    n = _ceillog2(size)
    raw = np.arange(size, dtype=np.int64) << (t.width - n)
    if t.signed:
        raw = np.where(raw >= 1 << (t.width - 1), raw - (1 << t.width), raw)
    return np.ldexp(raw.astype(np.float64), -t.frac).astype(np.float32)


def _exp_table(addr_t: FixedType, size: int, scale: np.float32, negative: bool, exp_t: FixedType) -> np.ndarray:
    vals = []
    for x in _real_val_from_idx(addr_t, size):
        x = np.float32(x * scale)
        if negative:
            x = -x
        vals.append(LIBM.expf(float(x)))
    return from_float(np.array(vals, dtype=np.float64), exp_t)


def _invert_table(addr_t: FixedType, size: int, inv_t: FixedType) -> np.ndarray:
    with np.errstate(divide="ignore"):
        vals = np.float32(1) / _real_val_from_idx(addr_t, size)  # `1 / x`: float division
    return from_float(vals.astype(np.float64), inv_t)


def tree_sum(values: list[np.ndarray], t: FixedType) -> np.ndarray:
    """nnet::reduce<accum_t, N, Op_add<accum_t>>: balanced tree, every a + b assigned to accum_t."""
    n = len(values)
    if n == 1:
        return values[0]
    if n == 2:
        return cast(values[0] + values[1], t.frac, t)
    left = 2 ** _floorlog2(n - 1)
    return cast(tree_sum(values[:left], t) + tree_sum(values[left:], t), t.frac, t)


@register("Softmax")
def softmax(layer):
    (x_t,) = input_types(layer)
    res_t = result_type(layer)
    cfg = _config(layer)
    impl = cfg["implementation"].split("::")[-1]
    n_in, n_slice = int(cfg["n_in"]), int(cfg["n_slice"])
    n_outer, n_inner = int(cfg["n_outer"]), int(cfg["n_inner"])
    require(layer, n_outer * n_slice * n_inner == n_in, "inconsistent softmax slicing")
    if is_io_stream(layer):
        # The streaming softmax normalises each stream word separately; it equals the parallel one
        # when one word holds the whole vector.
        pack = getattr(layer.get_input_variable().type, "n_elem", None)
        require(layer, pack == n_in and n_outer == n_inner == 1, "streaming softmax over several stream words")
    out_shape = tuple(int(d) for d in layer.get_output_variable().shape)

    def sliced(fn):
        # softmax_multidim: element (o, j, k) at o * n_slice * n_inner + j * n_inner + k
        def kernel(m):
            n = m.shape[0]
            x = m.reshape(n, n_outer, n_slice, n_inner).transpose(0, 1, 3, 2).reshape(-1, n_slice)
            y = fn(x)
            y = y.reshape(n, n_outer, n_inner, n_slice).transpose(0, 1, 3, 2)
            return np.ascontiguousarray(y).reshape((n, *out_shape))

        return kernel

    if impl == "argmax":

        def argmax(x):
            y = np.zeros_like(x)
            # first maximum wins: `if (data[i] > maximum)` keeps the earliest index
            y[np.arange(x.shape[0]), np.argmax(x, axis=1)] = from_float(np.array([1.0]), res_t)[0]
            return y

        return sliced(argmax)

    if impl == "legacy":
        # the softmax config does not typedef table_t, so nnet::activ_config's ap_fixed<18,8> applies
        table_t = _type(layer, cfg["table_t"]) if "table_t" in cfg else FixedType(18, 8)
        return sliced(_legacy(layer, x_t, res_t, table_t, int(cfg["exp_table_size"]), int(cfg["inv_table_size"])))

    require(layer, impl in ("stable", "latency"), f"softmax implementation {impl}")
    exp_size, inv_size = int(cfg["exp_table_size"]), int(cfg["inv_table_size"])
    exp_t = _type(layer, cfg["exp_table_t"])
    inv_t = _type(layer, cfg["inv_table_t"])
    accum_t = _type(layer, cfg["accum_t"])
    inv_inp_t = _type(layer, cfg["inv_inp_t"])
    scale = np.float32(float(cfg.get("exp_scale", "1.0")))
    if impl == "stable":
        norm_t = _type(layer, cfg["inp_norm_t"])
        addr_t = norm_t
    else:
        norm_t = None
        addr_t = x_t
    require(layer, addr_t.width >= _ceillog2(exp_size), "exp table address wider than its input")
    require(layer, inv_inp_t.width >= _ceillog2(inv_size), "inverse table address wider than its input")
    exp_table = cast(_exp_table(addr_t, exp_size, scale, impl == "stable", exp_t), exp_t.frac, accum_t)
    inv_table = _invert_table(inv_inp_t, inv_size, inv_t)

    def fn(x):
        if impl == "stable":
            x_max = x.max(axis=1, keepdims=True)
            d = cast(x_max - x, x_t.frac, norm_t)  # inp_norm_t d = x_max - data[i]
            exp_res = exp_table[_idx_from_real_val(d, norm_t, exp_size)]
        else:
            exp_res = exp_table[_idx_from_real_val(x, x_t, exp_size)]
        total = tree_sum([exp_res[:, i] for i in range(exp_res.shape[1])], accum_t)
        exp_sum = cast(total, accum_t.frac, inv_inp_t)
        inv = inv_table[_idx_from_real_val(exp_sum, inv_inp_t, inv_size)]
        return cast(exp_res * inv[:, None], accum_t.frac + inv_t.frac, res_t)

    return sliced(fn)


def _legacy(layer, x_t, res_t, table_t, exp_size, inv_size):
    exp_in = lut_inputs(exp_size, 8.0)
    exp_table = from_float(np.array([LIBM.expf(float(v)) for v in exp_in], dtype=np.float64), table_t)
    inv_in = (np.float64(64.0) * np.arange(inv_size) / np.float64(np.float32(inv_size))).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv_vals = np.where(inv_in > 0, 1.0 / inv_in.astype(np.float64), 0.0)
    inv_table = from_float(inv_vals, table_t)
    one = from_float(np.array([1.0]), table_t)[0]

    def fn(x):
        n, k = x.shape
        exp_res = np.zeros((n, k), dtype=np.int64)
        for i in range(k):
            for j in range(k):
                if i == j:
                    e = np.full(n, one)
                else:
                    diff = x[:, j] - x[:, i]  # exact difference, data_T frac
                    e = exp_table[table_index(diff, x_t, exp_size, 16, 8)]
                exp_res[:, i] = cast(exp_res[:, i] + e, table_t.frac, table_t)
        idx = table_index(exp_res, table_t, inv_size, 64, 0)
        return cast(inv_table[idx], table_t.frac, res_t)

    return fn
