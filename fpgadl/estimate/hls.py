"""Read an hls4ml ModelGraph (after conversion, before compile) into plain ``LayerSpec``s.

This is the only module of the estimator that touches hls4ml objects; the rules and the fit work on
the specs it returns. A layer class the estimator has no rule for is an error naming the layer.
"""

from __future__ import annotations

import math

import numpy as np

from fpgadl.core.errors import UsageError
from fpgadl.estimate.rules import (
    DA,
    ELEMENTWISE,
    FREE,
    KERNEL,
    MERGE,
    POOL,
    RECURRENT,
    RECURRENT_GATES,
    SCALE,
    SOFTMAX,
    TABLE,
    LayerSpec,
)

_ELEMENTWISE_ACTIVATIONS = {
    "relu",
    "linear",
    "leaky_relu",
    "leakyrelu",
    "relu6",
    "thresholdedrelu",
    "hard_sigmoid",
    "hard_tanh",
    "binary_tanh",
    "ternary_tanh",
    "prelu",
    "quantizedrelu",
}
_FREE_CLASSES = {
    "Input",
    "InputLayer",
    "Reshape",
    "Transpose",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "Cropping1D",
    "Cropping2D",
    "Resize",
    "Flatten",
}


class EstimateError(UsageError, ValueError):
    """A model the estimator cannot describe; the message names the layer."""


def _precision(t):
    return getattr(t, "precision", t)


def _bits(t, default: int = 16) -> tuple[int, bool]:
    p = _precision(t)
    width = getattr(p, "width", None)
    return (int(width) if width else default), bool(getattr(p, "signed", True))


def _exact_codes(layer, data: np.ndarray) -> np.ndarray:
    """Values as integers times the coarsest power of two that holds them all exactly."""
    for frac in range(54):
        m = np.ldexp(data, frac)
        if np.all(m == np.round(m)):
            return m.astype(np.int64)
    raise EstimateError(f"layer '{layer.name}' ({layer.class_name}): weights are not fixed-point numbers")


def _weight_codes(layer, key: str = "weight") -> np.ndarray | None:
    """Weights as the integers the firmware stores (value * 2^fractional bits), if fixed point."""
    w = layer.weights.get(key) if hasattr(layer, "weights") else None
    if w is None:  # distributed arithmetic drops the weight variables; fpgadl.hls.project keeps them as da_*
        kept = layer.get_attr(f"da_{key}") if hasattr(layer, "get_attr") else None
        return None if kept is None else _exact_codes(layer, np.asarray(kept, dtype=np.float64))
    p = _precision(w.type)
    if not hasattr(p, "integer") or not hasattr(p, "width"):
        return None
    frac = int(p.width) - int(p.integer)
    return np.rint(np.asarray(w.data, dtype=np.float64) * 2.0**frac).astype(np.int64)


def _kind(layer) -> str:
    cn = layer.class_name
    if "SeparableConv" in cn:
        raise EstimateError(f"layer '{layer.name}' ({cn}): separable convolutions have no estimator rule yet")
    if cn in RECURRENT_GATES:
        return RECURRENT
    if "Dense" in cn or "Conv1D" in cn or "Conv2D" in cn:
        return KERNEL
    if cn == "Softmax" or (cn == "Activation" and str(layer.get_attr("activation", "")).lower() == "softmax"):
        return SOFTMAX
    if cn in ("Activation", "ParametrizedActivation", "HardActivation", "PReLU", "TernaryTanh", "BinaryTanh"):
        act = str(layer.get_attr("activation", "linear")).lower()
        return ELEMENTWISE if act in _ELEMENTWISE_ACTIVATIONS or cn == "HardActivation" else TABLE
    if cn in ("UnaryLUT",):
        return TABLE
    if cn in ("BatchNormalization", "ApplyAlpha"):
        return SCALE
    if "Pooling" in cn:
        return POOL
    if cn in ("Merge", "Concatenate", "Dot", "BiasAdd"):
        return MERGE
    if cn in _FREE_CLASSES:
        return FREE
    raise EstimateError(
        f"layer '{layer.name}' has class {cn}, which the estimator has no rule for "
        "(supported: Dense, Conv1D/2D, activations, Softmax, BatchNormalization, pooling, Merge, reshapes)"
    )


