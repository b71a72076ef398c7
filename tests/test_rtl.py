"""Open RTL path: `fpgadl rtl` Verilog (da4ml) co-simulated by Verilator == fast engine, bit for bit.

The designs are tiny on purpose: each Verilator build compiles Verilator's runtime too (~15 s CPU), so
every design is built once per session (session fixtures) and reused by the CLI engine test.
"""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
import torch

from tests.helpers import assert_one_line_error, run_cli

brevitas_nn = pytest.importorskip("brevitas.nn")


def _net(kind: str) -> tuple[torch.nn.Module, tuple[int, ...]]:
    from brevitas.quant import Int8ActPerTensorFixedPoint, Int8WeightPerTensorFixedPoint, Int16Bias
    from brevitas.quant import Uint8ActPerTensorFixedPoint as U8

    qnn = brevitas_nn
    w, b = Int8WeightPerTensorFixedPoint, Int16Bias

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, return_quant_tensor=True)
            if kind == "cnn":
                self.body = torch.nn.Sequential(
                    qnn.QuantConv2d(1, 2, 3, weight_quant=w, bias_quant=b, return_quant_tensor=True),
                    qnn.QuantReLU(act_quant=U8, return_quant_tensor=True),
                    torch.nn.MaxPool2d(2),
                    torch.nn.Flatten(),
                )
                n_hidden = 2
            else:
                act = qnn.QuantSigmoid() if kind == "sigmoid" else qnn.QuantReLU(act_quant=U8)
                self.body = torch.nn.Sequential(
                    qnn.QuantLinear(6, 4, weight_quant=w, bias_quant=b, return_quant_tensor=True),
                    act,
                    qnn.QuantIdentity(act_quant=U8, return_quant_tensor=True),
                )
                n_hidden = 4
            self.fc = qnn.QuantLinear(n_hidden, 3, weight_quant=w, bias_quant=b, return_quant_tensor=False)

        def forward(self, x):
            return self.fc(self.body(self.inp(x)))

    shape = (1, 4, 4) if kind == "cnn" else (6,)
    torch.manual_seed(0)
    net = Net().train()
    with torch.no_grad():
        for _ in range(8):  # calibrate the activation quantizers' power-of-two scales
            net(torch.randn(32, *shape) * 2)
    return net.eval(), shape


