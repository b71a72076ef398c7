"""QONNX -> hls4ml: validate and clean a QONNX file, decide the FPGA input type, write the vendor project.

The float/fixed boundary belongs to the tool: the FPGA's input port carries the type of the model's input
quantizer, with the quantizer's own rounding (QONNX `ROUND` = half to even = AP_RND_CONV) and clamping
(AP_SAT, or AP_SAT_SYM with narrow range). hls4ml's default input type (ap_fixed<16,6>, truncating and
wrapping) would round off-grid inputs twice and wrap out-of-range ones.

The project directory's own format (fpgadl.json, rebuilding the model from it) is `fpgadl.hls.project`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx

from fpgadl.core.artifacts import atomic_dir, write_json
from fpgadl.core.errors import UsageError
from fpgadl.core.options import HlsOptions
from fpgadl.hls.audit import apply_static_verdict, audit_conversion
from fpgadl.hls.folded import inexact_folds
from fpgadl.hls.hostops import POST_METADATA_KEY, describe, host_ops_of
from fpgadl.hls.preflight import preflight
from fpgadl.hls.project import (
    CLEAN_MODEL,
    META_FILE,
    ProjectMeta,
    fix_project_paths,
    hls_model_from,
    quiet,
    rebatch_reshapes,
)
from fpgadl.hls.rewrites import CHANNEL_SCALES_KEY, node_attributes
from fpgadl.hls.thresholds import exact_batchnorms, float32_batchnorms

SKIPPED_OPS = ("Dropout", "Identity")
# Activations the firmware computes from lookup tables: never equal to torch's exact functions.
LUT_OPS = ("Sigmoid", "Tanh", "Softmax", "LogSoftmax", "Exp", "Softplus", "Softsign", "Elu", "Selu")
# Float scale-and-shift ops with no quantizer of their own: their constants are rounded to ap_fixed.
FLOAT_AFFINE_OPS = ("BatchNormalization",)


@dataclass
class QuantInfo:
    """One QONNX Quant node as the converter sees it."""

    node: str
    consumers: list[str]
    bit_width: float
    signed: bool
    narrow: bool
    rounding_mode: str
    power_of_two: bool
    scale_exponents: list[int] | None  # log2 of the scale where it is a power of two


def load_onnx(path: Path) -> onnx.ModelProto:
    """Read an ONNX file (with its external data, if any) or fail with a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf's DecodeError and friends
        raise UsageError(f"{path}: not an ONNX model ({type(e).__name__})") from e
    if not model.graph.node:
        raise UsageError(f"{path}: not an ONNX model (no graph nodes)")
    try:
        onnx.external_data_helper.load_external_data_for_model(model, str(path.parent))
    except Exception as e:  # onnx raises ValidationError, OSError, ... for a missing file
        raise UsageError(
            f"{path}: its external weights file is missing or unreadable "
            f"({str(e).splitlines()[0] if str(e) else type(e).__name__})"
        ) from e
    return model


