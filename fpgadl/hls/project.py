"""An fpgadl HLS project directory: the complete hls4ml project plus what rebuilds its model graph.

`OUT/hls/` (or `fpgadl hls --out DIR`) holds hls4ml's vendor project, `fpgadl.json` (a `ProjectMeta`:
the hls4ml config, conversion options, port types and layouts, board) and either `model.clean.onnx` (the
cleaned QONNX graph) or `twin.pt` (a recurrent net's float twin). `load_project` rebuilds the same hls4ml
model from the directory alone, which is all `fpgadl emulate` needs.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from fpgadl.core.errors import UsageError

PROJECT_NAME = "myproject"
TWIN_WEIGHTS = "twin.pt"
META_FILE = "fpgadl.json"
CLEAN_MODEL = "model.clean.onnx"


@dataclass
class ProjectMeta:
    """What `fpgadl emulate` needs to rebuild the model graph from the project directory alone."""

    clean_model: str
    hls_config: dict
    convert_kwargs: dict
    input_name: str
    input_layer: str
    input_type: str | None  # ap type of the FPGA's input port, None when the model has no input quantizer
    input_shape_onnx: list[int]  # without batch, in the ONNX model's own layout (NCHW for conv nets)
    input_transpose: list[int] | None  # axes that take an ONNX-layout batch to hls4ml's (channels-last)
    output_shape_onnx: list[int]  # without batch, as the ONNX model (and torch) give it
    output_shape_hls: list[int]  # without batch, as the firmware's output port orders it
    output_transpose: list[int] | None  # axes that take hls4ml's output batch back to the ONNX layout
    board: str
    board_spec: dict  # the Board (fpgadl.core.boards) the project targets, so estimates need no board file
    part: str
    clock_period_ns: float
    exact: bool
    inexact_layers: list[str]
    quant_nodes: list[dict]
    fitted: dict | None = None  # per-layer ReuseFactor/Strategy chosen by --fit
    frontend: str = "onnx"  # "onnx" (QONNX file) or "pytorch" (a float twin, for recurrent layers)
    twin: dict | None = None  # pytorch front end: how to rebuild the twin module (weights in TWIN_WEIGHTS)
    input_prequant: dict | None = None  # quantizer the host applies before a port that cannot round
    # elementwise float ops before the input quantizer, run on the host (fpgadl.hls.hostops)
    host_ops: list[dict] | None = None
    # elementwise float ops after the last layer (bnn_pynq's TensorNorm), run on the host
    host_post_ops: list[dict] | None = None
    static_exact: bool | None = None  # what the ops and types allow, before the probe measured it
    probe: dict | None = None  # fpgadl.hls.probe: QONNX reference vs fast engine on generated inputs
    audit: list[dict] | None = None  # fpgadl.hls.audit: types widened so nothing can overflow
    # constants the exporter folded with arithmetic torch may not share (fpgadl.hls.folded)
    folded_constants: list[str] | None = None
    verdict: str | None = None  # "exact" | "exact-except-float32" | "exact-vs-export" | "twin-only" (fast == csim)
    verdict_reason: str | None = None
    fpgadl_version: str = "0.1.0"

    @staticmethod
    def load(hls_dir: Path) -> ProjectMeta:
        path = Path(hls_dir) / META_FILE
        if not path.is_file():
            raise UsageError(f"{hls_dir}: not an fpgadl HLS project (no {META_FILE}); create one with `fpgadl hls`")
        return ProjectMeta(**json.loads(path.read_text()))


def project_hash(hls_dir: Path) -> str:
    """Hash of what the project's graph is rebuilt from: fpgadl.json and the cleaned model. Whatever is
    derived from the project (its RTL, Yosys' counts) records it, so a stale derivative is recognised."""
    h = hashlib.sha256((Path(hls_dir) / META_FILE).read_bytes())
    model = Path(hls_dir) / ProjectMeta.load(hls_dir).clean_model
    if model.is_file():
        h.update(model.read_bytes())
    return h.hexdigest()


def rebatch_reshapes(graph, old: int, new: int) -> None:
    """Reshapes of data to a constant shape led by batch `old` (`x.view(x.shape[0], -1)` traced at that batch)
    lead with batch `new` instead: each gets its own new shape constant (a shared one may serve others)."""
    import onnx
    from onnx import numpy_helper

    if old == new:
        return
    inits = {i.name: i for i in graph.initializer}
    for node in graph.node:
        if node.op_type != "Reshape" or len(node.input) < 2 or node.input[0] in inits or node.input[1] not in inits:
            continue
        shape = numpy_helper.to_array(inits[node.input[1]])
        if shape.ndim != 1 or len(shape) < 2 or shape[0] != old:
            continue
        name = f"{node.output[0]}_shape_batch{new}"
        graph.initializer.append(numpy_helper.from_array(np.array([new, *shape[1:]], dtype=np.int64), name))
        # with its value_info: qonnx's node-by-node execution builds each node's model from those
        graph.value_info.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.INT64, [len(shape)]))
        node.input[1] = name