def _project(tmp_path_factory, kind: str):
    from brevitas.export import export_qonnx

    from fpgadl import api

    d = tmp_path_factory.mktemp(kind)
    net, shape = _net(kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_qonnx(net, torch.randn(1, *shape), export_path=str(d / "net.onnx"))
    api.hls(d / "net.onnx", out=d / "hls", warn=lambda m: None)
    return d / "hls"


@pytest.fixture(scope="session")
def mlp_project(tmp_path_factory):
    return _project(tmp_path_factory, "mlp")


@pytest.fixture(scope="session")
def mlp_rtl(mlp_project):
    """(project, api.rtl result) of the tiny MLP; its Verilator build stays in the default RTL dir."""
    from fpgadl import api

    return mlp_project, api.rtl(mlp_project)


@pytest.fixture(scope="session")
def cnn_rtl(tmp_path_factory):
    from fpgadl import api

    project = _project(tmp_path_factory, "cnn")
    return project, api.rtl(project)


def _stress(project, n: int = 3000) -> np.ndarray:
    """Inputs in the ONNX layout: off-grid, exact ties of the input grid, far outside the range."""
    from fpgadl.emulator.fixed import FixedType
    from fpgadl.hls.project import ProjectMeta
    from fpgadl.rtl.flow import stress_inputs

    meta = ProjectMeta.load(project)
    return stress_inputs(FixedType.parse(meta.input_type), tuple(meta.input_shape_onnx), n=n, seed=7)


def _engines_agree(project) -> tuple[int, np.ndarray]:
    from fpgadl.hls.engines import FastEngine
    from fpgadl.rtl.engine import VerilatorEngine

    x = _stress(project)
    y_rtl = VerilatorEngine(project).predict(x)
    y_fast = FastEngine(project).predict(x)
    assert y_rtl.shape == y_fast.shape == (len(x), 3)
    return len(x), np.all(y_rtl == y_fast, axis=1)


@pytest.mark.parametrize("design", ["mlp_rtl", "cnn_rtl"])
def test_verilator_equals_fast_engine(design, request):
    project, info = request.getfixturevalue(design)
    assert info["cosim"]["equal"] and info["cosim"]["mismatched_samples"] == 0
    assert info["cosim"]["samples"] >= 1000
    assert info["stages"] >= 1 and info["da4ml_estimate"]["lut"] > 0
    # independently of the verdict: the two engines on fresh inputs (incl. ties and out-of-range ones)
    n, same = _engines_agree(project)
    assert n >= 1000 and same.all(), f"{(~same).sum()} of {n} samples differ"


def test_wrong_rounding_in_trace_is_caught(mlp_rtl, tmp_path, monkeypatch):
    """Ties to even (AP_RND_CONV, the ReLU output's mode) traced as ties up: co-simulation fails."""
    from fpgadl import api
    from fpgadl.core.errors import CheckFailed
    from fpgadl.rtl import fixed

    project, _ = mlp_rtl
    right = fixed._round_bias
    monkeypatch.setattr(
        fixed, "_round_bias", lambda x, fs, fd, mode: right(x, fs, fd, "RND" if mode == "RND_CONV" else mode)
    )
    with pytest.raises(CheckFailed, match="Verilator differs from the fast engine"):
        api.rtl(project, out=tmp_path / "wrong")
    cosim = json.loads((tmp_path / "wrong" / "rtl.json").read_text())["cosim"]
    assert 0 < cosim["mismatched_samples"] < cosim["samples"]


def test_emulate_engine_verilator_cli(mlp_rtl, tmp_path):
    project, _ = mlp_rtl
    x = _stress(project, n=1000)
    np.save(tmp_path / "x.npy", x)
    outs = {}
    for engine in ("fast", "verilator"):
        proc = run_cli(
            "emulate",
            project,
            "--input",
            tmp_path / "x.npy",
            "--output",
            tmp_path / f"{engine}.npy",
            "--engine",
            engine,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        outs[engine] = np.load(tmp_path / f"{engine}.npy")
    assert outs["fast"].shape == (1000, 3)
    assert np.array_equal(outs["fast"], outs["verilator"])


def test_synth_counts_tiny_design(mlp_rtl, tmp_path):
    if shutil.which("yosys") is None:
        pytest.skip("yosys is not installed (`make setup` installs the Debian package)")
    from fpgadl.rtl.synth import synthesize

    project, info = mlp_rtl
    rtl_dir = project.parent / "rtl"
    res = synthesize(rtl_dir, info["top"], "zynq-7000")
    assert res["lut"] > 0 and res["ff"] > 0 and res["logic_levels"] > 0
    assert res["dsp"] == 0 and res["bram18k"] == 0  # constant multiplications are adder graphs


def test_unsupported_layer_is_refused(tmp_path_factory):
    project = _project(tmp_path_factory, "sigmoid")
    proc = run_cli("rtl", project, "--no-cosim")
    assert_one_line_error(proc, "no exact RTL form", "Activation", "sigmoid", code=2)
    x = np.zeros((2, 6), dtype=np.float32)
    np.save(project.parent / "x.npy", x)
    proc = run_cli("emulate", project, "--input", project.parent / "x.npy", "--engine", "verilator")
    assert_one_line_error(proc, "engine verilator", "no exact RTL form", "sigmoid", "use engine fast or csim", code=2)


def test_strategy_da_fast_equals_csim(mlp_project, tmp_path):
    """hls4ml's distributed_arithmetic (da4ml adder graphs in the HLS C++): fast engine == csim."""
    from fpgadl import api
    from fpgadl.hls.engines import CsimEngine, FastEngine

    da = tmp_path / "da"
    api.hls(mlp_project.parent / "net.onnx", out=da, strategy="da", warn=lambda m: None)
    assert "dense_da_" in (da / "firmware" / "myproject.cpp").read_text()
    x = _stress(da, n=2000)
    csim = CsimEngine(da)
    try:
        y_csim = csim.predict(x)
    finally:
        csim.close()
    y_fast = FastEngine(da).predict(x)
    assert y_fast.shape == (2000, 3)
    assert np.array_equal(y_fast, y_csim)
    _da_estimate_uses_the_fitted_rule(da, mlp_project)


def _da_estimate_uses_the_fitted_rule(da, latency):
    """The estimator reads the constants distributed arithmetic keeps (da_weight) as the same codes the
    latency project holds, and prices the layers with the rule fitted on Yosys counts (docs/rtl.md)."""
    from fpgadl.core.boards import load_board
    from fpgadl.estimate import estimate, specs_from_hls_model
    from fpgadl.estimate.rules import DA, DA_LUT_PER_ADDER_BIT, KERNEL, da_adder_bits
    from fpgadl.hls.project import load_project

    da_model, lat_model = load_project(da)[0], load_project(latency)[0]
    da_specs = [s for s in specs_from_hls_model(da_model) if s.kind == KERNEL]
    lat_specs = [s for s in specs_from_hls_model(lat_model) if s.kind == KERNEL]
    assert [s.strategy for s in da_specs] == [DA, DA] and [s.strategy for s in lat_specs] == ["latency"] * 2
    for d, lat in zip(da_specs, lat_specs):
        assert np.array_equal(d.weights, lat.weights) and da_adder_bits(d) > 0
    est = estimate(da_model, load_board("pynq-z2"))
    kernels = [layer for layer in est.layers if layer.kind == KERNEL]
    assert [k.lut for k in kernels] == [round(DA_LUT_PER_ADDER_BIT * da_adder_bits(s)) for s in da_specs]
    assert all(k.strategy == DA and k.dsp == 0 for k in kernels)