def layer_spec(layer, io_type: str) -> LayerSpec:
    kind = _kind(layer)
    out_var = layer.get_output_variable()
    out_shape = [int(s) for s in out_var.shape]
    out_bits, _ = _bits(out_var.type)
    in_var = layer.get_input_variable() if layer.inputs else None  # Input layers have none
    if in_var is not None:
        in_bits, in_signed = _bits(in_var.type)
        in_shape = [int(s) for s in in_var.shape]
    else:
        in_bits, in_signed, in_shape = out_bits, True, out_shape
    strategy = str(layer.get_attr("strategy", "latency")).lower()
    strategy = {"resource": "resource", "resource_unrolled": "resource", "distributed_arithmetic": DA}.get(
        strategy, "latency"
    )
    common = {
        "name": layer.name,
        "kind": kind,
        "class_name": layer.class_name,
        "in_bits": in_bits,
        "in_signed": in_signed,
        "out_bits": out_bits,
        "reuse_factor": int(layer.get_attr("reuse_factor", 1) or 1),
        "strategy": strategy,
        "io_type": io_type,
    }
    stream_image = io_type == "io_stream" and len(out_shape) > 1
    if kind == RECURRENT:
        return _recurrent_spec(layer, common, in_shape)
    if kind == KERNEL:
        cn = layer.class_name
        w_bits, w_signed = _bits(layer.get_attr("weight_t"), 16)
        acc_bits, _ = _bits(layer.get_attr("accum_t"), 32)
        if "Dense" in cn:
            n_in, n_out, positions, rows, row_w, chans = (
                layer.get_attr("n_in"),
                layer.get_attr("n_out"),
                1,
                1,
                0,
                0,
            )
            if len(out_shape) > 1:  # Dense applied over leading axes
                positions = math.prod(out_shape[:-1])
        else:
            chans = layer.get_attr("n_chan")
            fw = layer.get_attr("filt_width")
            fh = layer.get_attr("filt_height", 1) if "2D" in cn else 1
            if "Depthwise" in cn:
                n_in, n_out = fh * fw, chans
            else:
                n_in, n_out = chans * fh * fw, layer.get_attr("n_filt")
            positions = math.prod(out_shape[:-1])
            rows, row_w = fh, layer.get_attr("in_width")
        return LayerSpec(
            **common,
            n_in=int(n_in),
            n_out=int(n_out),
            n_positions=int(positions),
            parallel_positions=int(layer.get_attr("parallelization_factor", 1) or 1),
            weight_bits=w_bits,
            weight_signed=w_signed,
            accum_bits=acc_bits,
            weights=_weight_codes(layer),
            kernel_rows=int(rows),
            in_row_width=int(row_w or 0),
            in_channels=int(chans or 0),
            out_channels=out_shape[-1],
        )
    positions = math.prod(out_shape[:-1]) if stream_image else 1
    n_elems = out_shape[-1] if stream_image else math.prod(out_shape)
    extra: dict = {}
    if kind in (TABLE, SOFTMAX):
        t_bits, _ = _bits(layer.get_attr("table_t") or layer.get_attr("exp_table_t"), 18)
        extra = {"table_size": int(layer.get_attr("table_size", 1024) or 1024), "table_bits": t_bits}
    elif kind == SCALE:
        extra = {"weight_bits": _bits(layer.get_attr("scale_t"), 16)[0]}
    elif kind == POOL:
        in_elems = in_shape[-1] if stream_image else math.prod(in_shape)
        window = max(1, (layer.get_attr("pool_height", 1) or 1) * (layer.get_attr("pool_width", 1) or 1))
        if "Global" in layer.class_name:
            window = max(1, math.prod(in_shape[:-1]))
        return LayerSpec(
            **common,
            n_in=int(n_elems * window if not stream_image else in_elems * window),
            n_out=int(n_elems),
            n_positions=int(positions),
            out_channels=out_shape[-1],
        )
    return LayerSpec(
        **common,
        n_in=int(n_elems),
        n_out=int(n_elems),
        n_positions=int(positions),
        out_channels=out_shape[-1],
        **extra,
    )


def _recurrent_spec(layer, common: dict, in_shape: list[int]) -> LayerSpec:
    """LSTM/GRU/SimpleRNN: n_positions counts the timesteps (the layer's own n_timesteps/n_in, not the input
    variable's shape, whose axis order depends on the front end)."""
    t_bits, _ = _bits(layer.get_attr("table_t"), 18)
    w_bits, w_signed = _bits(layer.get_attr("weight_t"), 16)
    return LayerSpec(
        **common,
        n_in=int(layer.get_attr("n_in", in_shape[-1])),
        n_out=int(layer.get_attr("n_out")),
        n_positions=int(layer.get_attr("n_timesteps", 1) or 1),
        weight_bits=w_bits,
        weight_signed=w_signed,
        accum_bits=_bits(layer.get_attr("accum_t"), 32)[0],
        weights=_weight_codes(layer),
        recurrent_weights=_weight_codes(layer, "recurrent_weight"),
        table_size=int(layer.get_attr("table_size", 1024) or 1024),
        table_bits=t_bits,
    )


def specs_from_hls_model(hls_model) -> list[LayerSpec]:
    """One ``LayerSpec`` per layer of a converted hls4ml ModelGraph, in graph order."""
    io_type = hls_model.config.get_config_value("IOType") or "io_parallel"
    return [layer_spec(layer, io_type) for layer in hls_model.get_layers()]
