"""The precision audit: no fixed-point type in the firmware may overflow, wrap or drop bits the model keeps.

Runs on the hls4ml model after its optimizer passes (a draft conversion). Interval analysis starts at the
input port's type and goes layer by layer through the *actual* constants: for every tensor the real range
[lo, hi] and the fractional bits an exact value needs. Two kinds of type are checked:

- constants (float biases, ApplyAlpha/BatchNorm scale and bias): hls4ml gives float constants its default
  ap_fixed<16,6>; where float32 holds a value, the audit gives it a type that holds it exactly;
- WRAP types (accumulators and results hls4ml inferred or defaulted, BNN popcount accumulators): a WRAP type
  is never what a quantizer asked for (Quant nodes become AP_SAT/AP_SAT_SYM types, which are left alone
  because saturating there is the model's own arithmetic), so each must hold its tensor's whole range with
  every fractional bit. Too small: widened through the hls4ml config, and the conversion is run again.

A type that would need more than `MAX_WIDTH` bits (hls4ml's inference can reach 70 bits once constants are
exact; non-power-of-two scales) keeps its range and loses the lowest fractional bits instead: that rounding
is reported with the layer (`rounded`), and the probe measures it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MAX_WIDTH = 60  # widest type the audit writes: int64 mantissas (and the fast engine's 62-bit sums) hold it
MAX_CONSTANT_WIDTH = 40  # float32 constants of very different magnitudes beyond this are rounded (reported)
CONSTANT_LAYERS = (
    "Dense",
    "Conv1D",
    "Conv2D",
    "PointwiseConv1D",
    "PointwiseConv2D",
    "DepthwiseConv1D",
    "DepthwiseConv2D",
    "ApplyAlpha",
    "BatchNormalization",
)
# a depthwise conv's weights are (taps, channels): each column is one output channel's, like a Dense's
DENSE_LAYERS = ("Dense", "Conv1D", "Conv2D", "PointwiseConv1D", "PointwiseConv2D", "DepthwiseConv1D", "DepthwiseConv2D")
PASS_THROUGH = ("Reshape", "Transpose", "Flatten", "ZeroPadding1D", "ZeroPadding2D", "Resize", "Repack", "Concatenate")


@dataclass
class Range:
    lo: float
    hi: float
    frac: int  # fractional bits an exact value needs

    def widest(self) -> float:
        return max(abs(self.lo), abs(self.hi))


def exact_frac_bits(values: np.ndarray) -> int:
    """Fractional bits that hold every value exactly (float32 values: at most 24 significant bits)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[v != 0]
    if v.size == 0:
        return 0
    mant, exp = np.frexp(v)  # v = mant * 2**exp, 0.5 <= |mant| < 1
    bits = 0
    for m, e in zip(mant, exp):
        k = 0
        while m != math.floor(m) and k < 1100:
            m *= 2
            k += 1
        bits = max(bits, k - int(e))
    return bits


def integer_bits(bound: float, signed: bool = True) -> int:
    """Integer bits (incl. sign) of an ap_fixed holding every value of magnitude <= bound."""
    if bound <= 0:
        return 1
    return max(1, math.floor(math.log2(bound)) + 1 + int(signed))


def covering(lo: float, hi: float, frac: int, max_width: int = MAX_WIDTH) -> tuple[str, bool]:
    """A signed type holding [lo, hi] with `frac` fractional bits, or with fewer if that exceeds max_width;
    the flag says whether it is exact."""
    integer = integer_bits(max(abs(lo), abs(hi)))
    kept = min(max(frac, -integer + 1), max_width - integer)
    return f"fixed<{integer + kept},{integer}>", kept >= frac


def _fixed(precision):
    from fpgadl.emulator.fixed import FixedType, UnsupportedTypeError

    try:
        return FixedType.from_hls4ml(precision)
    except UnsupportedTypeError:
        return None


def _is_xnor(precision) -> bool:
    from hls4ml.model.types import XnorPrecisionType

    return isinstance(getattr(precision, "precision", precision), XnorPrecisionType)


def _holds(t, r: Range) -> bool:
    lsb = 2.0**-t.frac
    return t.frac >= r.frac and t.min_mantissa * lsb <= r.lo and r.hi <= t.max_mantissa * lsb


def _type_range(precision, fallback: Range) -> Range:
    if _is_xnor(precision):
        return Range(-1.0, 1.0, 0)
    t = _fixed(precision)
    if t is None:
        return fallback
    lsb = 2.0**-t.frac
    return Range(t.min_mantissa * lsb, t.max_mantissa * lsb, t.frac)


