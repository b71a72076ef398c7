"""Front ends: how a trained model reaches onnxruntime and hls4ml, behind one interface.

`OnnxFrontend` exports QONNX (for hls4ml) and QCDQ (for onnxruntime); `PytorchFrontend` serves models
hls4ml reads only through its PyTorch front end (recurrent layers): a float twin exported to ONNX for
onnxruntime and converted from PyTorch for the project. The stages call `export`, `reference` and
`convert` and never ask which front end they hold; an architecture names its front end when it registers
(fpgadl.ml.models).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import torch

from fpgadl.core.options import HlsOptions
from fpgadl.flow.pipeline import RunDir
from fpgadl.hls.project import ProjectMeta

Predict = Callable[[np.ndarray], np.ndarray]


class Frontend(Protocol):
    name: str
    exported: tuple[str, ...]  # run-relative files `export` writes
    convert_source: str  # the run-relative file `convert` reads

    def export(self, model: torch.nn.Module, input_shape: tuple, run: RunDir) -> None: ...

    # `load()` builds the trained model: only a front end that needs it (not the onnx one) pays for it
    def reference(self, load: Callable[[], torch.nn.Module], run: RunDir) -> Predict:
        """onnxruntime's predictions of the exported model, from float inputs."""
        ...

    def convert(self, load: Callable[[], torch.nn.Module], run: RunDir, opts: HlsOptions, warn) -> ProjectMeta: ...


class OnnxFrontend:
    name = "onnx"
    exported = (RunDir.QONNX, RunDir.QCDQ)
    convert_source = RunDir.QONNX

    def export(self, model, input_shape, run):
        from fpgadl.hls.export import export_qcdq_file, export_qonnx_file

        export_qonnx_file(model, input_shape, run / RunDir.QONNX)
        export_qcdq_file(model, input_shape, run / RunDir.QCDQ)

    def reference(self, load, run):
        from fpgadl.hls.export import onnxruntime_predict

        return lambda x: onnxruntime_predict(run / RunDir.QCDQ, x)

    def convert(self, load, run, opts, warn):
        from fpgadl.hls.convert import convert

        return convert(run / RunDir.QONNX, run / RunDir.HLS, opts, warn=warn)


class PytorchFrontend:
    name = "pytorch"
    exported = (RunDir.TWIN_ONNX,)
    convert_source = RunDir.MODEL

    def export(self, model, input_shape, run):
        from fpgadl.hls.export import export_float_file

        export_float_file(model.float_twin(), input_shape, run / RunDir.TWIN_ONNX)

    def reference(self, load, run):
        from fpgadl.hls.export import onnxruntime_predict

        model = load()

        def predict(x: np.ndarray) -> np.ndarray:  # the float twin has no input quantizer: apply the trained one
            with torch.no_grad():
                return onnxruntime_predict(run / RunDir.TWIN_ONNX, model.inp(torch.from_numpy(x)).value.numpy())

        return predict

    def convert(self, load, run, opts, warn):
        from fpgadl.hls.pytorch_twin import convert_twin

        return convert_twin(load(), run / RunDir.HLS, opts, warn=warn)


FRONTENDS: dict[str, Frontend] = {f.name: f for f in (OnnxFrontend(), PytorchFrontend())}


def frontend(name: str) -> Frontend:
    return FRONTENDS[name]


__all__ = ["FRONTENDS", "Frontend", "frontend"]
