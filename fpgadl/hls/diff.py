"""Layer-by-layer comparison: where do two executions of the same model first diverge, and by how much?

`fast` vs `csim` compares every hls4ml layer's output (hls4ml's own trace on the csim side). `qonnx` vs
`fast` compares the emulator with qonnx's reference execution of the cleaned QONNX graph, which is what
torch computes: an hls4ml layer is matched to the ONNX tensor of the same name, or to the output of the
Quant node hls4ml folded into it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from fpgadl.hls.engines import open_engine, to_firmware_layout
from fpgadl.hls.torchref import is_constant


@dataclass
class LayerDiff:
    layer: str
    identical_values: float
    max_abs_diff: float
    n_values: int


@dataclass
class DiffResult:
    left: str
    right: str
    layers: list[LayerDiff]
    first_divergent: str | None
    max_abs_diff: float | None
    skipped: list[str]  # layers with nothing to compare on one side

    def to_dict(self) -> dict:
        return asdict(self)


def _compare(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    a = np.asarray(a, dtype=np.float64).reshape(len(a), -1)
    b = np.asarray(b, dtype=np.float64).reshape(len(b), -1)
    return float(np.mean(a == b)), float(np.max(np.abs(a - b))) if a.size else 0.0


def _result(left: str, right: str, order: list[str], lt: dict, rt: dict) -> DiffResult:
    layers, skipped = [], []
    for name in order:
        if name not in lt or name not in rt or np.asarray(lt[name]).size != np.asarray(rt[name]).size:
            skipped.append(name)
            continue
        same, worst = _compare(lt[name], rt[name])
        layers.append(LayerDiff(name, same, worst, int(np.asarray(lt[name]).size)))
    first = next((d for d in layers if d.identical_values < 1.0), None)
    return DiffResult(
        left, right, layers, first.layer if first else None, first.max_abs_diff if first else None, skipped
    )


def engines_diff(hls_dir, x: np.ndarray) -> DiffResult:
    """fast vs csim, every layer."""
    fast = open_engine(hls_dir, "fast")
    csim = open_engine(hls_dir, "csim", trace=True)
    try:
        _, ft = fast.trace(x)
        _, ct = csim.trace(x)
        order = [layer.name for layer in fast.hls_model.get_layers()]
    finally:
        csim.close()
    return _result("fast", "csim", order, ft, ct)


def qonnx_diff(hls_dir, x: np.ndarray, reference=None) -> DiffResult:
    """qonnx reference execution of the cleaned graph vs the fast emulator. `reference`: another QONNX
    file to execute instead of the project's own (a user's model), cleaned the same way so that its tensors
    carry the names hls4ml's layers were made from."""
    from qonnx.core.modelwrapper import ModelWrapper

    from fpgadl.hls.torchref import execute_like_torch

    fast = open_engine(hls_dir, "fast")
    _, ft = fast.trace(x)
    if reference is None:
        mw = ModelWrapper(str(fast.hls_dir / fast.meta.clean_model))
    else:
        from fpgadl.hls.convert import clean, load_onnx

        mw = clean(load_onnx(reference), str(reference))
    xin = to_firmware_layout(x, fast.meta).astype(np.float32)
    in_name = mw.graph.input[0].name
    import onnxruntime

    onnxruntime.set_default_logger_severity(3)  # qonnx runs single-node opset-1 graphs: silence ORT's notes
    contexts = [
        execute_like_torch(mw, {in_name: xin[i : i + 1]}, return_full_exec_context=True) for i in range(len(xin))
    ]
    reference: dict[str, np.ndarray] = {}
    order = []
    before_quantizer = _port_side(mw) if fast.meta.input_type else set()
    for layer in fast.hls_model.get_layers():
        order.append(layer.name)
        if _is_xnor(layer) and layer.name in ft:
            ft[layer.name] = 2 * np.asarray(ft[layer.name]) - 1  # ap_uint<1> holds -1 as 0
        if layer.outputs[0] in before_quantizer:
            continue  # the port casts to the quantizer's type; the quantizer's own layer is compared
        tensor = _folded_output(mw, layer.outputs[0], fuses_bias=layer.class_name in BIAS_FUSING)
        if tensor in contexts[0]:
            reference[layer.name] = np.concatenate([c[tensor] for c in contexts])
    return _result("qonnx", "fast", order, reference, ft)


BIAS_FUSING = ("Dense", "Conv1D", "Conv2D")


def _is_xnor(layer) -> bool:
    from hls4ml.model.types import XnorPrecisionType

    return isinstance(layer.get_output_variable().type.precision, XnorPrecisionType)


def _port_side(mw) -> set[str]:
    """The graph input and the layout ops' outputs between it and an input quantizer (bnn_pynq flattens
    first): in the firmware these already hold the port's cast values, in the reference the raw input, so
    comparing them would name the input as the first divergence on every off-grid row."""
    from fpgadl.hls.convert import port_tensors

    tensors = port_tensors(mw)
    quantized = any(n.op_type in ("Quant", "BipolarQuant") for n in mw.find_consumers(tensors[-1]) or [])
    return set(tensors) if len(tensors) > 1 and quantized else set()


def _folded_output(mw, tensor: str, fuses_bias: bool) -> str:
    """The ONNX tensor an hls4ml layer's output stands for. hls4ml keeps the first node's output name but
    folds into the layer a following bias Add (Dense/Conv) and a following Quant (its result type)."""
    while True:
        consumers = mw.find_consumers(tensor) or []
        if len(consumers) != 1:
            return tensor
        node = consumers[0]
        if node.op_type == "Quant" and node.input[0] == tensor:
            tensor = node.output[0]
        elif (
            fuses_bias
            and node.op_type == "Add"
            and all(is_constant(mw, i) for i in node.input if i != tensor)
        ):
            tensor, fuses_bias = node.output[0], False
        else:
            return tensor
