"""Input, data-movement, pooling, merge and normalisation kernels (io_parallel).

Data movement (Reshape, Transpose, ZeroPadding, Concatenate) only copies mantissas, with an
ap_fixed assignment where the output type differs from the input type.  Pooling follows
``nnet_pooling.h`` of the Vitis templates: max pooling pads with the pattern that has only the
top bit set (the most negative value of a signed type, a large positive one of an unsigned
type, as the firmware does), average pooling accumulates in ``accum_t`` step by step and divides
by the element count truncating toward zero.
"""

from __future__ import annotations

import re

import numpy as np

from fpgadl.emulator.fastfixed import cast, convert, from_float
from fpgadl.emulator.fixed import FixedType
from fpgadl.emulator.registry import (
    UnsupportedLayerError,
    attr_type,
    fixed_type,
    input_types,
    is_io_stream,
    register,
    require,
    result_type,
    weight_mantissas,
)


def _out_shape(layer) -> tuple[int, ...]:
    return tuple(int(d) for d in layer.get_output_variable().shape)


def _same_type_or_cast(x_t: FixedType, res_t: FixedType):
    if x_t == res_t:
        return lambda m: m
    return lambda m: convert(m, x_t, res_t)


def _function_name(layer) -> str:
    call = layer.get_attr("function_cpp") or ""
    match = re.match(r"\s*nnet::(\w+)<", call)
    return match.group(1) if match else ""


@register("Input")
def input_layer(layer):
    # The bridge converts the float input to input_t; the runner does that conversion.
    return lambda m: m


@register("Reshape")
def reshape(layer):
    (x_t,) = input_types(layer)
    conv = _same_type_or_cast(x_t, result_type(layer))
    shape = _out_shape(layer)
    return lambda m: conv(m.reshape((m.shape[0], *shape)))


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


# ---- pooling -----------------------------------------------------------------------------------


def _pad_pattern(t: FixedType) -> int:
    """pad_val<T, Max>(): T x = 0; x[x.width - 1] = 1."""
    return -(1 << (t.width - 1)) if t.signed else 1 << (t.width - 1)


