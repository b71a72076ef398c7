"""Export a trained Brevitas model twice from the same weights: QONNX (for hls4ml) and QCDQ ONNX
(standard QuantizeLinear/Clip/DequantizeLinear, for onnxruntime).

Both files are self-contained (no external `.data` file) and written atomically. The QCDQ export uses
the TorchScript exporter because the dynamo exporter refuses quantized biases, with a dynamic batch axis.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch

from fpgadl.core.artifacts import atomic_path

INPUT_NAME = "global_in"
OUTPUT_NAME = "global_out"


def _resave_inline(src: Path, target: Path) -> None:
    """Load an ONNX file (pulling in any external data beside it) and save it self-contained."""
    model = onnx.load(str(src), load_external_data=True)
    with atomic_path(target, ".onnx") as tmp:
        onnx.save_model(model, str(tmp), save_as_external_data=False)


def _export(exporter, model: torch.nn.Module, input_shape: tuple[int, ...], target: Path, **kwargs) -> None:
    """Run one exporter into a temporary folder, then save the model self-contained at `target`."""
    model.eval()
    example = torch.zeros((1, *input_shape), dtype=torch.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        exporter(model, example, str(path), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], **kwargs)
        _resave_inline(path, target)


DYNAMIC_BATCH = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}


def export_qonnx_file(model: torch.nn.Module, input_shape: tuple[int, ...], target: Path) -> None:
    """QONNX (Quant nodes) for hls4ml; batch 1, which is all hls4ml reads."""
    from brevitas.export import export_qonnx

    _export(lambda m, x, p, **kw: export_qonnx(m, x, export_path=p, **kw), model, input_shape, target, dynamo=False)


def export_qcdq_file(model: torch.nn.Module, input_shape: tuple[int, ...], target: Path) -> None:
    """Standard QuantizeLinear/Clip/DequantizeLinear ONNX for onnxruntime, any batch size."""
    from brevitas.export import export_onnx_qcdq

    _export(
        lambda m, x, p, **kw: export_onnx_qcdq(m, x, export_path=p, **kw),
        model,
        input_shape,
        target,
        dynamo=False,
        dynamic_axes=DYNAMIC_BATCH,
    )


def export_float_file(model: torch.nn.Module, input_shape: tuple[int, ...], target: Path) -> None:
    """Standard ONNX of a plain-torch module (the float twin of a recurrent net), any batch size."""
    _export(
        lambda m, x, p, **kw: torch.onnx.export(m, (x,), p, **kw),
        model,
        input_shape,
        target,
        dynamo=False,
        dynamic_axes=DYNAMIC_BATCH,
    )


def onnxruntime_predict(path: Path, x: np.ndarray, batch_size: int = 8192) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    # The reference is the graph's ONNX semantics. onnxruntime's extended optimizations fuse QDQ + Gemm
    # into integer kernels that do not compute the same numbers (onnxruntime 1.32: a power-of-two
    # softmax-regression model differs from torch in 26% of outputs, max 1.47; basic level: 0%).
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    outs = [
        sess.run(None, {name: np.ascontiguousarray(x[i : i + batch_size])})[0] for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(outs).astype(np.float32, copy=False)