def clean(model: onnx.ModelProto, source: str):
    """qonnx clean-up, channels-last conversion and Gemm->MatMul, as hls4ml's QONNX front end expects."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.transformation.gemm_to_matmul import GemmToMatMul
    from qonnx.util.cleanup import cleanup_model

    from fpgadl.hls.hostops import FoldConstantPowLikeTorch, SplitHostOps, SplitHostPostOps
    from fpgadl.hls.rewrites import (
        AvgPoolAsDepthwiseConv,
        FactorChannelScales,
        GemmZeroBias,
        MaxPool1dAs2d,
        ReduceMeanAsGlobalAveragePool,
        RemoveInverseTransposes,
        ResizeToChannelsLast,
        SinkTransposes,
    )
    from fpgadl.hls.thresholds import ExactBatchNormThresholds, TorchBatchNormConstants

    model = _strip_initializer_inputs(model)
    ports = [i for i in model.graph.input]
    if len(ports) != 1:
        raise UsageError(f"{source}: expected exactly one input, found {len(ports)} ({[i.name for i in ports]})")
    _set_batch_one(model, ports[0])
    try:
        with quiet():
            mw = ModelWrapper(model).transform(FoldConstantPowLikeTorch())
            mw = cleanup_model(mw)
            mw = mw.transform(SplitHostOps())  # before channels-last: the ops keep the ONNX layout
            mw = mw.transform(SplitHostPostOps())
            mw = mw.transform(ReduceMeanAsGlobalAveragePool()).transform(AvgPoolAsDepthwiseConv())
            mw = mw.transform(ExactBatchNormThresholds())
            mw = mw.transform(TorchBatchNormConstants())
            mw = mw.transform(ConvertToChannelsLastAndClean(make_input_channels_last=True))
            mw = mw.transform(ResizeToChannelsLast())
            mw = mw.transform(SinkTransposes())
            mw = mw.transform(RemoveInverseTransposes())
            mw = mw.transform(MaxPool1dAs2d())
            mw = mw.transform(GemmZeroBias())
            mw = mw.transform(GemmToMatMul())
            mw = cleanup_model(mw)
            # after the clean-up has folded the Gemm's weight Transpose into the initializer
            nodes = len(mw.graph.node)
            mw = mw.transform(FactorChannelScales())
            if len(mw.graph.node) != nodes:
                mw = cleanup_model(mw)  # hls4ml needs readable tensor names (not qonnx's random ones)
    except Exception as e:
        raise UsageError(f"{source}: qonnx clean-up failed ({type(e).__name__}: {e})") from e
    return mw


def check_supported(mw, original: onnx.ModelProto, source: str) -> None:
    """Every op left after clean-up must be one hls4ml takes; name the node as the user's file names it."""
    from hls4ml.converters.onnx_to_hls import get_supported_onnx_layers

    supported = set(get_supported_onnx_layers()) | set(SKIPPED_OPS)
    for node in mw.graph.node:
        if node.op_type not in supported:
            # qonnx's clean-up renames nodes; the user knows the name in their own file.
            name = next((n.name for n in original.graph.node if n.op_type == node.op_type and n.name), node.name)
            raise UsageError(
                f"{source}: node '{name}' has op {node.op_type}, which hls4ml's ONNX front end cannot take "
                f"(supported: {', '.join(sorted(supported))})"
            )


def quant_nodes(mw) -> list[QuantInfo]:
    out = []
    for node in mw.graph.node:
        if node.op_type != "Quant":
            continue
        attrs = node_attributes(node)
        scale = mw.get_initializer(node.input[1])
        bits = mw.get_initializer(node.input[3])
        exps = None
        pot = False
        if scale is not None:
            lg = np.log2(np.asarray(scale, dtype=np.float64))
            pot = bool(np.all(np.isfinite(lg)) and np.all(lg == np.round(lg)))
            exps = [int(v) for v in np.round(lg).ravel()] if pot else None
        zero = mw.get_initializer(node.input[2])
        if zero is not None and np.any(np.asarray(zero) != 0):
            pot = False
        rounding = attrs.get("rounding_mode", "ROUND")
        rounding = rounding.decode() if isinstance(rounding, bytes) else rounding
        consumers = [c.name or c.op_type for c in mw.find_consumers(node.output[0]) or []]
        out.append(
            QuantInfo(
                node=node.name,
                consumers=consumers,
                bit_width=float(np.asarray(bits).ravel()[0]) if bits is not None else float("nan"),
                signed=bool(attrs.get("signed", 1)),
                narrow=bool(attrs.get("narrow", 0)),
                rounding_mode=rounding,
                power_of_two=pot,
                scale_exponents=exps,
            )
        )
    return out


# Fractional bits the input port keeps below a non-power-of-two input scale: the port cannot round like
# the quantizer, so it carries the float finely enough that the quantizer's own rounding decides.
EXTRA_INPUT_FRAC_BITS = 8


# A BipolarQuant keeps only the sign (x >= 0 -> +1): truncation never changes a sign, saturation never wraps.
BIPOLAR_INPUT_PORT = "fixed<16,6,TRN,SAT>"


# Ops an input quantizer commutes with, so the port may quantize before them: layout ops only move values;
# Relu(Q(x)) == Q(Relu(x)) for a monotone quantizer with Q(0) == 0 (zero point 0: checked by the port's type).
PORT_COMMUTING_OPS = ("Transpose", "Reshape", "Flatten", "Relu")