def _after_cast(r: Range, precision) -> Range:
    """The tensor once assigned to its type: a saturating type clips, fewer fractional bits round."""
    if _is_xnor(precision):
        return Range(-1.0, 1.0, 0)
    t = _fixed(precision)
    if t is None:
        return r
    tr = _type_range(precision, r)
    return Range(max(r.lo, tr.lo), min(r.hi, tr.hi), min(r.frac, t.frac))


def _weights(layer, key: str) -> np.ndarray | None:
    w = layer.weights.get(key)
    if w is None:  # distributed arithmetic drops the weight variables; fpgadl.hls.project keeps them as da_*
        kept = layer.get_attr(f"da_{key}")
        return None if kept is None else np.asarray(kept, dtype=np.float64)
    return np.asarray(w.data, dtype=np.float64)


def _dense(layer, x: Range) -> tuple[dict[str, Range], Range]:
    """Accumulator and output ranges of a Dense/Conv layer from its input range and actual weights."""
    w = _weights(layer, "weight")
    w = w.reshape(-1, w.shape[-1])
    b = _weights(layer, "bias")
    b = np.zeros(w.shape[1]) if b is None else b.reshape(-1)
    x_xnor = _is_xnor(layer.get_input_variable().type.precision)
    weight_t = layer.types.get("weight_t")  # distributed arithmetic has none: its constants are in the graph
    w_xnor = weight_t is not None and _is_xnor(weight_t.precision)
    n_in = w.shape[0]
    if x_xnor and w_xnor:  # popcount of matches, then 2 * count - n_in (nnet_mult.h `cast`)
        return {"accum": Range(0.0, float(n_in) + float(np.abs(b).max(initial=0)), 0)}, Range(-n_in, n_in, 0)
    if w_xnor:
        w = np.where(w > 0, 1.0, -1.0)
    lo, hi = (-1.0, 1.0) if x_xnor else (x.lo, x.hi)
    top, bottom = np.maximum(w * lo, w * hi), np.minimum(w * lo, w * hi)
    frac = max(x.frac + exact_frac_bits(w), exact_frac_bits(b))
    out = Range(float((bottom.sum(0) + b).min()), float((top.sum(0) + b).max()), frac)
    bound = float((np.maximum(np.abs(w * lo), np.abs(w * hi)).sum(0) + np.abs(b)).max())
    return {"accum": Range(-bound, bound, frac)}, out


def _scale_bias(layer, x: Range) -> tuple[dict[str, Range], Range]:
    s = _weights(layer, "scale").reshape(-1)
    b = _weights(layer, "bias")
    b = np.zeros_like(s) if b is None else b.reshape(-1)
    ends = np.stack([s * x.lo + b, s * x.hi + b])
    return {}, Range(float(ends.min()), float(ends.max()), max(x.frac + exact_frac_bits(s), exact_frac_bits(b)))


def _merge(layer, ins: list[Range]) -> tuple[dict[str, Range], Range]:
    op = str(layer.get_attr("op", "add")).lower()
    a, b = ins[0], ins[-1]
    if op == "add":
        return {}, Range(a.lo + b.lo, a.hi + b.hi, max(a.frac, b.frac))
    if op == "subtract":
        return {}, Range(a.lo - b.hi, a.hi - b.lo, max(a.frac, b.frac))
    if op == "multiply":
        ends = [a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi]
        return {}, Range(min(ends), max(ends), a.frac + b.frac)
    return {}, Range(min(a.lo, b.lo), max(a.hi, b.hi), max(a.frac, b.frac))  # maximum/minimum/average/concat


def _pooling(layer, x: Range) -> tuple[dict[str, Range], Range]:
    if str(layer.get_attr("pool_op", "Max")) == "Max":
        return {}, x
    size = int(np.prod([layer.get_attr(k, 1) for k in ("pool_height", "pool_width")]))
    if layer.class_name.startswith("GlobalPooling"):
        size = int(np.prod(layer.get_input_variable().shape[:-1]))
    extra = int(math.log2(size)) if size & (size - 1) == 0 else 24  # a non-power-of-two mean is not exact
    return {"accum": Range(x.lo * size, x.hi * size, x.frac)}, Range(x.lo, x.hi, x.frac + extra)