@contextlib.contextmanager
def quiet():
    """hls4ml and qonnx print progress to stdout and warn freely; the CLI owns the terminal."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _producers(layer) -> list:
    """The layers producing `layer`'s inputs, found by output tensor name."""
    by_output = {out: other for other in layer.model.graph.values() for out in other.outputs}
    return [by_output[name] for name in layer.inputs if name in by_output]


def _patch_once(owner, name: str, wrap) -> None:
    """Replace `owner.name` by `wrap(original)` once per process (the wrapper carries fpgadl's mark)."""
    original = getattr(owner, name)
    if getattr(original, "_fpgadl_patch", False):
        return
    patched = wrap(original)
    patched._fpgadl_patch = True
    setattr(owner, name, patched)


def patch_hls4ml_da() -> None:
    """hls4ml 1.3's distributed-arithmetic pass finds a layer's producers by assuming tensor name == layer
    name, which the ONNX front end never satisfies (tensors are '<node>_out0'); it only needs the producer
    to see whether it is a FixedPointQuantizer, so look producers up by their output tensors instead."""
    from hls4ml.backends.vivado.passes import distributed_arithmetic

    distributed_arithmetic.get_input_layers = _producers
    _patch_once(distributed_arithmetic.DistributedArithmeticCodegen, "transform", _keeping_constants)


def patch_hls4ml_bn_fusion() -> None:
    """hls4ml 1.3's BatchNorm fusion (`FuseBatchNormalization.match`), two defects:
    - it takes a depthwise conv for an unquantized one (its weight quantizer is kept as `depthwise_quantizer`,
      not `weight_quantizer`) and multiplies a following scale (an ApplyAlpha) into its weights: integer
      weights become rounded floats, or the shapes do not broadcast (a crash). The scale stays a layer of its
      own after a depthwise conv.
    - it reads `data_unquantized`, which weights made from a QONNX Quant lack (AttributeError on bnn_pynq's
      TFC-2W2A once its input port is the quantizer's type): such a layer keeps its BatchNorm, as hls4ml does
      for quantized weights it can read."""
    from hls4ml.model.layers import DepthwiseConv1D, DepthwiseConv2D
    from hls4ml.model.optimizer.passes.bn_fuse import FuseBatchNormalization

    def wrap(match):
        def guarded(self, node):
            if isinstance(node.get_input_node(), (DepthwiseConv1D, DepthwiseConv2D)):
                return False
            try:
                return match(self, node)
            except AttributeError:
                return False

        return guarded

    _patch_once(FuseBatchNormalization, "match", wrap)


def patch_hls4ml_resize() -> None:
    """hls4ml 1.3's ONNX Resize takes a channels-last (H, W, C) input's H for its width and W for its height
    (and picks the layout by whether any node of the graph is in qonnx's channels-last domain), so
    resize_nearest reads a non-square map with the wrong strides. fpgadl's cleaned graphs feed a Resize
    channels-last (fpgadl.hls.rewrites moves the Transposes qonnx leaves around it): set the geometry from
    the input shape and the (N, H, W, C) scales. A Resize behind a Transpose keeps hls4ml's reading."""
    from hls4ml.model.layers import Resize, Transpose

    def wrap(initialize):
        def channels_last(self):
            inp = self.get_input_variable()
            scales = self.get_input_node(self.inputs[2]) if len(self.inputs) == 3 else None
            if len(inp.shape) != 3 or scales is None or isinstance(self.get_input_node(), Transpose):
                return initialize(self)
            (h, w, c), s = inp.shape, scales.get_attr("value")
            out = [int(h * s[1]), int(w * s[2]), int(c * s[3])]
            for key, value in zip(("in_height", "in_width", "out_height", "out_width", "n_chan"), (h, w, *out)):
                self.set_attr(key, value)
            self.set_attr("data_format", "channels_last")
            self.add_output_variable(out, precision=inp.type.precision)

        return channels_last

    _patch_once(Resize, "initialize", wrap)