def port_tensors(mw) -> list[str]:
    """The graph input and the outputs of the port-commuting ops it alone feeds (bnn_pynq's and FINN's
    models flatten before the input quantizer, FINN's QuantReLU exports a Relu before it; channels-last
    conversion adds a Transpose); the last one is where the input quantizer sits."""
    tensors = [mw.graph.input[0].name]
    while True:
        consumers = mw.find_consumers(tensors[-1]) or []
        if len(consumers) != 1 or consumers[0].op_type not in PORT_COMMUTING_OPS:
            return tensors
        tensors.append(consumers[0].output[0])


def input_port_type(mw, quants: list[QuantInfo]) -> tuple[str | None, bool]:
    """The ap type of the FPGA's input port, and whether it reproduces the input quantizer exactly.

    With a power-of-two scale the port is the quantizer itself (same width, rounding and clamping). With
    another scale no ap type equals it; the port then covers the quantizer's range with extra fractional
    bits and saturates, so out-of-range inputs clamp instead of wrapping."""
    inp = port_tensors(mw)[-1]  # where the input quantizer sits
    if any(n.op_type == "BipolarQuant" for n in mw.find_consumers(inp) or []):
        return BIPOLAR_INPUT_PORT, True
    first = [n for n in mw.find_consumers(inp) or [] if n.op_type == "Quant"]
    if not first:
        return None, False
    info = next(q for q in quants if q.node == first[0].name)
    rounding = {"ROUND": "RND_CONV", "FLOOR": "TRN"}.get(info.rounding_mode)
    bits = math.ceil(info.bit_width)
    kind = "fixed" if info.signed else "ufixed"
    if info.power_of_two and len(set(info.scale_exponents)) == 1 and rounding:
        saturation = "SAT_SYM" if info.narrow and info.signed else "SAT"
        return f"{kind}<{bits},{bits + info.scale_exponents[0]},{rounding},{saturation}>", True
    scale = mw.get_initializer(first[0].input[1])
    if scale is None:
        return None, False
    log_scale = math.log2(float(np.max(np.abs(scale))))
    integer = bits + math.ceil(log_scale)
    frac = -math.floor(math.log2(float(np.min(np.abs(scale))))) + EXTRA_INPUT_FRAC_BITS
    return f"{kind}<{integer + frac},{integer},RND_CONV,SAT>", False


def widen_port_of_quantizer_only_model(mw, port: str | None) -> str | None:
    """A model that is only its input quantizer: the port gets one more integer bit than the quantizer.

    With the port equal to the quantizer's type hls4ml drops the quantizer's (then identity) layer and
    `myproject(...)` gets its input twice as parameters (it does not compile). One more integer bit and
    the same LSB, rounding and saturation: the port rounds exactly as the quantizer does, and the kept
    quantizer layer only clamps the range, so the model computes its quantizer with no double rounding."""
    nodes = [n for n in mw.graph.node if n.op_type not in ("Constant", "Identity")]
    if port is None or len(nodes) != 1 or nodes[0].op_type != "Quant":
        return port
    if nodes[0].input[0] != mw.graph.input[0].name or nodes[0].output[0] != mw.graph.output[0].name:
        return port
    kind, params = port.split("<", 1)
    width, integer, *modes = params.rstrip(">").split(",")
    return f"{kind}<{','.join([str(int(width) + 1), str(int(integer) + 1), *modes])}>"


def _input_layer_name(onnx_input: str) -> str:
    from hls4ml.converters.onnx_to_hls import replace_char_inconsitency, sanitize_layer_name

    layer = {"name": replace_char_inconsitency(onnx_input), "class_name": "InputLayer"}
    sanitize_layer_name(layer)
    return layer["name"]


def _dims(value_info) -> list[int]:
    return [d.dim_value for d in value_info.type.tensor_type.shape.dim][1:]


def _channels_last(n: int) -> list[int]:
    """Axes taking a batch (N, C, *spatial) to (N, *spatial, C)."""
    return [0, *range(2, n + 1), 1]


