"""`fpgadl run --engine verilator` and the report's fit verdict: which number (estimate or Yosys) it rests on.

One tiny recipe (digits through a 64-3-10 MLP, untrained) keeps the Verilator build and Yosys run to
seconds; the run is made once per session and reused.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.helpers import assert_one_line_error, run_cli

TINY = """name: tiny-rtl
family: mlp
dataset: {name: digits, params: {flatten: true}}
model: {arch: mlp, params: {hidden: [3], activation: relu}}
quant: {input_bits: 4, weight_bits: 4, act_bits: 4, bias_bits: 8, scaling: power_of_two}
train: {epochs: 0}
metric: accuracy
board: pynq-z2
target: {ceiling: 0.8}
"""


def _run(run_dir):
    proc = run_cli("run", run_dir.parent / "tiny-rtl.yaml", "--engine", "verilator", "--out", run_dir, "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


@pytest.fixture(scope="session")
def verilator_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("rtl-run")
    (d / "tiny-rtl.yaml").write_text(TINY)
    return d / "run", _run(d / "run")


def test_run_engine_verilator_equals_fast(verilator_run):
    run_dir, rep = verilator_run
    fast, rtl = np.load(run_dir / "predictions/fast.npy"), np.load(run_dir / "predictions/verilator.npy")
    assert fast.shape == (360, 10) and np.array_equal(fast, rtl)
    assert rep["comparisons"]["fast|verilator"]["identical_values"] == 1.0
    checks = {c["name"]: c["passed"] for c in rep["checks"]}
    assert checks["fast == verilator (always exact)"] is True
    assert checks["fast == verilator on 10,000 stress inputs (up to 8x the input range)"] is True
    assert rep["stress"]["engines"] == ["verilator", "fast"] and rep["stress"]["identical_values"] == 1.0
    assert "| Verilator (RTL) |" in (run_dir / "report.md").read_text()


def test_fit_verdict_rests_on_estimate_then_on_yosys(verilator_run):
    if shutil.which("yosys") is None:
        pytest.skip("yosys is not installed (`make setup` installs the Debian package)")
    run_dir, rep = verilator_run
    hls = rep["fit"]["hls"]
    assert hls["rests_on"] == "analytic estimate" and hls["fits"] is True and rep["fit"]["rtl"] is None
    assert hls["used"] == rep["estimate"]["total"]
    assert "RTL design: not synthesized" in (run_dir / "report.md").read_text()

    proc = run_cli("rtl", run_dir, "--synth", "--no-cosim")
    assert proc.returncode == 0, proc.stderr[-2000:]
    yosys = json.loads((run_dir / "rtl/rtl.json").read_text())["yosys"]
    rep = _run(run_dir)  # only the report stage reruns: rtl/rtl.json is one of its inputs
    rtl = rep["fit"]["rtl"]
    assert rtl["rests_on"] == "Yosys synthesis" and rtl["fits"] is True and rep["fit"]["hls"] == hls
    assert rtl["used"]["lut"] == yosys["lut"] + yosys["lutram"] + yosys["srl"] > 0
    assert rtl["used"]["ff"] == yosys["ff"] > 0
    checks = {c["name"]: c["passed"] for c in rep["checks"]}
    assert checks["the HLS design fits pynq-z2 (by the analytic estimate)"] is True
    assert not [c for c in checks if "RTL" in c]  # information: the deployed HLS design is what must fit
    assert f"{yosys['lut']} LUT" in (run_dir / "report.md").read_text()


def test_fit_verdict_over_the_board_fails():
    from fpgadl.flow.report import fit_section

    board = {"lut": 100, "ff": 200, "dsp": 4, "bram18k": 2, "uram": 0}
    estimate = {"total": {"lut": 50, "ff": 20, "dsp": 0, "bram18k": 0, "uram": 0}}
    yosys = {"lut": 90, "lutram": 8, "srl": 4, "ff": 10, "dsp": 0, "bram18k": 0, "bram36k": 0}
    fit = fit_section(estimate, board, yosys)
    assert fit["hls"]["fits"] is True and fit["hls"]["detail"] == "LUT 50 of 100 (50.0%)"
    # 90 + 8 + 4 LUT sites: the RTL is over the board though the estimate of the HLS design fits
    assert fit["rtl"]["fits"] is False and fit["rtl"]["detail"] == "over: LUT 102 > 100"
    assert fit_section(estimate, board, None)["rtl"] is None
    assert fit_section({"error": "layer 'x' has class Foo"}, board, None)["hls"]["fits"] is None


def test_run_engine_verilator_refuses_untraceable_recipe(tmp_path):
    proc = run_cli("run", "mlp-sigmoid-digits", "--engine", "verilator", "--out", tmp_path / "r")
    assert_one_line_error(proc, "--engine verilator", "mlp-sigmoid-digits", "sigmoid", "fast, csim, both", code=2)
    assert not (tmp_path / "r" / "model.pt").exists()  # refused before training
    proc = run_cli("run", "--engine", "gpu", "--out", tmp_path / "g")
    assert_one_line_error(proc, "--engine 'gpu'", "fast, csim, verilator, both", code=2)
