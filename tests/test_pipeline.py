"""The spine end to end on the default recipe: every stage bit-exact on the whole test split."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from fpgadl import api
from fpgadl.flow.stages import STAGES

ENGINES = ("torch", "onnxruntime", "csim", "fast")


def test_every_stage_bit_identical_on_whole_test_split(default_run):
    out, report, _ = default_run
    y_test = np.load(out / "data/y_test.npy")
    preds = {e: np.load(out / f"predictions/{e}.npy") for e in ENGINES}
    assert len(y_test) == 360  # 20% of sklearn's 1,797 digits: the whole test split
    for e in ENGINES:
        assert preds[e].dtype == np.float32
        assert preds[e].shape == (len(y_test), 10)
        assert np.array_equal(preds[e], preds["torch"]), e
    accuracy = float(np.mean(preds["fast"].argmax(1) == y_test))
    assert accuracy >= 0.95
    assert report["metrics"]["csim"]["value"] == pytest.approx(accuracy, abs=0)
    assert report["passed"] is True


def test_report_has_metric_exactness_board_and_times(default_run):
    out, report, _ = default_run
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk == json.loads(json.dumps(report))
    assert set(report["metrics"]) == set(ENGINES)
    assert report["part"] == "xc7z020clg400-1" and report["clock_period_ns"] == 10.0
    assert report["input_type"] == "fixed<8,1,RND_CONV,SAT>"
    for pair, c in report["comparisons"].items():
        assert c["identical_samples"] == 1.0, pair
    # fast == csim beyond the test split too: 10,000 inputs up to 8x outside the input port's range
    assert report["stress"]["n"] == 10_000 and report["stress"]["identical_values"] == 1.0
    assert set(report["stages"]) >= {"train", "export", "verify", "convert", "emulate"}
    assert all(s["seconds"] >= 0 for s in report["stages"].values())
    # the recipe's target block fits the design to its board: every resource under the 80% ceiling
    assert all(u <= 0.8 for u in report["estimate"]["utilization"].values()), report["estimate"]["utilization"]
    assert "| Dense_MatMul_0 | Dense | resource |" in (out / "report.md").read_text()
    md = (out / "report.md").read_text()
    assert "xc7z020clg400-1" in md and "| hls4ml csim vs fast emulator | 100.00% |" in md


def test_unchanged_stages_are_skipped_and_from_restarts(default_run, tmp_path):
    src, _, first = default_run
    assert [s for s, e in first if e == "done"] == list(STAGES)
    out = tmp_path / "copy"
    shutil.copytree(src, out)
    events: list[tuple[str, str]] = []
    api.run("mlp-digits", out=out, reporter=lambda s, e, i: events.append((s, e)), warn=lambda m: None)
    assert events == [(s, "skip") for s in STAGES]
    events.clear()
    api.run(
        "mlp-digits",
        out=out,
        start="convert",
        reporter=lambda s, e, i: events.append((s, e)),
        warn=lambda m: None,
    )
    assert [s for s, e in events if e == "skip"] == ["train", "export", "verify"]
    assert [s for s, e in events if e == "done"] == ["convert", "emulate", "report"]


def test_failing_stage_keeps_finished_artifacts(default_run, tmp_path, monkeypatch):
    src, _, _ = default_run
    out = tmp_path / "copy"
    shutil.copytree(src, out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    import fpgadl.hls.convert

    def broken(*args, **kwargs):
        raise RuntimeError("simulated crash halfway through writing the project")

    monkeypatch.setattr(fpgadl.hls.convert, "hls_model_from", broken)
    with pytest.raises(Exception, match="simulated crash"):
        api.run("mlp-digits", out=out, start="convert", warn=lambda m: None)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    changed = {p for p in before if after.get(p) != before[p]}
    assert changed == {out.joinpath("manifest.json").relative_to(out)}, changed
    assert not [p for p in after if p not in before], "no temporary files may be left behind"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stages"]["convert"]["status"] == "failed"
    assert "simulated crash" in manifest["stages"]["convert"]["error"]
    # The project from the earlier run is still whole and usable.
    monkeypatch.undo()
    x = np.load(out / "data/x_test.npy")
    assert np.array_equal(api.emulate(out / "hls", x), np.load(out / "predictions/fast.npy"))


def test_quantize_then_hls_then_emulate_from_the_cli(tmp_path):
    import json

    from tests.helpers import run_cli

    proc = run_cli("quantize", "softmax-digits", "--epochs", "2", "--out", tmp_path / "q", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["torch|onnxruntime"]["identical_values"] == 1.0
    assert (tmp_path / "q/model.qonnx.onnx").is_file() and (tmp_path / "q/model.qcdq.onnx").is_file()
    assert not (tmp_path / "q/hls").exists()  # quantize stops after verify
    proc = run_cli("hls", tmp_path / "q/model.qonnx.onnx", "--out", tmp_path / "prj", "-q")
    assert proc.returncode == 0, proc.stderr
    proc = run_cli(
        "emulate",
        tmp_path / "prj",
        "--input",
        tmp_path / "q/data/x_test.npy",
        "--labels",
        tmp_path / "q/data/y_test.npy",
        "--output",
        tmp_path / "y.npy",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    assert np.array_equal(np.load(tmp_path / "y.npy"), np.load(tmp_path / "q/predictions/torch.npy"))
    assert json.loads(proc.stdout)["accuracy"] == result["metrics"]["torch"]["value"]


def test_untrained_model_is_calibrated_and_converts_exactly(tmp_path):
    """--epochs 0: the activation quantizers still get scales (calibration passes), and every stage runs."""
    report = api.run("mlp-digits", out=tmp_path / "e0", epochs=0, engine="fast", warn=lambda m: None)
    assert json.loads((tmp_path / "e0/train.json").read_text())["epochs_run"] == 0
    for pair, c in report["comparisons"].items():
        assert c["identical_values"] == 1.0, pair
    assert report["passed"] is False  # an untrained net misses the accuracy floor, and says so


def test_a_changed_toolchain_reruns_every_stage(default_run, tmp_path, monkeypatch):
    import fpgadl.flow.pipeline

    src, _, _ = default_run
    out = tmp_path / "copy"
    shutil.copytree(src, out)
    monkeypatch.setattr(fpgadl.flow.pipeline, "toolchain_fingerprint", lambda sources: "a different fpgadl or hls4ml")
    events: list[tuple[str, str]] = []
    api.run("mlp-digits", out=out, engine="fast", reporter=lambda s, e, i: events.append((s, e)), warn=lambda m: None)
    assert [s for s, e in events if e == "done"] == list(STAGES)