def _layouts(original: onnx.ModelProto, mw) -> dict:
    """Shapes of the ports in the ONNX layout and in the firmware's, and the transposes between them."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes

    with quiet():
        orig = ModelWrapper(original).transform(InferShapes())
    in_onnx, out_onnx = _dims(orig.graph.input[0]), _dims(orig.graph.output[0])
    in_hls, out_hls = _dims(mw.graph.input[0]), _dims(mw.graph.output[0])
    in_t = _channels_last(len(in_onnx)) if in_hls != in_onnx else None
    out_t = None
    if out_hls != out_onnx:
        fwd = _channels_last(len(out_onnx))
        out_t = [int(i) for i in np.argsort(fwd)]
    return {
        "input_shape_onnx": in_onnx,
        "input_transpose": in_t,
        "output_shape_onnx": out_onnx,
        "output_shape_hls": out_hls,
        "output_transpose": out_t,
    }


def build_hls_config(mw, opts: HlsOptions, input_layer: str, input_type: str | None) -> dict:
    import hls4ml

    with quiet():
        config = hls4ml.utils.config.config_from_onnx_model(
            mw,
            granularity="name",
            backend=opts.backend,
            default_precision="fixed<16,6>",
            default_reuse_factor=opts.reuse_factor,
        )
    config["Model"]["Strategy"] = opts.strategy.capitalize()
    if input_type is not None:
        config["LayerName"].setdefault(input_layer, {}).setdefault("Precision", {})["result"] = input_type
    for name, override in opts.layer_overrides.items():
        for key in config_names(name, config):
            config["LayerName"].setdefault(key, {}).update(override)
    return config


# Significant bits kept for the float scales and biases of hls4ml's ApplyAlpha layers (non-power-of-two
# quantizers) and BatchNormalization layers: hls4ml's default ap_fixed<16,6> rounds a scale like 6e-5 to
# zero (measured: a non-power-of-two MLP's max error 0.41 -> 0.003; a ResNet block's BN 0.036 -> ~0.01).
ALPHA_SIGNIFICANT_BITS = 18


def _covering_type(values: np.ndarray) -> str:
    """A signed ap_fixed type holding every value with ALPHA_SIGNIFICANT_BITS significant bits."""
    v = np.abs(np.asarray(values, dtype=np.float64).ravel())
    nz = v[v > 0]
    if nz.size == 0:
        return "fixed<2,1>"
    integer = max(1, math.floor(math.log2(nz.max())) + 2)
    frac = max(0, ALPHA_SIGNIFICANT_BITS - 1 - math.floor(math.log2(nz.min())) - 1)
    width = min(integer + frac, 48)
    return f"fixed<{width},{integer},RND_CONV,SAT>"


SCALE_BIAS_LAYERS = ("ApplyAlpha", "BatchNormalization")


def widen_scale_bias_types(hls_model, config: dict) -> bool:
    """Give every float scale-and-shift layer scale and bias types that hold its values; True if changed."""
    changed = False
    for layer in hls_model.get_layers():
        if layer.class_name not in SCALE_BIAS_LAYERS:
            continue
        names = config_names(layer.name, config)
        prec = config["LayerName"].setdefault(names[-1], {}).setdefault("Precision", {})
        for var in ("scale", "bias"):
            if var in layer.weights and var not in prec:
                prec[var] = _covering_type(layer.weights[var].data)
                changed = True
    return changed


def config_names(layer: str, config: dict) -> list[str]:
    """Config keys that set an hls4ml layer's options. Layers hls4ml's passes make from ONNX nodes
    (`Dense_MatMul_0` from `MatMul_0`) copy the node's config over their own, so set both."""
    names = [layer]
    _, _, source = layer.partition("_")
    if source and source in config["LayerName"]:
        names.append(source)
    return names


