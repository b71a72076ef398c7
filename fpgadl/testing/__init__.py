"""pytest plug-in for users' CI: prove in a test that the firmware computes what the model computes.

Registered through the `pytest11` entry point, so installing fpgadl is enough. It gives

- `fpgadl_device`: a `fpgadl.runtime.Device` (emulated) for the project or bundle named by `--fpgadl-target`,
  the `fpgadl_target` ini option or the FPGADL_TARGET environment variable (a project directory is packaged
  into a bundle for its board, or pynq-z2, once per session);
- `fpgadl_device_for(path)`: the same for any path;
- `assert_firmware_matches(model_or_onnx, project, x)`: the firmware's outputs must equal the model's bit for
  bit; on failure it names how many samples differ, the first one, and the first layer where the firmware
  diverges from the model's QONNX reference on it (`fpgadl.hls.diff`).

Importing this module stays cheap (pytest imports it in every session): the heavy imports are lazy.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TARGET_ENV = "FPGADL_TARGET"
DEFAULT_BOARD = "pynq-z2"


def pytest_addoption(parser) -> None:
    group = parser.getgroup("fpgadl")
    group.addoption("--fpgadl-target", default=None, help="fpgadl project, run or bundle directory to test")
    parser.addini("fpgadl_target", "fpgadl project, run or bundle directory to test", default="")


def open_device(path: str | Path, bundle_dir: Path, backend: str = "emulated"):
    """A Device for a bundle, or for a project/run (packaged into bundle_dir first)."""
    from fpgadl.runtime import Device
    from fpgadl.runtime.bundle import MANIFEST

    path = Path(path)
    if (path / MANIFEST).is_file():
        return Device(path, backend)
    from fpgadl import api
    from fpgadl.hls.project import ProjectMeta
    from fpgadl.runtime.bundle import hls4ml_accelerator_boards

    meta = ProjectMeta.load(api.project_dir(path))
    board = meta.board if meta.board_spec.get("accelerator_board") in hls4ml_accelerator_boards() else DEFAULT_BOARD
    api.package(path, board=board, out=bundle_dir)
    return Device(bundle_dir, backend)


@pytest.fixture(scope="session")
def fpgadl_device_for(tmp_path_factory):
    """Factory: `fpgadl_device_for(path, backend="emulated")` -> Device (cached per path and backend)."""
    cache: dict = {}

    def make(path, backend: str = "emulated"):
        key = (str(Path(path).resolve()), backend)
        if key not in cache:
            cache[key] = open_device(path, tmp_path_factory.mktemp("fpgadl-bundle") / "bundle", backend)
        return cache[key]

    return make


@pytest.fixture(scope="session")
def fpgadl_device(request, fpgadl_device_for):
    """The Device of the configured target (--fpgadl-target, ini fpgadl_target, or $FPGADL_TARGET)."""
    target = (
        request.config.getoption("--fpgadl-target")
        or request.config.getini("fpgadl_target")
        or os.environ.get(TARGET_ENV)
    )
    if not target:
        pytest.fail(f"fpgadl_device: no target; pass --fpgadl-target DIR, set ini fpgadl_target or ${TARGET_ENV}")
    return fpgadl_device_for(target)


def reference_predict(model_or_onnx, x):
    """The model's own float32 outputs: a torch module (Brevitas QAT), or an ONNX file (QCDQ through
    onnxruntime, QONNX through qonnx's executor, linear layers in torch: fpgadl.hls.torchref)."""
    import numpy as np

    if not isinstance(model_or_onnx, (str, Path)):
        from fpgadl.ml.train import torch_predict

        return torch_predict(model_or_onnx, np.asarray(x, dtype=np.float32))
    import onnx

    path = Path(model_or_onnx)
    if not any(n.op_type == "Quant" for n in onnx.load(str(path), load_external_data=False).graph.node):
        from fpgadl.hls.export import onnxruntime_predict

        return onnxruntime_predict(path, np.asarray(x, dtype=np.float32))
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    from fpgadl.hls.torchref import execute_like_torch

    mw = cleanup_model(ModelWrapper(str(path)))  # exporters leave shapes unspecified; qonnx needs them
    name, out = mw.graph.input[0].name, mw.graph.output[0].name
    return np.concatenate([execute_like_torch(mw, {name: x[i : i + 1].astype(np.float32)})[out] for i in range(len(x))])


def assert_firmware_matches(model_or_onnx, project, x) -> None:
    """Fail unless the firmware of `project` (a project, run or bundle directory) gives exactly the model's
    outputs on x (ONNX layout). The message names the differing samples and the first diverging layer."""
    import numpy as np

    from fpgadl import api
    from fpgadl.hls.engines import check_input
    from fpgadl.hls.project import ProjectMeta
    from fpgadl.runtime.bundle import MANIFEST, PROJECT

    project = Path(project)
    hls_dir = project / PROJECT if (project / MANIFEST).is_file() else api.project_dir(project)
    x = check_input(np.asarray(x), ProjectMeta.load(hls_dir), "assert_firmware_matches x")
    if (project / MANIFEST).is_file():
        from fpgadl.runtime import Device

        firmware = Device(project).predict(x)
    else:
        firmware = api.emulate(hls_dir, x)
    ref = np.asarray(reference_predict(model_or_onnx, x), dtype=np.float32).reshape(firmware.shape)
    bad = np.flatnonzero(np.any(ref.reshape(len(x), -1) != firmware.reshape(len(x), -1), axis=1))
    if bad.size == 0:
        return
    i = int(bad[0])
    worst = float(np.max(np.abs(ref[i].astype(np.float64) - firmware[i])))
    raise AssertionError(
        f"firmware differs from the model on {bad.size} of {len(x)} samples; first: sample {i} "
        f"(max |diff| {worst:.6g}); {_first_layer(hls_dir, x[i : i + 1], model_or_onnx)}"
    )


def _first_layer(hls_dir: Path, xi, model_or_onnx) -> str:
    """Where the firmware leaves the model: layer by layer against the given QONNX file if it is one, else
    against the project's own QONNX graph."""
    import onnx

    from fpgadl.hls.diff import qonnx_diff
    from fpgadl.hls.project import ProjectMeta

    if ProjectMeta.load(hls_dir).frontend != "onnx":
        return "no layer-by-layer reference for this project (not an ONNX project)"
    given = isinstance(model_or_onnx, (str, Path)) and any(
        n.op_type == "Quant" for n in onnx.load(str(model_or_onnx), load_external_data=False).graph.node
    )
    d = qonnx_diff(hls_dir, xi, reference=model_or_onnx if given else None)
    what = "the given QONNX model" if given else "the project's QONNX graph"
    if d.first_divergent is None:
        return f"every layer equals {what}: the model given is not the one the project was converted from"
    return f"first diverging layer: {d.first_divergent} (max |diff| {d.max_abs_diff:.6g}, {what} vs fast)"
