"""Fitting a design to its board: a model too big for a pynq-z2 at reuse 1 gets per-layer reuse factors
and strategies that bring the estimate under the ceiling, and its arithmetic does not change."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fpgadl import api
from fpgadl.core.boards import Board, load_board
from fpgadl.estimate import estimate
from fpgadl.hls.project import load_project
from tests.helpers import assert_one_line_error, run_cli


@pytest.fixture(scope="module")
def big_mlp(tmp_path_factory):
    from fpgadl.hls.export import export_qonnx_file
    from fpgadl.ml.recipes import QuantConfig
    from fpgadl.zoo import build_model

    d = tmp_path_factory.mktemp("fit")
    torch.manual_seed(0)
    # 8-bit, power-of-two; at reuse 1 ~100k LUT by the estimate, 1.9x a pynq-z2 (8-bit products map to LUTs):
    # big enough to need fitting, small enough that its two csim builds take seconds (784-256-128: a minute)
    model = build_model("mlp", {"hidden": [32, 16]}, QuantConfig(), (64,), 10)
    model.train()
    with torch.no_grad():
        model(torch.rand(256, 64))
    export_qonnx_file(model.eval(), (64,), d / "mlp.onnx")
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.5, 1.5, size=(400, 64)).astype(np.float32)
    x[:50] *= 100  # outside the input range: saturation
    return d, x


def _utilization(project) -> dict[str, float]:
    hls_model, meta = load_project(project)
    board = Board.model_validate(meta.board_spec)
    return estimate(hls_model, board).utilization(board)


def test_unfitted_design_does_not_fit_a_pynq_z2(big_mlp):
    d, _ = big_mlp
    api.hls(d / "mlp.onnx", out=d / "plain", board="pynq-z2", warn=lambda m: None)
    assert max(_utilization(d / "plain").values()) > 1.0


def test_fit_meets_the_ceiling_and_keeps_outputs_identical(big_mlp):
    d, x = big_mlp
    if not (d / "plain").exists():
        api.hls(d / "mlp.onnx", out=d / "plain", board="pynq-z2", warn=lambda m: None)
    meta = api.hls(d / "mlp.onnx", out=d / "fitted", board="pynq-z2", fit=True, warn=lambda m: None)
    assert meta.fitted and any(v["ReuseFactor"] > 1 for v in meta.fitted.values())  # the 10-output layer fits as is
    util = _utilization(d / "fitted")
    assert all(u <= 0.8 for u in util.values()), util
    assert load_board("pynq-z2").part == meta.part
    reference = api.emulate(d / "plain", x, engine="csim")
    assert np.array_equal(api.emulate(d / "fitted", x, engine="csim"), reference)
    assert np.array_equal(api.emulate(d / "fitted", x, engine="fast"), reference)
    assert np.array_equal(api.emulate(d / "plain", x, engine="fast"), reference)


def test_impossible_target_fails_naming_resource_and_layer(big_mlp, tmp_path):
    d, _ = big_mlp
    proc = run_cli("hls", d / "mlp.onnx", "--out", tmp_path / "p", "--fit", "--target-ii", "1")
    assert_one_line_error(proc, "Dense_MatMul_0", code=1)
    assert any(r in proc.stderr for r in ("LUT", "DSP", "FF", "BRAM", "lut", "dsp"))
