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

from fpgadl.artifacts import atomic_path

INPUT_NAME = "global_in"
OUTPUT_NAME = "global_out"


def _resave_inline(src: Path, target: Path) -> None:
    """Load an ONNX file (pulling in any external data beside it) and save it self-contained."""
    model = onnx.load(str(src), load_external_data=True)
    with atomic_path(target, ".onnx") as tmp:
        onnx.save_model(model, str(tmp), save_as_external_data=False)


def export_qonnx_file(model: torch.nn.Module, input_shape: tuple[int, ...], target: Path) -> None:
    from brevitas.export import export_qonnx

    model.eval()
    example = torch.zeros((1, *input_shape), dtype=torch.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        export_qonnx(
            model,
            example,
            export_path=str(path),
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
        )
        _resave_inline(path, target)


def export_qcdq_file(model: torch.nn.Module, input_shape: tuple[int, ...], target: Path) -> None:
    from brevitas.export import export_onnx_qcdq

    model.eval()
    example = torch.zeros((1, *input_shape), dtype=torch.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        export_onnx_qcdq(
            model,
            example,
            export_path=str(path),
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        )
        _resave_inline(path, target)


def export_float_file(model: torch.nn.Module, input_shape: tuple[int, ...], target: Path) -> None:
    """Standard ONNX of a plain-torch module (the float twin of a recurrent net), dynamic batch axis."""
    model.eval()
    example = torch.zeros((1, *input_shape), dtype=torch.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        )
        _resave_inline(path, target)


def onnxruntime_predict(path: Path, x: np.ndarray, batch_size: int = 8192) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    outs = [
        sess.run(None, {name: np.ascontiguousarray(x[i : i + batch_size])})[0] for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(outs).astype(np.float32, copy=False)
