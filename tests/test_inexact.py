"""Scales that are not powers of two cannot be exact in ap_fixed: the tool names the layers, measures the
deviation, and never claims exactness. fast == csim stays exact regardless."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
import yaml

from fpgadl import api
from fpgadl.ml.recipes import RECIPES_DIR
from tests.helpers import run_cli


@pytest.fixture(scope="module")
def float_scaled(tmp_path_factory):
    import brevitas.nn as qnn
    from brevitas.quant import Int8ActPerTensorFloat, Int8WeightPerTensorFloat, Uint8ActPerTensorFloat

    from fpgadl.hls.export import export_qonnx_file

    d = tmp_path_factory.mktemp("float")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True),
        qnn.QuantLinear(16, 8, weight_quant=Int8WeightPerTensorFloat, return_quant_tensor=True),
        qnn.QuantReLU(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=True),
        qnn.QuantLinear(8, 4, weight_quant=Int8WeightPerTensorFloat),
    )
    net.train()
    with torch.no_grad():
        net(torch.randn(256, 16))
    net.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_qonnx_file(net, (16,), d / "m.onnx")
    x = np.random.default_rng(0).standard_normal((10_000, 16)).astype(np.float32)
    with torch.no_grad():
        y = net(torch.from_numpy(x)).numpy()
    np.save(d / "x.npy", x)
    return d, x, y


def test_hls_warns_naming_the_layers_and_does_not_claim_exactness(float_scaled):
    d, _, _ = float_scaled
    proc = run_cli("hls", d / "m.onnx", "--out", d / "prj", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "not powers of two" in proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["exact"] is False
    assert {"MatMul_0", "MatMul_1"} <= set(summary["inexact_layers"])
    for layer in summary["inexact_layers"]:
        assert layer in proc.stderr


def test_deviation_is_measured_small_and_fast_equals_csim(float_scaled):
    d, x, y = float_scaled
    fast = api.emulate(d / "prj", x, engine="fast")
    csim = api.emulate(d / "prj", x, engine="csim")
    assert np.array_equal(fast, csim)
    deviation = np.abs(csim - y).max()
    assert 0 < deviation < 0.02 * np.abs(y).max()  # not exact, but close: scale/bias types are widened


def test_report_shows_deviation_instead_of_exactness(tmp_path):
    recipe = yaml.safe_load((RECIPES_DIR / "mlp-digits.yaml").read_text())
    recipe.update(name="mlp-digits-float", floor=None)
    recipe["quant"]["scaling"] = "float"
    recipe["model"]["params"]["hidden"] = [16]
    recipe["train"]["epochs"] = 3
    path = tmp_path / "mlp-digits-float.yaml"
    path.write_text(yaml.safe_dump(recipe))
    report = api.run(str(path), out=tmp_path / "run", warn=lambda m: None)
    assert report["exact_expected"] is False
    assert report["inexact_layers"]
    names = [c["name"] for c in report["checks"] if "==" in c["name"]]  # besides: the fit (the recipe's target)
    assert names == ["fast == csim (always exact)", "fast == csim on 10,000 stress inputs (up to 8x the input range)"]
    assert report["passed"] is True
    assert report["comparisons"]["torch|csim"]["max_abs_diff"] > 0
    # float scales: float rounding differs between torch and onnxruntime, sometimes by a quantization step
    assert report["comparisons"]["torch|onnxruntime"]["argmax_agreement"] > 0.9
    md = (tmp_path / "run" / "report.md").read_text()
    assert "measured, not claimed" in md and report["inexact_layers"][0] in md