def _layer_ranges(layer, ins: list[Range]) -> tuple[dict[str, Range], Range]:
    """(internal type ranges, output range before the cast to result_t) of one layer."""
    cls = layer.class_name
    x = ins[0] if ins else None
    if cls in DENSE_LAYERS:
        return _dense(layer, x)
    if cls in ("ApplyAlpha", "BatchNormalization"):
        return _scale_bias(layer, x)
    if cls == "Merge" or cls == "Concatenate":
        return _merge(layer, ins)
    if cls.startswith("Pooling") or cls.startswith("GlobalPooling"):
        return _pooling(layer, x)
    if cls in PASS_THROUGH:
        return {}, Range(min(r.lo for r in ins), max(r.hi for r in ins), max(r.frac for r in ins))
    act = str(layer.get_attr("activation", "")).lower()
    if cls == "Activation" and act in ("relu", "linear") and x is not None:
        return {}, Range(max(x.lo, 0.0) if act == "relu" else x.lo, max(x.hi, 0.0) if act == "relu" else x.hi, x.frac)
    var = layer.get_output_variable()
    return {}, _type_range(var.type.precision, Range(-np.inf, np.inf, 0))  # tables, thresholds: the type itself


def _constant_edits(layer) -> tuple[dict[str, str], list[dict]]:
    """Float constants the layer's types do not hold exactly -> types that do (where float32 holds them)."""
    edits, rounded = {}, []
    if layer.class_name not in CONSTANT_LAYERS:
        return edits, rounded
    x_t = _fixed(layer.get_input_variable().type.precision)
    x_width = x_t.width if x_t is not None else 1
    for key in ("scale", "bias"):
        data = _weights(layer, key)
        t_name = f"{key}_t"
        if data is None or t_name not in layer.types or _is_xnor(layer.types[t_name].precision):
            continue
        t = _fixed(layer.types[t_name].precision)
        need = Range(float(data.min(initial=0)), float(data.max(initial=0)), exact_frac_bits(data))
        limit = MAX_CONSTANT_WIDTH
        if key == "scale" and layer.class_name in ("ApplyAlpha", "BatchNormalization"):
            # normalize() computes data * scale in full precision: keep the product within 60 bits
            limit = min(limit, MAX_WIDTH - x_width - 2)
        if t is None or not _holds(t, need):
            wanted, exact = covering(need.lo, need.hi, need.frac, limit)
            if t is not None and t.signed and wanted == f"fixed<{t.width},{t.integer}>":
                continue  # already the widest built for it (rounded, reported when it was set)
            edits[key] = wanted
            if not exact:
                rounded.append({"layer": layer.name, "type": t_name, "rounded": edits[key], "frac_bits": need.frac})
    return edits, rounded


def _type_edits(layer, internal: dict[str, Range], out: Range, exact: bool) -> tuple[dict[str, str], list[dict]]:
    """WRAP types too small for their range, or any type too wide to build -> covering types. Not `exact`
    (non-power-of-two scales): only the range is checked, the type's fractional bits are kept."""
    edits, rounded = {}, []
    for key, r in [*internal.items(), ("result", out)]:
        nt = layer.types.get(f"{key}_t")
        if nt is None or _is_xnor(nt.precision) or not np.isfinite(r.lo) or not np.isfinite(r.hi):
            continue
        t = _fixed(nt.precision)
        too_wide = t is not None and t.width > MAX_WIDTH
        if t is not None and not exact:
            r = Range(r.lo, r.hi, min(r.frac, t.frac))
        if t is None or (not too_wide and (t.saturation != "WRAP" or _holds(t, r))):
            continue
        wanted, exact = covering(r.lo, r.hi, r.frac)
        if wanted == f"fixed<{t.width},{t.integer}>" and t.signed:
            continue  # already the widest the audit builds (a rounded one, reported when it was set)
        edits[key] = wanted
        if not exact:
            rounded.append({"layer": layer.name, "type": f"{key}_t", "rounded": edits[key], "frac_bits": r.frac})
    return edits, rounded


