"""Trace a converted hls4ml graph into a da4ml program: the same layers and types the fast engine runs.

Each supported hls4ml layer class has one tracer here (registered like the emulator's kernels): it
reads the layer exactly as the fast engine's builder does (weights as the firmware holds them, the
product function, accumulator and result types) and applies the same arithmetic to da4ml's symbolic
fixed-point arrays instead of int64 mantissas.  Constant matrix products become da4ml's optimised
adder graphs.  A layer with no exact traced form (lookup-table activations, softmax, recurrent
layers, accumulators that saturate part-way through a sum) is refused; every refused layer is named
in one error, never approximated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from da4ml.trace import FixedVariable, FixedVariableArray, HWConfig

import fpgadl.emulator.kernels  # noqa: F401  (fills the emulator's registry the tracers reuse)
from fpgadl.core.errors import UsageError
from fpgadl.emulator.fixed import FixedType
from fpgadl.emulator.kernels_dense import CONV_DIMS, DenseArithmetic, conv_patches, layer_arith
from fpgadl.emulator.kernels_norm import norm_constants
from fpgadl.emulator.kernels_pool import pad_pattern, pool_geometry
from fpgadl.emulator.registry import (
    UnsupportedLayerError,
    attr_type,
    build_from,
    data_inputs,
    firmware_function,
    fixed_type,
    input_types,
    registrar,
    result_type,
)
from fpgadl.rtl.fixed import NotTraceable, cast, convert, kif

Tracer = Callable[..., FixedVariableArray]
_TRACERS: dict[str, Callable[[object], Tracer]] = {}
# float32 holds integers below 2**24 exactly; da4ml's constant-matrix solver reads weights as float32
_EXACT_F32 = 2**24


class UnsupportedRTLError(UsageError):
    """The model has layers with no exact RTL form; the message names every one of them."""


register = registrar(_TRACERS, "tracer")


def supported_classes() -> list[str]:
    return sorted(_TRACERS)


def layer_out_shape(layer) -> tuple[int, ...]:
    return tuple(int(d) for d in layer.get_output_variable().shape)


def _array(vars_: np.ndarray, like: FixedVariableArray) -> FixedVariableArray:
    return FixedVariableArray(vars_, like.solver_options, hwconf=like.hwconf)


def _const(value: float, like: FixedVariableArray) -> FixedVariable:
    return FixedVariable.from_const(value, hwconf=like.hwconf, _factor=1)


def _matmul(layer, x: FixedVariableArray, arith: DenseArithmetic) -> FixedVariableArray:
    """acc = bias + sum_i x_i * w_ij, then what accum_t and result_t make of it (fast-path arithmetic)."""
    if not arith.fast:
        raise UnsupportedLayerError(layer, "accumulator that can saturate part-way through the sum")
    if int(np.abs(arith.w).max(initial=0)) >= _EXACT_F32:
        raise UnsupportedLayerError(layer, "weights wider than 24 bits")
    # product value = x * w_eff * 2**-(p_frac - x_frac); exact on accum_t's grid (arith.fast)
    w = np.ldexp(arith.w.astype(np.float64), -(arith.p_frac - arith.x_t.frac))
    acc = x @ w + np.ldexp(arith.b_acc.astype(np.float64), -arith.accum_t.frac)
    if not arith.accum_identity:  # a wrapping accumulator: the exact sum modulo 2**width
        acc = cast(acc, arith.accum_t.frac, arith.accum_t)
    return convert(acc, arith.accum_t, arith.res_t)


@register("Input")
def _input(layer):
    return lambda x: x


@register("Dense")
def _dense(layer):
    arith = layer_arith(layer)
    n_in = arith.w.shape[0]
    out_shape = layer_out_shape(layer)
    return lambda x: _matmul(layer, x.reshape(-1, n_in), arith).reshape(out_shape)


@register(*CONV_DIMS)
def _conv(layer):
    idx, _ = conv_patches(layer)
    arith = layer_arith(layer)
    out_shape = layer_out_shape(layer)

    def trace(x):
        flat = x._vars.ravel()
        ext = np.empty(flat.size + 1, dtype=object)
        ext[:-1] = flat
        ext[-1] = _const(0.0, x)  # zero padding
        cols = _array(ext[np.where(idx < 0, flat.size, idx)], x)  # (pixels, patch)
        return _matmul(layer, cols, arith).reshape(out_shape)

    return trace


@register("Activation")
def _activation(layer):
    (x_t,) = input_types(layer)
    res_t = result_type(layer)
    name = firmware_function(layer)
    if name == "linear":
        return lambda x: convert(x, x_t, res_t)
    if name == "relu":
        return lambda x: cast(x.relu(), x_t.frac, res_t)
    if name in ("relu6", "relu1") and x_t.frac >= 0:
        top = 6.0 if name == "relu6" else 1.0
        return lambda x: cast(np.minimum(x.relu(), top), x_t.frac, res_t)
    raise UnsupportedLayerError(layer, f"activation nnet::{name or '?'} (a lookup table)")


@register("BatchNormalization", "ApplyAlpha")
def _batchnorm(layer):
    (x_t,) = input_types(layer)
    res_t = result_type(layer)
    scale, s_t, bias, b_t = norm_constants(layer)
    s = np.ldexp(scale.astype(np.float64), -s_t.frac)
    b = np.ldexp(bias.astype(np.float64), -b_t.frac)
    frac = max(x_t.frac + s_t.frac, b_t.frac)
    out_shape = layer_out_shape(layer)
    return lambda x: cast(x.ravel() * s + b, frac, res_t).reshape(out_shape)


@register("Reshape")
def _reshape(layer):
    (x_t,) = input_types(layer)
    res_t, out_shape = result_type(layer), layer_out_shape(layer)
    return lambda x: convert(x.reshape(out_shape), x_t, res_t)


@register("Transpose")
def _transpose(layer):
    (x_t,) = input_types(layer)
    perm = [int(p) for p in layer.get_attr("perm")]
    return lambda x: convert(x.transpose(perm), x_t, result_type(layer))


@register("Merge")
def _merge(layer):
    t1, t2 = input_types(layer)
    res_t, out_shape = result_type(layer), layer_out_shape(layer)
    name = firmware_function(layer)
    frac = max(t1.frac, t2.frac)
    ops = {"add": lambda a, b: a + b, "subtract": lambda a, b: a - b}
    if name not in ops:
        raise UnsupportedLayerError(layer, f"merge nnet::{name or '?'}")
    n = int(np.prod(out_shape))

    def trace(a, b):
        a, b = a.ravel(), b.ravel()
        a = a if a.size == n else _array(np.tile(a._vars, n // a.size), a)  # data1[ii % n_elem1]
        b = b if b.size == n else _array(np.tile(b._vars, n // b.size), b)
        return cast(ops[name](a, b), frac, res_t).reshape(out_shape)

    return trace


def _max_pool(layer, ndim: int):
    (x_t,) = input_types(layer)
    res_t, accum_t = result_type(layer), attr_type(layer, "accum_t")
    sizes, pool, stride, pads = pool_geometry(layer, ndim)
    n_chan = int(layer.get_input_variable().shape[-1])
    out_shape = layer_out_shape(layer)
    # window start positions as the firmware loops them; -1 marks padding (the pad pattern)
    starts = [
        np.arange(0, (s + p0 + p1 - k) // st * st + 1, st) for s, k, st, (p0, p1) in zip(sizes, pool, stride, pads)
    ]
    windows = []
    for out_pos in np.ndindex(*[len(s) for s in starts]):
        win = []
        for off in np.ndindex(*pool):
            coord = [starts[d][out_pos[d]] + off[d] - pads[d][0] for d in range(ndim)]
            ok = all(0 <= c < sizes[d] for d, c in enumerate(coord))
            win.append(int(np.ravel_multi_index(coord, sizes)) if ok else -1)
        windows.append(win)
    pad_value = pad_pattern(x_t) * 2.0**-x_t.frac

    def trace(x):
        pix = x._vars.reshape(-1, n_chan)
        out = np.empty((len(windows), n_chan), dtype=object)
        for o, win in enumerate(windows):
            for c in range(n_chan):
                vals = [pix[i, c] if i >= 0 else _const(pad_value, x) for i in win]
                m = vals[0]
                for v in vals[1:]:
                    m = m.max_of(v)
                out[o, c] = m
        y = convert(_array(out, x), x_t, accum_t)
        return convert(y, accum_t, res_t).reshape(out_shape)

    return trace


@register("Pooling1D", "Pooling2D")
def _pooling(layer):
    op = str(layer.get_attr("pool_op"))
    if op != "Max":
        raise UnsupportedLayerError(layer, f"{op} pooling (a division)")
    if layer.model.config.get_config_value("IOType") == "io_stream":
        raise UnsupportedLayerError(layer, "io_stream pooling")
    return _max_pool(layer, 1 if layer.class_name == "Pooling1D" else 2)


@dataclass
class TracedModel:
    """The traced program's ports: flat input and output variables with their firmware types."""

    inputs: FixedVariableArray  # flattened input port (input_t, hls4ml layout)
    outputs: FixedVariableArray  # every output port flattened and concatenated
    input_type: FixedType
    output_types: list[FixedType]  # per output port
    output_sizes: list[int]
    layers: list[str]  # traced layer names (class)


