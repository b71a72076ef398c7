"""Input, data-movement, merge and resize kernels.

Data movement (Reshape, Transpose, ZeroPadding, Concatenate, Resize, and io_stream's Clone and
Repack) only copies mantissas, with an ap_fixed assignment where the output type differs from
the input type.  Merges form the exact sum, difference or product and assign it to the result
type, as ``nnet_merge.h`` does.
"""

from __future__ import annotations

import re

import numpy as np

from fpgadl.emulator.fastfixed import cast, convert
from fpgadl.emulator.fixed import FixedType
from fpgadl.emulator.registry import (
    UnsupportedLayerError,
    firmware_function,
    fixed_type,
    input_types,
    register,
    require,
    result_type,
)


def layer_out_shape(layer) -> tuple[int, ...]:
    return tuple(int(d) for d in layer.get_output_variable().shape)


def _same_type_or_cast(x_t: FixedType, res_t: FixedType):
    if x_t == res_t:
        return lambda m: m
    return lambda m: convert(m, x_t, res_t)


@register("Input")
def input_layer(layer):
    # The bridge converts the float input to input_t; the runner does that conversion.
    return lambda m: m


@register("Reshape")
def reshape(layer):
    (x_t,) = input_types(layer)
    res_t = result_type(layer)
    conv = _same_type_or_cast(x_t, res_t)
    shape = layer_out_shape(layer)

    def kernel(m):
        return conv(m.reshape((m.shape[0], *shape)))

    kernel.float_in = x_t == res_t  # a reshape alone keeps float mantissas as they are
    return kernel


@register("Clone")
def clone(layer):
    """clone_stream (io_stream): the same values on every output stream."""
    (x_t,) = input_types(layer)
    outs = [layer.get_output_variable(name) for name in layer.outputs]
    convs = [_same_type_or_cast(x_t, fixed_type(layer, v.type.precision)) for v in outs]
    return lambda m: tuple(conv(m) for conv in convs)


@register("Repack")
def repack(layer):
    """repack_stream (io_stream): regroups stream words, values unchanged."""
    return reshape(layer)


@register("Transpose")
def transpose(layer):
    (x_t,) = input_types(layer)
    conv = _same_type_or_cast(x_t, result_type(layer))
    perm = [int(p) for p in layer.get_attr("perm")]
    return lambda m: conv(np.ascontiguousarray(m.transpose([0, *(p + 1 for p in perm)])))


def _zero_pad(layer, ndim: int):
    (x_t,) = input_types(layer)
    conv = _same_type_or_cast(x_t, result_type(layer))
    if ndim == 1:
        pads = [(layer.get_attr("pad_left"), layer.get_attr("pad_right"))]
    else:
        pads = [
            (layer.get_attr("pad_top"), layer.get_attr("pad_bottom")),
            (layer.get_attr("pad_left"), layer.get_attr("pad_right")),
        ]
    require(layer, layer.get_attr("data_format", "channels_last") == "channels_last", "channels_first")
    return lambda m: conv(np.pad(m, [(0, 0), *pads, (0, 0)]))


@register("ZeroPadding1D")
def zero_padding1d(layer):
    return _zero_pad(layer, 1)


@register("ZeroPadding2D")
def zero_padding2d(layer):
    return _zero_pad(layer, 2)


# ---- merge -------------------------------------------------------------------------------------