def _keeping_constants(transform):
    """The pass later drops the layer's weight variables; the fast engine needs the exact constants the
    adder graph was generated from, so they stay on the layer as `da_weight` / `da_bias`."""

    def wrapped(self, model, node):
        node.set_attr("da_weight", np.array(node.attributes["weight"].data, copy=True))
        bias = node.attributes.get("bias")
        node.set_attr("da_bias", None if bias is None else np.array(bias.data, copy=True))
        return transform(self, model, node)

    return wrapped


def patch_hls4ml_binary_dense() -> None:
    """hls4ml 1.3's `quantize_dense_output` (written for QKeras) re-quantizes a Dense after a fused BN+sign
    layer with `x >= 0 -> 1, else 0`; in the QONNX flow the weights are already stored as 1/0 (XNOR), so every
    weight became 1 (bnn_pynq TFC: csim and the twin agreed, and differed from torch on every row), and a
    non-zero bias was replaced by zeros. Weights already XNOR are kept; a layer with a bias is left alone."""
    from hls4ml.backends.vivado.passes import bn_quant
    from hls4ml.model.types import XnorPrecisionType

    def wrap(original):
        def transform(self, model, node):
            weight, bias = node.weights["weight"], node.weights.get("bias")
            if bias is not None and np.any(np.asarray(bias.data) != 0):
                return False
            already = isinstance(weight.type.precision, XnorPrecisionType)
            data = np.array(weight.data, copy=True)
            changed = original(self, model, node)
            if already:
                weight.data = data
            return changed

        return transform

    _patch_once(bn_quant.QuantizeDenseOutput, "transform", wrap)


def patch_hls4ml() -> None:
    """Every hls4ml 1.3 fix above, applied once per process before a conversion."""
    patch_hls4ml_da()
    patch_hls4ml_bn_fusion()
    patch_hls4ml_resize()
    patch_hls4ml_binary_dense()


def hls_model_from(mw, meta_like: dict, output_dir: Path):
    """Run hls4ml's conversion (front end + optimizer passes); nothing is compiled."""
    import hls4ml

    patch_hls4ml()
    with quiet():
        return hls4ml.converters.convert_from_onnx_model(
            mw,
            output_dir=str(output_dir),
            project_name=PROJECT_NAME,
            hls_config=json.loads(json.dumps(meta_like["hls_config"])),
            **meta_like["convert_kwargs"],
        )


def fix_project_paths(tmp: Path, final: Path) -> None:
    """hls4ml writes its output_dir into a few project files; point them at the final location."""
    final_abs = str(Path(final).resolve())
    for f in tmp.rglob("*"):
        if f.is_file() and f.suffix in (".tcl", ".yml", ".sh", ".json", ".cpp", ".h") and f.stat().st_size < 2**22:
            text = f.read_text(errors="ignore")
            if str(tmp) in text:
                f.write_text(text.replace(str(tmp.resolve()), final_abs).replace(str(tmp), final_abs))


def load_project(hls_dir: Path, *, output_dir: Path | None = None, trace: bool = False):
    """Rebuild the hls4ml model of a project directory written by `convert` (no compile).

    `trace` turns on hls4ml's per-layer trace output (for csim's `hls_model.trace`)."""
    from qonnx.core.modelwrapper import ModelWrapper

    hls_dir = Path(hls_dir)
    meta = ProjectMeta.load(hls_dir)
    model_path = hls_dir / meta.clean_model
    if meta.frontend == "onnx" and not model_path.is_file():
        raise UsageError(f"{hls_dir}: project is incomplete ({meta.clean_model} missing); re-run `fpgadl hls`")
    spec = asdict(meta)
    if trace:
        spec["hls_config"] = json.loads(json.dumps(meta.hls_config))
        for layer_cfg in spec["hls_config"].get("LayerName", {}).values():
            layer_cfg["Trace"] = True
    if meta.frontend == "pytorch":
        from fpgadl.hls.pytorch_twin import pytorch_model_from

        return pytorch_model_from(hls_dir, spec, output_dir or hls_dir), meta
    mw = ModelWrapper(str(model_path))
    hls_model = hls_model_from(mw, spec, output_dir or hls_dir)
    return hls_model, meta