def tracers(hls_model) -> list[tuple[object, Tracer]]:
    """One tracer per layer; refuses the model naming every layer without an exact RTL form."""
    built, refused = [], []
    for layer in hls_model.get_layers():
        try:
            built.append((layer, build_from(_TRACERS, layer, "no exact RTL form", (NotTraceable,))))
        except UnsupportedLayerError as err:
            refused.append(f"{layer.name} ({layer.class_name}{': ' + err.reason if err.reason else ''})")
    if refused:
        raise UnsupportedRTLError(
            f"no exact RTL form for layer(s): {'; '.join(refused)}; supported: {', '.join(supported_classes())}"
        )
    return built


def trace_model(hls_model, hwconf: HWConfig = HWConfig(1, -1, -1)) -> TracedModel:
    """Run every layer's tracer in graph order on symbolic inputs of the Input layer's type."""
    steps = tracers(hls_model)
    if len(hls_model.inputs) != 1:
        raise UnsupportedRTLError(f"fpgadl rtl: {len(hls_model.inputs)} model inputs; only single-input models")
    in_layer = next(layer for layer, _ in steps if layer.class_name == "Input")
    in_t = fixed_type(in_layer, in_layer.get_output_variable().type.precision)
    shape = layer_out_shape(in_layer)
    k, i, f = kif(in_t)
    x = FixedVariableArray.from_kif(np.full(shape, k), np.full(shape, i), np.full(shape, f), hwconf)
    tensors = {in_layer.outputs[0]: x}
    types = {}
    for layer, tracer in steps:
        if layer.class_name == "Input":
            y = tracer(x)
        else:
            try:
                y = tracer(*(tensors[t] for t in data_inputs(layer)))
            except NotTraceable as err:
                raise UnsupportedRTLError(
                    f"no exact RTL form for layer {layer.name} ({layer.class_name}: {err})"
                ) from err
        tensors[layer.outputs[0]] = y
        types[layer.outputs[0]] = result_type(layer)
    outs = [tensors[o] for o in hls_model.outputs]
    flat = np.concatenate([o._vars.ravel() for o in outs])
    return TracedModel(
        inputs=x.ravel(),
        outputs=_array(flat, x),
        input_type=in_t,
        output_types=[types[o] for o in hls_model.outputs],
        output_sizes=[o.size for o in outs],
        layers=[f"{layer.name} ({layer.class_name})" for layer, _ in steps],
    )
