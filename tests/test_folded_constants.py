"""Constants torch's dynamo exporter folds (fpgadl.hls.folded): exact against the file is not exact against torch.

bnn_pynq's TensorNorm divides by `(running_var + eps).pow(0.5)`; the default `export_qonnx` folds that into
one float with onnxscript's correctly rounded pow, torch divides by its own float32 pow of the same value.
The model here is a power-of-two QuantLinear and Brevitas' own TensorNorm, its running variance chosen
(by torch on this machine) where the two roots differ, so the firmware equals the file and not torch.
"""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
import torch

from fpgadl import api
from fpgadl.core.errors import CheckFailed, UsageError
from fpgadl.hls.folded import inexact_folds
from fpgadl.hls.project import ProjectMeta
from tests.helpers import assert_one_line_error, run_cli

EPS = 1e-4


def _variance(torch_differs: bool) -> float:
    """The first running variance (from a fixed list) whose torch root differs from (or equals) numpy's
    correctly rounded one."""
    for v in np.linspace(0.5, 200.0, 4001, dtype=np.float32):
        u = torch.tensor([v]) + EPS
        ours = u.pow(0.5).numpy()[0]
        if (ours != np.sqrt(u.numpy())[0]) == torch_differs:
            return float(v)
    raise AssertionError(f"no variance in the list where torch's pow(0.5) {'differs' if torch_differs else 'agrees'}")


def _model(var: float) -> torch.nn.Module:
    import brevitas.nn as qnn
    from brevitas.quant import Int8ActPerTensorFixedPoint, Int8WeightPerTensorFixedPoint
    from brevitas_examples.bnn_pynq.models.tensor_norm import TensorNorm

    torch.manual_seed(0)
    norm = TensorNorm(eps=EPS)
    model = torch.nn.Sequential(
        qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, return_quant_tensor=True),
        qnn.QuantLinear(8, 4, bias=False, weight_quant=Int8WeightPerTensorFixedPoint),
        norm,
    )
    with torch.no_grad():
        norm.running_mean.fill_(0.25)
        norm.running_var.fill_(var)
        norm.weight.fill_(1.5)
        norm.bias.fill_(-0.125)
    return model.eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from brevitas.export import export_qonnx

    model = _model(_variance(torch_differs=True))
    path = tmp_path_factory.mktemp("folded") / "norm.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_qonnx(model, torch.rand(1, 8), export_path=str(path))  # the default: dynamo
    x = np.random.default_rng(0).uniform(-2, 2, size=(64, 8)).astype(np.float32)
    with torch.no_grad():
        y = model(torch.from_numpy(x)).numpy()
    return path, x, y


def test_the_dynamo_export_folds_tensornorms_root(exported):
    path, _, _ = exported
    folds = inexact_folds(onnx.load(str(path)))
    assert len(folds) == 1 and folds[0].startswith("pow") and "running_var" in folds[0], folds


def test_without_torch_outputs_the_claim_is_against_the_file_only(exported, tmp_path):
    path, x, y = exported
    meta = api.hls(path, out=tmp_path / "prj", sample=x, warn=lambda s: None)
    assert meta.probe["identical_rows"] == meta.probe["rows"]  # the firmware computes the file exactly
    assert not np.array_equal(api.emulate(tmp_path / "prj", x), y)  # ... and the file is not torch
    assert (meta.exact, meta.verdict) == (False, "exact-vs-export")
    assert "pow" in meta.verdict_reason and "--expect" in meta.verdict_reason


def test_torch_outputs_decide_the_claim(exported, tmp_path):
    path, x, y = exported
    with pytest.raises(CheckFailed, match="differ from --expect"):  # --strict: CI's exit 1
        api.hls(path, out=tmp_path / "prj", sample=x, expect=y, strict=True, warn=lambda s: None)
    meta = ProjectMeta.load(tmp_path / "prj")  # written before the check failed
    got = api.emulate(tmp_path / "prj", x)
    same = int(np.all(got == y, axis=1).sum())
    assert meta.probe["expected"]["identical_rows"] == same < len(x)
    assert (meta.exact, meta.verdict) == (False, "twin-only")
    assert f"{same}/{len(x)} rows equal --expect" in meta.verdict_reason and "pow" in meta.verdict_reason
    assert "the firmware equals the exported file" in meta.verdict_reason
    # the same file with torch's own root in place of the folded one: now torch's outputs confirm it
    model = onnx.load(str(path))
    (root,) = [i for i in model.graph.initializer if i.name.startswith("pow")]
    with torch.no_grad():  # torch's root of the model's own running variance
        torch_root = (torch.tensor([_variance(torch_differs=True)]) + EPS).pow(0.5).numpy()
    root.CopyFrom(onnx.numpy_helper.from_array(torch_root.astype(np.float32), root.name))
    fixed = tmp_path / "torch-root.onnx"
    onnx.save(model, str(fixed))
    meta = api.hls(fixed, out=tmp_path / "fixed", sample=x, expect=y, warn=lambda s: None)
    assert np.array_equal(api.emulate(tmp_path / "fixed", x), y)
    assert (meta.exact, meta.verdict, meta.probe["expected"]["identical_rows"]) == (True, "exact", len(x))


def test_expect_must_match_the_sample(exported, tmp_path):
    path, x, y = exported
    np.save(tmp_path / "y.npy", y)
    proc = run_cli("hls", path, "--out", tmp_path / "a", "--expect", tmp_path / "y.npy")
    assert_one_line_error(proc, "--expect needs --sample")
    with pytest.raises(UsageError, match="--expect"):
        api.hls(path, out=tmp_path / "b", sample=x, expect=y[:, :3], warn=lambda s: None)
