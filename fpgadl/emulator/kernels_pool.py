"""Pooling kernels: nnet_pooling.h (io_parallel) and nnet_pooling_stream.h (io_stream).

io_parallel max pooling pads with the pattern that has only the top bit set (the most negative
value of a signed type, a large positive one of an unsigned type, as the firmware does); average
pooling accumulates in ``accum_t`` step by step and divides by the element count, truncating
toward zero.  The streaming kernels first assign every window value to ``accum_t`` and sum in a
balanced tree, so they get their own path.
"""

from __future__ import annotations

import numpy as np

from fpgadl.emulator.fastfixed import cast, convert, is_identity
from fpgadl.emulator.fixed import FixedType
from fpgadl.emulator.kernels_misc import layer_out_shape
from fpgadl.emulator.registry import (
    attr_type,
    input_types,
    is_io_stream,
    register,
    require,
    result_type,
)
from fpgadl.emulator.softmax import tree_sum


def pool_geometry(layer, ndim: int) -> tuple[list[int], list[int], list[int], list[tuple[int, int]]]:
    """Input sizes, pool sizes, strides and (before, after) paddings per spatial axis of a pooling layer."""
    if ndim == 1:
        return (
            [layer.get_attr("n_in")],
            [layer.get_attr("pool_width")],
            [layer.get_attr("stride_width")],
            [(layer.get_attr("pad_left"), layer.get_attr("pad_right"))],
        )
    return (
        [layer.get_attr("in_height"), layer.get_attr("in_width")],
        [layer.get_attr("pool_height"), layer.get_attr("pool_width")],
        [layer.get_attr("stride_height"), layer.get_attr("stride_width")],
        [
            (layer.get_attr("pad_top"), layer.get_attr("pad_bottom")),
            (layer.get_attr("pad_left"), layer.get_attr("pad_right")),
        ],
    )


def pad_pattern(t: FixedType) -> int:
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
    out_shape = layer_out_shape(layer)
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

    sizes, pool, stride, pads = pool_geometry(layer, ndim)
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
    pad_m = pad_pattern(x_t)

    # Non-overlapping windows that tile the input exactly: a reshape gives the same windows.
    tiled = (
        op == "Max"
        and not any(p0 or p1 for p0, p1 in pads)
        and list(pool) == list(stride)
        and all(size % k == 0 for size, k in zip(sizes, pool))
    )

    def kernel(m):
        n = m.shape[0]
        if tiled:
            y = tiled_max(m, pool)
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

    # max over tiled views is exact on float mantissas too, when both assignments keep every value
    kernel.float_in = tiled and is_identity(x_t, accum_t) and is_identity(accum_t, res_t)
    return kernel


def tiled_max(m: np.ndarray, pool) -> np.ndarray:
    """Max over non-overlapping windows that tile m (n, *spatial, channels) exactly, a new array.

    One spatial axis at a time, the outermost first: the k window positions along an axis are k
    contiguous blocks of everything inside it, so each np.maximum runs over long contiguous rows
    (strided window views give inner loops as short as the channel count)."""
    lead, y = m.shape[0], m
    for d, k in enumerate(pool):
        lead *= m.shape[1 + d] // k
        v = y.reshape(lead, k, -1)
        y = np.maximum(v[:, 0], v[:, 1]) if k > 1 else v[:, 0].copy()
        for j in range(2, k):
            np.maximum(y, v[:, j], out=y)
    return y.reshape(m.shape[0], *(size // k for size, k in zip(m.shape[1:], pool)), m.shape[-1])


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

    in_shape = tuple(int(d) for d in layer.get_input_variable().shape)
    out_shape = layer_out_shape(layer)
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

    sizes, pool, stride, pads = pool_geometry(layer, ndim)
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
            y = tree_sum(views, accum_t)
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