@register("Merge")
def merge(layer):
    t1, t2 = input_types(layer)
    res_t = result_type(layer)
    name = firmware_function(layer)
    out_shape = layer_out_shape(layer)
    n_elem = int(np.prod(out_shape))
    f = max(t1.frac, t2.frac)

    def operands(a, b):
        n = a.shape[0]
        a = a.reshape(n, -1)
        b = b.reshape(n, -1)
        # data1[ii % n_elem1], data2[ii % n_elem2]
        a = np.tile(a, (1, n_elem // a.shape[1])) if a.shape[1] != n_elem else a
        b = np.tile(b, (1, n_elem // b.shape[1])) if b.shape[1] != n_elem else b
        return a, b

    def aligned(a, b):
        return a << (f - t1.frac), b << (f - t2.frac)

    if name in ("add", "subtract", "average", "maximum", "minimum"):

        def kernel(a, b):
            n = a.shape[0]
            a, b = operands(a, b)
            a2, b2 = aligned(a, b)
            if name == "add":
                y = cast(a2 + b2, f, res_t)
            elif name == "subtract":
                y = cast(a2 - b2, f, res_t)
            elif name == "average":
                y = cast(a2 + b2, f + 1, res_t)  # (a + b) * ap_ufixed<1,0>(0.5)
            elif name == "maximum":
                y = np.where(a2 > b2, cast(a, t1.frac, res_t), cast(b, t2.frac, res_t))
            else:
                y = np.where(a2 < b2, cast(a, t1.frac, res_t), cast(b, t2.frac, res_t))
            return y.reshape((n, *out_shape))

        return kernel
    if name == "multiply":

        def kernel(a, b):
            n = a.shape[0]
            a, b = operands(a, b)
            return cast(a * b, t1.frac + t2.frac, res_t).reshape((n, *out_shape))

        return kernel
    raise UnsupportedLayerError(layer, f"merge function nnet::{name or '?'}")


@register("Concatenate")
def concatenate(layer):
    """concatenate{1,2,3}d with the extents and axis of the generated config."""
    t1, t2 = input_types(layer)
    res_t = result_type(layer)
    name = firmware_function(layer)
    match = re.fullmatch(r"concatenate([123])d", name)
    require(layer, match is not None, f"concatenation function nnet::{name or '?'}")
    k = int(match.group(1))
    cfg = dict(re.findall(r"static const \w+ (\w+) = (-?\d+);", layer.get_attr("config_cpp") or ""))
    shape1 = tuple(int(cfg.get(f"n_elem1_{i}", -1)) for i in range(k))
    shape2 = tuple(int(cfg.get(f"n_elem2_{i}", -1)) for i in range(k))
    sizes = [int(np.prod(layer.get_input_variable(n).shape)) for n in layer.inputs[:2]]
    # hls4ml 1.3.0 can emit e.g. concatenate3d with zero extents for 1-D tensors: the firmware then
    # never writes its output (undefined values), which no emulator can reproduce.
    require(
        layer,
        [int(np.prod(shape1)), int(np.prod(shape2))] == sizes,
        f"generated extents {shape1} + {shape2} do not cover the inputs ({sizes} elements); csim output is undefined",
    )
    axis = int(cfg.get("axis", -1))
    if axis in (k, -1):
        ax = k - 1
    elif k == 3 and axis in (2, -2):
        ax = 1
    else:
        ax = 0
    out_shape = layer_out_shape(layer)

    def kernel(a, b):
        n = a.shape[0]
        y = np.concatenate(
            [convert(a.reshape(n, *shape1), t1, res_t), convert(b.reshape(n, *shape2), t2, res_t)], axis=ax + 1
        )
        return y.reshape((n, *out_shape))

    return kernel


# ---- normalisation -----------------------------------------------------------------------------


@register("Resize")
def resize(layer):
    """resize_nearest(): source pixel = (dst * ((size << 16) / new_size + 1)) >> 16 per axis."""
    name = firmware_function(layer)
    require(layer, name == "resize_nearest", f"resize function nnet::{name or '?'}")
    (x_t,) = input_types(layer)
    conv = _same_type_or_cast(x_t, result_type(layer))
    height, width = int(layer.get_attr("in_height", 1)), int(layer.get_attr("in_width"))
    new_h, new_w = int(layer.get_attr("out_height", 1)), int(layer.get_attr("out_width"))
    n_chan = int(layer.get_attr("n_chan"))
    y_ratio = ((height << 16) // new_h) + 1
    x_ratio = ((width << 16) // new_w) + 1
    ys = (np.arange(new_h) * y_ratio) >> 16
    xs = (np.arange(new_w) * x_ratio) >> 16
    src = ((ys[:, None] * width + xs[None, :])[:, :, None] * n_chan + np.arange(n_chan)).reshape(-1)
    out_shape = layer_out_shape(layer)
    return lambda m: conv(m.reshape(m.shape[0], -1)[:, src]).reshape((m.shape[0], *out_shape))