def audit_model(hls_model, exact_constants: bool = True) -> tuple[dict[str, dict[str, str]], list[dict]]:
    """One pass over a converted model: {layer: {precision key: new type}} and what had to be rounded.

    `exact_constants`: give float constants exact types (pointless, and wide, when quantizer scales that
    are not powers of two make the model inexact anyway; overflow is checked either way)."""
    ranges: dict[str, Range] = {}
    edits: dict[str, dict[str, str]] = {}
    unfixable: list[dict] = []
    for layer in hls_model.get_layers():
        var = layer.get_output_variable()
        if layer.class_name == "Input":
            ranges[layer.outputs[0]] = _type_range(var.type.precision, Range(-np.inf, np.inf, 0))
            continue
        ins = [ranges[n] for n in layer.inputs if n in ranges]
        internal, out = _layer_ranges(layer, ins) if ins else ({}, _type_range(var.type.precision, Range(0, 0, 0)))
        layer_edits, bad = _constant_edits(layer) if exact_constants else ({}, [])
        type_edits, bad_types = _type_edits(layer, internal, out, exact_constants)
        layer_edits.update(type_edits)
        unfixable += bad + bad_types
        if layer_edits:
            edits[layer.name] = layer_edits
        result = (
            _type_range(var.type.precision, out) if "result" in type_edits else _after_cast(out, var.type.precision)
        )
        for name in layer.outputs:
            ranges[name] = out if "result" in type_edits else result
    return edits, unfixable


MAX_ROUNDS = 4  # each round widens what the previous one showed; hls4ml re-infers the rest


def audit_conversion(draft_fn, config: dict, config_names, exact_constants: bool = True) -> list[dict]:
    """Convert, audit, widen in `config`, convert again, until nothing is too small; returns the findings
    (`widened_to` per layer and type; `rounded` where exact would exceed the widest type built).

    `draft_fn()` runs hls4ml's conversion with the current config (no compile)."""
    findings: list[dict] = []
    for _ in range(MAX_ROUNDS):
        edits, rounded = audit_model(draft_fn(), exact_constants)
        findings += [{"rounded": r} for r in rounded if {"rounded": r} not in findings]
        if not edits:
            break
        for layer, types in edits.items():
            for key in config_names(layer, config):
                prec = config["LayerName"].setdefault(key, {}).setdefault("Precision", {})
                prec.update(types)
            findings += [{"layer": layer, "type": f"{k}_t", "widened_to": v} for k, v in types.items()]
    return findings


FLOAT_OPS = ("Add", "Sub", "Mul", "Div")


def _is_float_constant(mw, tensor: str) -> bool:
    """An initializer that no Quant node produces: a float constant the model computes with as is."""
    return mw.get_initializer(tensor) is not None and mw.find_producer(tensor) is None


def float_constant_nodes(mw) -> tuple[list[str], list[str]]:
    """(float biases added right after a MatMul/Conv, other elementwise ops with float constants).

    A float bias is exact in the firmware (the audit gives it a type that holds it) but torch rounds the
    biased sum to float32 before the next quantizer: rare rows differ ("exact except float32 rounding in
    torch"). Other float ops (TensorNorm's Sub/Div/Mul/Add) are folded by hls4ml into one scale and bias, a
    different float computation: never claimed exact, measured by the probe."""
    biases, others = [], []
    for node in mw.graph.node:
        if node.op_type == "Conv" and len(node.input) > 2 and _is_float_constant(mw, node.input[2]):
            biases.append(node.name or node.op_type)  # a QuantConv's float bias: torch adds it inside the conv
            continue
        if node.op_type not in FLOAT_OPS or not any(_is_float_constant(mw, i) for i in node.input):
            continue
        producer = next((mw.find_producer(i) for i in node.input if mw.find_producer(i) is not None), None)
        is_bias = node.op_type == "Add" and producer is not None and producer.op_type in ("MatMul", "Conv", "Gemm")
        (biases if is_bias else others).append(node.name or node.op_type)
    return biases, others


def apply_static_verdict(meta, mw, warn) -> None:
    """Fold the float-constant findings into the project's static verdict (`exact`, `inexact_layers`)."""
    biases, others = float_constant_nodes(mw)
    if biases and meta.exact:
        warn(
            "note: float (unquantized) biases are held exactly, but torch rounds each biased sum to float32: "
            "exact except float32 rounding in torch; layers: " + ", ".join(biases)
        )
    if others:
        warn("note: float constants outside quantizers are folded and rounded by hls4ml; layers: " + ", ".join(others))
    meta.inexact_layers = list(dict.fromkeys([*meta.inexact_layers, *biases, *others]))
    if meta.exact and biases and not others:
        meta.verdict, meta.verdict_reason = "exact-except-float32", "float32 rounding in torch: " + ", ".join(biases)
    meta.exact = bool(meta.exact and not biases and not others)
    meta.static_exact = meta.exact
