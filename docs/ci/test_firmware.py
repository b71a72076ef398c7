"""Copy into your repository's tests/: the firmware must compute exactly what the trained model computes.

FPGADL_TARGET (or `pytest --fpgadl-target DIR`) names the fpgadl project, run or bundle your build made;
FPGADL_MODEL names the model it was converted from (the QONNX/QCDQ file, default: the run's QCDQ export).
The fixtures and assert_firmware_matches come from fpgadl's pytest plug-in (installed with fpgadl).
"""

import os
from pathlib import Path

import numpy as np

from fpgadl.testing import assert_firmware_matches

TARGET = Path(os.environ.get("FPGADL_TARGET", "build/mlp-digits"))
MODEL = Path(os.environ.get("FPGADL_MODEL", TARGET / "model.qcdq.onnx"))


def _inputs(device, n=256):
    shape = device.manifest["onnx_input_shape"]
    return np.random.default_rng(0).uniform(-1.5, 1.5, size=(n, *shape)).astype(np.float32)


def test_device_agrees_with_the_model(fpgadl_device):
    # The host driver's path: float -> input port type -> AXI words -> firmware -> words -> float.
    x = _inputs(fpgadl_device)
    assert_firmware_matches(MODEL, fpgadl_device.bundle, x)


def test_firmware_project_agrees_with_the_model(fpgadl_device):
    assert_firmware_matches(MODEL, TARGET, _inputs(fpgadl_device))


def test_predictions_have_the_model_shape(fpgadl_device):
    y = fpgadl_device.predict(_inputs(fpgadl_device, 8))
    assert y.shape == (8, *fpgadl_device.manifest["onnx_output_shape"])