def _avg(layer, windows: np.ndarray, counts: np.ndarray, x_t: FixedType, accum_t: FixedType) -> np.ndarray:
    """avg(): accum_t y = 0; y += x[i] (each step assigned to accum_t); y /= length."""
    y = np.zeros(windows.shape[:-1], dtype=np.int64)
    fa = accum_t.frac
    for i in range(windows.shape[-1]):
        # y + x[i] is exact at max(frac) bits, then assigned to accum_t
        f = max(fa, x_t.frac)
        s = (y << (f - fa)) + (windows[..., i] << (f - x_t.frac))
        y = cast(s, f, accum_t)
    q = np.sign(y) * (np.abs(y) // counts)  # ap_fixed / unsigned: quotient truncated toward zero
    return cast(q, fa, accum_t)


def _pool_builder(layer, ndim: int, global_pool: bool):
    (x_t,) = input_types(layer)
    res_t = result_type(layer)
    accum_t = attr_type(layer, "accum_t")
    op = str(layer.get_attr("pool_op"))
    require(layer, op in ("Max", "Average"), f"pool_op {op}")
    require(layer, layer.get_attr("data_format", "channels_last") == "channels_last", "channels_first")
    if is_io_stream(layer):
        return _stream_pool_builder(layer, ndim, global_pool, x_t, res_t, accum_t, op)
    in_shape = tuple(int(d) for d in layer.get_input_variable().shape)
    out_shape = _out_shape(layer)
    if global_pool:
        # the firmware indexes data[pixel * n_filt + filt] from the config, whatever the variable shape
        n_filt, n_pix = _global_geometry(layer, ndim)

        def kernel(m):
            n = m.shape[0]
            w = m.reshape(n, n_pix, n_filt).transpose(0, 2, 1)  # (n, chan, pixels)
            if op == "Max":
                y = convert(w.max(axis=-1), x_t, accum_t)
            else:
                y = _avg(layer, w, np.int64(n_pix), x_t, accum_t)
            return convert(y, accum_t, res_t).reshape((n, *out_shape))

        return kernel

    if ndim == 1:
        sizes = [layer.get_attr("n_in")]
        pool = [layer.get_attr("pool_width")]
        stride = [layer.get_attr("stride_width")]
        pads = [(layer.get_attr("pad_left"), layer.get_attr("pad_right"))]
    else:
        sizes = [layer.get_attr("in_height"), layer.get_attr("in_width")]
        pool = [layer.get_attr("pool_height"), layer.get_attr("pool_width")]
        stride = [layer.get_attr("stride_height"), layer.get_attr("stride_width")]
        pads = [
            (layer.get_attr("pad_top"), layer.get_attr("pad_bottom")),
            (layer.get_attr("pad_left"), layer.get_attr("pad_right")),
        ]
    count_pad = bool(layer.get_attr("count_pad", False))
    # Window start positions as the firmware loops them (restricted_padded_* bounds).
    positions = []
    for size, k, s, (p0, p1) in zip(sizes, pool, stride, pads):
        full = size + p0 + p1
        restricted = (full - k) // s * s + 1
        positions.append(np.arange(0, restricted, s))
    n_chan = in_shape[-1]
    # index grids: for each output pixel and window element, the input pixel (or -1 for padding)
    grids = np.meshgrid(*[np.arange(len(p)) for p in positions], indexing="ij")
    win = np.meshgrid(*[np.arange(k) for k in pool], indexing="ij")
    flat_idx = np.zeros((grids[0].size, win[0].size), dtype=np.int64)
    valid = np.ones_like(flat_idx, dtype=bool)
    mult = 1
    for d in reversed(range(ndim)):
        coord = positions[d][grids[d].ravel()][:, None] + win[d].ravel()[None, :] - pads[d][0]
        valid &= (coord >= 0) & (coord < sizes[d])
        flat_idx += np.clip(coord, 0, sizes[d] - 1) * mult
        mult *= sizes[d]
    counts = np.full(flat_idx.shape[0], flat_idx.shape[1]) if count_pad else valid.sum(axis=1)
    pad_any = not valid.all()
    pad_m = _pad_pattern(x_t)

    # Non-overlapping windows that tile the input exactly: a reshape gives the same windows.
    tiled = (
        op == "Max"
        and not any(p0 or p1 for p0, p1 in pads)
        and list(pool) == list(stride)
        and all(size % k == 0 for size, k in zip(sizes, pool))
    )
    offsets = [tuple(o) for o in np.ndindex(*pool)]

    def kernel(m):
        n = m.shape[0]
        if tiled:
            views = [m[(slice(None), *(slice(o, None, k) for o, k in zip(off, pool)))] for off in offsets]
            y = views[0].copy()
            for v in views[1:]:
                np.maximum(y, v, out=y)
            return convert(convert(y, x_t, accum_t), accum_t, res_t).reshape((n, *out_shape))
        pix = m.reshape(n, -1, n_chan)
        w = pix[:, flat_idx, :]  # (n, out_pix, window, chan)
        if op == "Max":
            if pad_any:
                w = np.where(valid[None, :, :, None], w, pad_m if op == "Max" else 0)
            y = convert(w.max(axis=2), x_t, accum_t)  # max() returns data_T assigned to accum_t
        else:
            if pad_any:
                w = np.where(valid[None, :, :, None], w, 0)
            y = _avg(layer, w.transpose(0, 1, 3, 2), counts[None, :, None], x_t, accum_t)
        return convert(y, accum_t, res_t).reshape((n, *out_shape))

    return kernel


def _global_geometry(layer, ndim: int) -> tuple[int, int]:
    """(n_filt, pixels) of a global pooling layer's config."""
    n_filt = int(layer.get_attr("n_filt"))
    if ndim == 1:
        return n_filt, int(layer.get_attr("n_in"))
    return n_filt, int(layer.get_attr("in_height")) * int(layer.get_attr("in_width"))


def _stream_pool_builder(layer, ndim, global_pool, x_t, res_t, accum_t, op):
    """nnet_pooling_stream.h: window values are assigned to accum_t first; averages add them in
    a balanced tree (each sum assigned to accum_t) and divide by the window size; global pooling
    folds the pixels in stream order into an accum_t accumulator."""
    from fpgadl.emulator.softmax import _tree_sum

    in_shape = tuple(int(d) for d in layer.get_input_variable().shape)
    out_shape = _out_shape(layer)
    n_chan = in_shape[-1]
    if global_pool:
        pack = layer.get_input_variable().type
        n_chan, n_pix = _global_geometry(layer, ndim)
        require(layer, getattr(pack, "n_elem", n_chan) == n_chan, "stream words holding several pixels")
        require(layer, accum_t.saturation_bits == 0, "accum_t with saturation bits")

        def global_kernel(m):
            n = m.shape[0]
            pix = convert(m.reshape(n, n_pix, n_chan), x_t, accum_t)
            if op == "Max":
                init = accum_t.min_mantissa  # hls::numeric_limits<accum_t>::min()
                y = np.maximum(pix.max(axis=1), init)
            else:
                y = np.zeros((n, n_chan), dtype=np.int64)
                for i in range(n_pix):  # data_window = data_window + pixel, in accum_t
                    y = cast(y + pix[:, i, :], accum_t.frac, accum_t)
                y = np.sign(y) * (np.abs(y) // n_pix)  # accum_t / (H * W), truncated toward zero
            return convert(y, accum_t, res_t).reshape((n, *out_shape))

        return global_kernel

    if ndim == 1:
        sizes, pool, stride = [layer.get_attr("n_in")], [layer.get_attr("pool_width")], [layer.get_attr("stride_width")]
        pads = [(layer.get_attr("pad_left"), layer.get_attr("pad_right"))]
    else:
        sizes = [layer.get_attr("in_height"), layer.get_attr("in_width")]
        pool = [layer.get_attr("pool_height"), layer.get_attr("pool_width")]
        stride = [layer.get_attr("stride_height"), layer.get_attr("stride_width")]
        pads = [
            (layer.get_attr("pad_top"), layer.get_attr("pad_bottom")),
            (layer.get_attr("pad_left"), layer.get_attr("pad_right")),
        ]
    require(layer, not any(p0 or p1 for p0, p1 in pads), "padding in a streaming pooling layer")
    require(layer, list(pool) == list(stride), "streaming pooling with stride != pool size")
    offsets = [tuple(o) for o in np.ndindex(*pool)]
    limits = [size // k * k for size, k in zip(sizes, pool)]

    def kernel(m):
        n = m.shape[0]
        # window element order kh, kw as in the line buffer; values first assigned to accum_t
        views = [
            convert(m[(slice(None), *(slice(o, lim, k) for o, lim, k in zip(off, limits, pool)))], x_t, accum_t)
            for off in offsets
        ]
        if op == "Max":
            y = views[0].copy()
            for v in views[1:]:
                np.maximum(y, v, out=y)
        else:
            y = _tree_sum(views, accum_t)
            y = np.sign(y) * (np.abs(y) // len(views))  # sum / N, truncated toward zero
        return convert(y, accum_t, res_t).reshape((n, *out_shape))

    return kernel


@register("Pooling1D")
def pooling1d(layer):
    return _pool_builder(layer, 1, False)


@register("Pooling2D")
def pooling2d(layer):
    return _pool_builder(layer, 2, False)


@register("GlobalPooling1D")
def global_pooling1d(layer):
    return _pool_builder(layer, 1, True)


@register("GlobalPooling2D")
def global_pooling2d(layer):
    return _pool_builder(layer, 2, True)


# ---- merge -------------------------------------------------------------------------------------


@register("Merge")
def merge(layer):
    t1, t2 = input_types(layer)
    res_t = result_type(layer)
    name = _function_name(layer)
    out_shape = _out_shape(layer)
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
    name = _function_name(layer)
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
    out_shape = _out_shape(layer)

    def kernel(a, b):
        n = a.shape[0]
        y = np.concatenate(
            [convert(a.reshape(n, *shape1), t1, res_t), convert(b.reshape(n, *shape2), t2, res_t)], axis=ax + 1
        )
        return y.reshape((n, *out_shape))

    return kernel


# ---- normalisation -----------------------------------------------------------------------------


@register("BatchNormalization", "ApplyAlpha")
def batch_normalization(layer):
    """normalize(): res = data * scale + bias, in full precision, assigned to res_t."""
    (x_t,) = input_types(layer)
    res_t = result_type(layer)
    scale, s_t = weight_mantissas(layer, "scale")
    bias, b_t = weight_mantissas(layer, "bias")
    n_filt = int(layer.get_attr("n_filt", -1))
    n_in = int(layer.get_attr("n_in"))
    idx = np.arange(n_in) if n_filt == -1 else np.arange(n_in) % n_filt
    scale, bias = scale.reshape(-1)[idx], bias.reshape(-1)[idx]
    fp = x_t.frac + s_t.frac
    f = max(fp, b_t.frac)
    out_shape = _out_shape(layer)

    def kernel(m):
        n = m.shape[0]
        p = m.reshape(n, -1) * scale
        s = (p << (f - fp)) + (bias << (f - b_t.frac))
        return cast(s, f, res_t).reshape((n, *out_shape))

    return kernel


@register("Resize")
def resize(layer):
    """resize_nearest(): source pixel = (dst * ((size << 16) / new_size + 1)) >> 16 per axis."""
    name = _function_name(layer)
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
    out_shape = _out_shape(layer)
    return lambda m: conv(m.reshape(m.shape[0], -1)[:, src]).reshape((m.shape[0], *out_shape))


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