def convert(onnx_path: Path, hls_dir: Path, opts: HlsOptions, warn=print) -> ProjectMeta:
    """Write the complete hls4ml project for a QONNX file to hls_dir (atomically) and return its metadata."""
    source = str(onnx_path)
    original = load_onnx(onnx_path)
    onnx_input = original.graph.input[0].name if original.graph.input else ""
    folds = inexact_folds(original)  # before the initializer inputs (which carry the metadata) are dropped
    original = _strip_initializer_inputs(original)
    preflight(original, source)
    mw = clean(onnx.ModelProto.FromString(original.SerializeToString()), source)
    check_supported(mw, original, source)
    quants = quant_nodes(mw)
    for q in quants:
        if q.rounding_mode not in ("ROUND", "FLOOR"):
            raise UsageError(
                f"{source}: Quant node '{q.node}' uses rounding_mode {q.rounding_mode}; hls4ml supports ROUND, FLOOR"
            )
    inexact = sorted({c for q in quants if not q.power_of_two for c in (q.consumers or [q.node])})
    inexact += json.loads(mw.get_metadata_prop(CHANNEL_SCALES_KEY) or "[]")  # per-channel scales moved out
    if inexact:
        warn(
            "warning: quantizer scales that are not powers of two cannot be exact in ap_fixed; layers: "
            + ", ".join(inexact)
        )
    lut = [n.name or n.op_type for n in mw.graph.node if n.op_type in LUT_OPS]
    if lut:
        warn("note: lookup-table activations deviate from torch by the table's resolution; layers: " + ", ".join(lut))
    thresholds = exact_batchnorms(mw)
    if thresholds:
        warn(
            "note: BatchNormalization before a 2- or 3-level quantizer becomes exact thresholds (torch's float32 "
            "arithmetic reproduced); layers: " + ", ".join(thresholds)
        )
    float32_bn = float32_batchnorms(mw)
    folded = set(thresholds) | set(float32_bn)
    affine = [n.name or n.op_type for n in mw.graph.node if n.op_type in FLOAT_AFFINE_OPS and n.name not in folded]
    if affine:
        warn(
            "note: float BatchNormalization constants are rounded to ap_fixed (fold BN into the conv for "
            "exactness); layers: " + ", ".join(affine)
        )
    input_type, input_exact = input_port_type(mw, quants)
    input_type = widen_port_of_quantizer_only_model(mw, input_type)
    host_ops = host_ops_of(mw)
    if host_ops:
        warn(f"note: pre-processing before the input quantizer runs on the host in float32: {describe(host_ops)}")
    host_post_ops = host_ops_of(mw, POST_METADATA_KEY)
    if host_post_ops:
        warn(f"note: post-processing after the last layer runs on the host in float32: {describe(host_post_ops)}")
    if folds:
        warn(
            "note: the exporter folded constants torch computes at run time with its own float32 arithmetic; "
            "exact against the file until --sample/--expect (torch's outputs) confirm torch's values: "
            + "; ".join(folds)
        )
    if input_type is None:
        warn("warning: the model has no input quantizer; inputs are cast to hls4ml's default type ap_fixed<16,6>")

    input_layer = _input_layer_name(mw.graph.input[0].name)
    config = build_hls_config(mw, opts, input_layer, input_type)
    meta = ProjectMeta(
        clean_model=CLEAN_MODEL,
        hls_config=config,
        **target_fields(opts),
        input_name=onnx_input,
        input_layer=input_layer,
        input_type=input_type,
        **_layouts(original, mw),
        exact=not inexact and not lut and not affine and input_exact,
        inexact_layers=inexact + lut + affine,
        quant_nodes=[asdict(q) for q in quants],
        host_ops=host_ops or None,
        host_post_ops=host_post_ops or None,
        folded_constants=folds or None,
    )
    apply_static_verdict(meta, mw, warn)
    _float32_batchnorm_verdict(meta, float32_bn, warn)
    if inexact or affine:
        with quiet():
            draft = hls_model_from(mw, asdict(meta), Path("fpgadl-scale-draft"))
        widen_scale_bias_types(draft, config)
    try:
        meta.audit = audit_conversion(
            lambda: hls_model_from(mw, asdict(meta), Path("fpgadl-audit-draft")),
            config,
            config_names,
            exact_constants=not inexact,  # with non-power-of-two scales nothing downstream is exact anyway
        )
    except Exception as e:  # hls4ml's own refusals (RuntimeError, KeyError...) name no fpgadl concept
        raise UsageError(f"{source}: hls4ml could not convert the model ({type(e).__name__}: {e})") from e
    rounded = sorted({f"{f['rounded']['layer']}.{f['rounded']['type']}" for f in meta.audit if "rounded" in f})
    if rounded:
        warn("note: exact types would exceed 60 bits here; rounded (measured by the probe): " + ", ".join(rounded))
    if opts.fit:
        from fpgadl.estimate import fit

        with quiet():
            draft = hls_model_from(mw, asdict(meta), Path("fpgadl-fit-draft"))
        fitted = fit(
            draft,
            target_board(opts),
            ceiling=opts.ceiling,
            target_latency_cycles=opts.target_latency_cycles,
            target_ii=opts.target_ii,
        )
        for name, override in fitted.items():
            for key in config_names(name, config):
                config["LayerName"].setdefault(key, {}).update(override)
        meta.fitted = fitted
    hint = "; quantized biases with non-power-of-two scales are a known failure of hls4ml's QONNX flow"

    def build(tmp: Path):
        mw.save(str(tmp / CLEAN_MODEL))
        try:
            return hls_model_from(mw, asdict(meta), tmp)
        except UsageError:
            raise
        except Exception as e:
            raise UsageError(
                f"{source}: hls4ml could not convert the model ({type(e).__name__}: {e}){hint if inexact else ''}"
            ) from e

    write_project(hls_dir, meta, build)
    return meta


