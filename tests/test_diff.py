"""Trace and diff: every layer's output on disk, and the first layer where two executions diverge."""

from __future__ import annotations

import json

import numpy as np

from fpgadl import api
from tests.helpers import run_cli


def test_diff_finds_no_divergence_on_an_exact_run(default_run):
    out, _, _ = default_run
    results = api.diff(out, samples=32)
    assert [(r["left"], r["right"]) for r in results] == [("fast", "csim"), ("qonnx", "fast")]
    for r in results:
        assert r["first_divergent"] is None and r["expected_exact"] is True
        assert len(r["layers"]) >= 5 and all(d["identical_values"] == 1.0 for d in r["layers"])


def test_diff_names_the_first_divergent_layer(default_run, monkeypatch):
    """A kernel made wrong on purpose at one layer: diff must name exactly that layer."""
    import fpgadl.emulator.runner as runner

    real = runner.build_kernel

    def build_kernel(layer):
        kernel = real(layer)
        if layer.name == "Relu_1":
            return lambda *a: kernel(*a) + 1  # one LSB off
        return kernel

    monkeypatch.setattr(runner, "build_kernel", build_kernel)
    out, _, _ = default_run
    fast_vs_csim, qonnx_vs_fast = api.diff(out, samples=16)
    assert fast_vs_csim["first_divergent"] == "Relu_1"
    assert qonnx_vs_fast["first_divergent"] == "Relu_1"
    lsb = 2.0**-5  # Relu_1's result type ufixed<8,3>: one LSB
    relu = next(d for d in fast_vs_csim["layers"] if d["layer"] == "Relu_1")
    assert relu["max_abs_diff"] == lsb and relu["identical_values"] == 0.0


def test_emulate_trace_writes_every_layer(default_run, tmp_path):
    out, _, _ = default_run
    x = np.load(out / "data/x_test.npy")[:50]
    np.save(tmp_path / "x.npy", x)
    proc = run_cli("emulate", out, "--input", tmp_path / "x.npy", "--trace", tmp_path / "trace", "--json")
    assert proc.returncode == 0, proc.stderr
    index = json.loads((tmp_path / "trace/layers.json").read_text())
    names = [entry["layer"] for entry in index["layers"]]
    assert names[-1] == "Dense_MatMul_2" and "Relu_0" in names
    last = np.load(tmp_path / "trace/Dense_MatMul_2.npy")
    assert np.array_equal(last, np.load(out / "predictions/fast.npy")[:50])


def test_diff_cli_exit_code_and_summary(default_run):
    out, _, _ = default_run
    proc = run_cli("diff", out, "--samples", "8", "--against", "csim")
    assert proc.returncode == 0, proc.stderr
    assert "fast vs csim: identical at every layer" in proc.stdout
