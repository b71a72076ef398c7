"""Bring your own model: a Brevitas conv net built here, exported with export_qonnx (as a user would, with
weights in an external .data file), converted with `fpgadl hls`, run with `fpgadl emulate`.

The FPGA's input port must convert floats exactly as the model's input quantizer does (round half to
even, clamp), so the emulated outputs equal torch's for any float input: off the grid, on exact ties,
and far outside the input range.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from tests.helpers import run_cli

brevitas_nn = pytest.importorskip("brevitas.nn")


def _conv_net() -> torch.nn.Module:
    from brevitas.quant import Int8ActPerTensorFixedPoint, Int8WeightPerTensorFixedPoint, Int16Bias
    from brevitas.quant import Uint8ActPerTensorFixedPoint as U8

    qnn = brevitas_nn
    w, b = Int8WeightPerTensorFixedPoint, Int16Bias

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, return_quant_tensor=True)
            self.c1 = qnn.QuantConv2d(
                1, 4, 3, padding=1, weight_quant=w, bias_quant=b, return_quant_tensor=True
            )
            self.r1 = qnn.QuantReLU(act_quant=U8, return_quant_tensor=True)
            self.pool = torch.nn.MaxPool2d(2)
            self.c2 = qnn.QuantConv2d(4, 8, 3, weight_quant=w, bias_quant=b, return_quant_tensor=True)
            self.r2 = qnn.QuantReLU(act_quant=U8, return_quant_tensor=True)
            self.flat = torch.nn.Flatten()
            self.fc = qnn.QuantLinear(8 * 2 * 2, 5, weight_quant=w, bias_quant=b, return_quant_tensor=False)

        def forward(self, x):
            return self.fc(self.flat(self.r2(self.c2(self.pool(self.r1(self.c1(self.inp(x))))))))

    torch.manual_seed(0)
    net = Net()
    net.train()
    with torch.no_grad():
        for _ in range(8):  # calibrate the activation quantizers' power-of-two scales
            net(torch.randn(32, 1, 8, 8) * 2)
    return net.eval()


def _inputs(scale: float, lo: float, hi: float) -> np.ndarray:
    rng = np.random.default_rng(1)
    n = 10_000
    x = (rng.standard_normal((n, 1, 8, 8)) * 2).astype(np.float32)  # off-grid almost surely
    k = rng.integers(-130, 130, size=(1000, 1, 8, 8))
    x[:1000] = ((k + 0.5) * scale).astype(np.float32)  # exact ties, both parities, some beyond the range
    x[1000:1500] *= 1000  # far outside the input range: saturation
    x[1500:1600] = rng.choice([lo, hi, lo - scale / 2, hi + scale / 2, 0.0, -0.0], size=(100, 1, 8, 8))
    return x


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from brevitas.export import export_qonnx

    d = tmp_path_factory.mktemp("byom")
    net = _conv_net()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_qonnx(net, torch.randn(1, 1, 8, 8), export_path=str(d / "net.onnx"))  # default exporter
    scale = float(net.inp.act_quant.scale())
    bits = int(net.inp.act_quant.bit_width())
    x = _inputs(scale, -(2 ** (bits - 1)) * scale, (2 ** (bits - 1) - 1) * scale)
    with torch.no_grad():
        y = net(torch.from_numpy(x)).numpy()
    np.save(d / "x.npy", x)
    proc = run_cli("hls", d / "net.onnx", "--out", d / "prj", "--json")
    assert proc.returncode == 0, proc.stderr
    return d, x, y, json.loads(proc.stdout), scale


def test_export_wrote_external_weights(project):
    d, *_ = project
    assert (d / "net.onnx.data").is_file()  # what the user's export_qonnx produced; fpgadl read it


def test_input_port_takes_the_input_quantizer_type(project):
    _, _, _, summary, scale = project
    integer = 8 + int(np.log2(scale))
    assert summary["input_type"] == f"fixed<8,{integer},RND_CONV,SAT>"
    assert summary["exact"] is True
    assert summary["input_shape_onnx"] == [1, 8, 8]


@pytest.mark.parametrize("engine", ["fast", "csim"])
def test_emulate_equals_torch_for_any_float_input(project, engine):
    d, x, y, _, _ = project
    out = d / f"y_{engine}.npy"
    proc = run_cli("emulate", d / "prj", "--input", d / "x.npy", "--output", out, "--engine", engine)
    assert proc.returncode == 0, proc.stderr
    got = np.load(out)
    assert got.dtype == np.float32 and got.shape == y.shape
    assert np.array_equal(got[:1000], y[:1000]), "exact ties"
    assert np.array_equal(got[1000:1600], y[1000:1600]), "outside the input range"
    assert np.array_equal(got, y)


def test_project_directory_alone_is_enough(project, tmp_path):
    import shutil

    from fpgadl import api

    d, x, y, _, _ = project
    moved = tmp_path / "elsewhere"
    shutil.copytree(d / "prj", moved)
    assert np.array_equal(api.emulate(moved, x[:200]), y[:200])