def _float32_batchnorm_verdict(meta: ProjectMeta, layers: list[str], warn) -> None:
    """BatchNorms computed with torch's own constants (fpgadl.hls.thresholds.TorchBatchNormConstants) are
    exact but for torch's float32 rounding of x * alpha + shift, like a float bias."""
    if not layers:
        return
    meta.inexact_layers = list(dict.fromkeys([*meta.inexact_layers, *layers]))
    if meta.exact or meta.verdict == "exact-except-float32":
        warn(
            "note: BatchNormalization uses torch's own folded float32 constants, held exactly; torch rounds each "
            "normalised value to float32: exact except float32 rounding in torch; layers: " + ", ".join(layers)
        )
        if meta.verdict == "exact-except-float32":  # float biases too
            meta.verdict_reason = f"{meta.verdict_reason}, {', '.join(layers)}"
        else:
            meta.verdict = "exact-except-float32"
            meta.verdict_reason = "float32 rounding in torch: " + ", ".join(layers)
    meta.exact = meta.static_exact = False


def target_board(opts: HlsOptions):
    """The Board the project targets: a named board, or a bare part with its resources."""
    from fpgadl.core.boards import custom_board, load_board

    return custom_board(opts.part, **opts.part_resources) if opts.part else load_board(opts.board)


def target_fields(opts: HlsOptions) -> dict:
    """The ProjectMeta fields every front end fills the same way: board, part, clock, hls4ml's arguments."""
    board = target_board(opts)
    clock = opts.clock_period_ns or board.clock_period_ns
    return {
        "convert_kwargs": {"io_type": opts.io_type, "backend": opts.backend, "part": board.part, "clock_period": clock},
        "board": board.name,
        "board_spec": board.model_dump(mode="json"),
        "part": board.part,
        "clock_period_ns": clock,
    }


def write_project(hls_dir: Path, meta: ProjectMeta, build) -> None:
    """Write the project atomically: `build(tmp)` saves the front end's model files into tmp and returns
    the hls4ml model, whose vendor project is written beside them with fpgadl.json."""
    hls_dir = Path(hls_dir)
    with atomic_dir(hls_dir) as tmp:
        hls_model = build(tmp)
        with quiet():
            hls_model.write()
        write_json(tmp / META_FILE, asdict(meta))
        fix_project_paths(tmp, hls_dir)


def _set_batch_one(model: onnx.ModelProto, port) -> None:
    """The firmware takes one sample: an export traced with another (or a symbolic) batch size becomes batch 1."""
    dims = port.type.tensor_type.shape.dim
    if not dims or (not dims[0].dim_param and dims[0].dim_value == 1):
        return
    traced = dims[0].dim_value  # 0 when symbolic
    dims[0].ClearField("dim_param")
    dims[0].dim_value = 1
    # an export with another batch size recorded it on every tensor: shapes are inferred again from batch 1
    del model.graph.value_info[:]
    for out in model.graph.output:
        if out.type.tensor_type.shape.dim:
            out.type.tensor_type.shape.dim[0].ClearField("dim_param")
            out.type.tensor_type.shape.dim[0].dim_value = 1
    if traced > 1:  # `x.view(x.shape[0], -1)` traced at batch N is a Reshape to the constant (N, ...)
        rebatch_reshapes(model.graph, traced, 1)


def _strip_initializer_inputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """Exporters (torch dynamo) may list initializers as graph inputs; they are constants, not ports."""
    inits = {i.name for i in model.graph.initializer}
    for inp in [i for i in model.graph.input if i.name in inits]:
        model.graph.input.remove(inp)
    return model
