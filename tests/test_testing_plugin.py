"""fpgadl's pytest plug-in as a user runs it: the docs' example test file, from outside the package."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from importlib.metadata import entry_points

import numpy as np
import pytest
import yaml
from helpers import REPO

from fpgadl.testing import assert_firmware_matches

CI = REPO / "docs" / "ci"


def test_pyproject_registers_the_plugin():
    text = (REPO / "pyproject.toml").read_text()  # tomllib is 3.11+; the project supports 3.10
    assert '[project.entry-points.pytest11]\nfpgadl = "fpgadl.testing"\n' in text


def test_workflow_is_valid_and_calls_only_make_pip_pytest():
    wf = yaml.safe_load((CI / "fpgadl-firmware.yml").read_text())
    steps = wf["jobs"]["firmware"]["steps"]
    runs = [s["run"] for s in steps if "run" in s]
    commands = [shlex.split(c.strip())[0] for r in runs for c in r.split("&&")]
    assert commands and set(commands) <= {"make", "pip", "pytest"}, commands
    assert any(r.startswith("pytest") and "tests/test_firmware.py" in r for r in runs)


def test_example_test_file_passes_from_outside_the_package(default_run, tmp_path):
    """The workflow's pytest step, run literally in a user's checkout layout against a zoo run."""
    (tmp_path / "tests").mkdir()
    shutil.copy(CI / "test_firmware.py", tmp_path / "tests" / "test_firmware.py")
    wf = yaml.safe_load((CI / "fpgadl-firmware.yml").read_text())
    cmd = next(s["run"] for s in wf["jobs"]["firmware"]["steps"] if s.get("run", "").startswith("pytest"))
    args = shlex.split(cmd)[1:]
    if not any(ep.value == "fpgadl.testing" for ep in entry_points(group="pytest11")):
        args += ["-p", "fpgadl.testing"]  # an editable install made before the entry point existed
    env = {**os.environ, "PYTHONPATH": str(REPO), "FPGADL_TARGET": str(default_run[0])}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *args, "-p", "no:cacheprovider"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "3 passed" in proc.stdout


def test_assert_firmware_matches_names_the_sample_and_layer(default_run, tmp_path):
    """A model that is not the firmware's: the first layer's weights scaled in the QONNX file."""
    import onnx
    from onnx import numpy_helper

    run = default_run[0]
    x = np.load(run / "data/x_test.npy")[:40]
    assert_firmware_matches(run / "model.qcdq.onnx", run, x)  # the real model, through onnxruntime
    assert_firmware_matches(run / "model.qonnx.onnx", run, x)  # and through qonnx's executor
    model = onnx.load(str(run / "model.qonnx.onnx"))
    init = max(model.graph.initializer, key=lambda t: numpy_helper.to_array(t).size)  # the 64x64 weight
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * 1.5, init.name))
    onnx.save(model, str(tmp_path / "other.onnx"))
    with pytest.raises(
        AssertionError,
        match=r"on \d+ of 40 samples; first: sample \d+ .*first diverging layer: Dense_MatMul_0 ",
    ):
        assert_firmware_matches(tmp_path / "other.onnx", run, x)
