"""The run report: the metric at every stage, how many outputs are bit-identical between each pair of
stages (and by how much the others differ), part and clock, wall time per stage, and the checks that
decide the exit code. Written as report.json (machine-readable) and report.md (for people).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np

from fpgadl.estimate.hls import EstimateError
from fpgadl.flow.pipeline import RunConfig, RunDir
from fpgadl.ml.extras import report_extra
from fpgadl.ml.metrics import meets_floor

ENGINE_ORDER = ("torch", "onnxruntime", "csim", "fast")
LABELS = {
    "torch": "QAT torch",
    "onnxruntime": "onnxruntime",
    "csim": "hls4ml csim",
    "fast": "fast emulator",
}


def compare(a: np.ndarray, b: np.ndarray) -> dict:
    """Exact comparison of two float32 prediction arrays of the same samples."""
    a = a.reshape(len(a), -1)
    b = b.reshape(len(b), -1)
    diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
    return {
        "identical_samples": float(np.mean(np.all(a == b, axis=1))),
        "identical_values": float(np.mean(a == b)),
        "max_abs_diff": float(diff.max()) if diff.size else 0.0,
        "mean_abs_diff": float(diff.mean()) if diff.size else 0.0,
        "argmax_agreement": float(np.mean(a.argmax(1) == b.argmax(1))) if a.shape[1] > 1 else None,
    }


def _load(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def build_report(run: RunDir, cfg: RunConfig) -> dict:
    r = cfg.recipe
    meta = _load(run / "hls/fpgadl.json") or {}
    conv = _load(run / "convert.json") or {}
    manifest = run.manifest().get("stages", {})
    preds = {
        e: np.load(run / f"predictions/{e}.npy")
        for e in ENGINE_ORDER
        if (run / f"predictions/{e}.npy").is_file() and (e in ("torch", "onnxruntime") or e in cfg.engines)
    }
    metrics = {e: _load(run / f"metrics/{e}.json") for e in preds}
    pairs = {f"{a}|{b}": compare(preds[a], preds[b]) for a, b in itertools.combinations(preds, 2)}

    stress = _load(run / "metrics/stress.json") if len(cfg.engines) > 1 else None
    if stress:
        checks_stress = {
            "name": f"fast == csim on {stress['n']:,} stress inputs (up to 8x the input range)",
            "passed": stress["identical_values"] == 1.0,
            "detail": f"{stress['identical_samples']:.4%} identical samples, max |diff| {stress['max_abs_diff']:.3g}",
        }
    exact_expected = bool(meta.get("exact"))
    checks = []
    if "fast" in preds and "csim" in preds:
        p = pairs["csim|fast"]
        checks.append(
            {
                "name": "fast == csim (always exact)",
                "passed": p["identical_values"] == 1.0,
                "detail": f"{p['identical_samples']:.4%} identical samples, max |diff| {p['max_abs_diff']:.3g}",
            }
        )
    if exact_expected:
        for a, b in itertools.combinations([e for e in ("torch", "onnxruntime", "csim", "fast") if e in preds], 2):
            if {a, b} == {"csim", "fast"}:
                continue
            p = pairs[f"{a}|{b}"]
            checks.append(
                {
                    "name": f"{a} == {b} (power-of-two scales: exact)",
                    "passed": p["identical_values"] == 1.0,
                    "detail": f"{p['identical_samples']:.4%} identical samples, max |diff| {p['max_abs_diff']:.3g}",
                }
            )
    if stress:
        checks.append(checks_stress)
    emulated = next((e for e in ("fast", "csim") if e in metrics), None)
    if emulated and r.floor is not None:
        v = metrics[emulated]["value"]
        checks.append(
            {
                "name": f"{r.metric} of the emulated FPGA ({emulated}) meets the floor {r.floor}",
                "passed": meets_floor(r, v),
                "detail": f"{r.metric} = {v:.4f}",
            }
        )

    extra = report_extra(run.path, r)
    estimate = None
    try:
        estimate = _estimate(run, cfg)
    except EstimateError as e:  # a layer with no estimator rule: the report names it instead of a number
        estimate = {"error": str(e)}

    return {
        "recipe": r.name,
        "run_dir": str(run.path),
        "family": r.family,
        "description": r.description,
        "metric": r.metric,
        "floor": r.floor,
        "board": meta.get("board", cfg.board_name),
        "part": meta.get("part"),
        "clock_period_ns": meta.get("clock_period_ns"),
        "input_type": meta.get("input_type"),
        "exact_expected": exact_expected,
        "inexact_layers": meta.get("inexact_layers", []),
        "warnings": conv.get("warnings", []),
        "metrics": {e: m for e, m in metrics.items() if m},
        "comparisons": pairs,
        "stages": {k: {"status": v.get("status"), "seconds": v.get("seconds")} for k, v in manifest.items()},
        "stress": stress,
        "checks": checks,
        "passed": all(c["passed"] for c in checks),
        "estimate": estimate,
        "extra": {"title": extra.title, "markdown": extra.markdown, "data": extra.data} if extra else None,
    }


def _estimate(run: RunDir, cfg: RunConfig) -> dict | None:
    from fpgadl.core.boards import Board
    from fpgadl.estimate import estimate as estimate_fn
    from fpgadl.estimate import format_table
    from fpgadl.hls.project import load_project

    hls_model, meta = load_project(run / "hls")
    board = Board.model_validate(meta.board_spec)
    est = estimate_fn(hls_model, board, clock_period_ns=meta.clock_period_ns)
    out = est.to_dict()
    out["utilization"] = est.utilization(board)
    out["markdown"] = format_table(est, board)
    return out


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def render_markdown(rep: dict) -> str:
    lines = [f"# fpgadl report: {rep['recipe']}", ""]
    if rep.get("description"):
        lines += [rep["description"], ""]
    lines += [
        f"- board: **{rep['board']}** (part `{rep['part']}`, clock {rep['clock_period_ns']} ns"
        + (f" = {1000 / rep['clock_period_ns']:.0f} MHz)" if rep.get("clock_period_ns") else ")"),
        f"- FPGA input port type: `{rep['input_type']}`",
        f"- result: **{'PASS' if rep['passed'] else 'FAIL'}**",
        "",
        f"## {rep['metric']} on the test split, per stage",
        "",
        "| stage | " + rep["metric"] + " | samples | samples/s |",
        "|---|---|---|---|",
    ]
    for e, m in rep["metrics"].items():
        lines.append(f"| {LABELS.get(e, e)} | {_fmt(m['value'])} | {m['n']} | {_fmt(m.get('samples_per_second'))} |")
    lines += [
        "",
        "## Bit-identical outputs between stages",
        "",
        "| stages | identical samples | identical values | max abs diff | argmax agreement |",
        "|---|---|---|---|---|",
    ]
    for pair, c in rep["comparisons"].items():
        a, b = pair.split("|")
        lines.append(
            f"| {LABELS.get(a, a)} vs {LABELS.get(b, b)} | {c['identical_samples']:.2%} | "
            f"{c['identical_values']:.2%} | {c['max_abs_diff']:.3g} | {_fmt(c['argmax_agreement'])} |"
        )
    if rep["exact_expected"]:
        lines += ["", "All quantizer scales are powers of two: every stage is expected to be bit-exact."]
    else:
        lines += [
            "",
            "Not every stage can be bit-exact; the deviation above is measured, not claimed. "
            "Layers at fault: " + (", ".join(rep["inexact_layers"]) or "input (no power-of-two input quantizer)"),
        ]
    if (Path(rep.get("run_dir", ".")) / "samples.png").is_file():
        lines += ["", "## Generated samples (emulated FPGA, test latents)", "", "![samples](samples.png)"]
    if rep.get("extra"):
        lines += ["", f"## {rep['extra']['title']}", "", *rep["extra"]["markdown"]]
    if rep["warnings"]:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in rep["warnings"]]
    lines += ["", "## Checks", ""]
    lines += [f"- {'PASS' if c['passed'] else 'FAIL'}: {c['name']} — {c['detail']}" for c in rep["checks"]]
    lines += ["", "## Wall time per stage", "", "| stage | status | seconds |", "|---|---|---|"]
    for s, v in rep["stages"].items():
        lines.append(f"| {s} | {v['status']} | {_fmt(v['seconds'])} |")
    est = rep.get("estimate")
    if est and "markdown" in est:
        lines += ["", "## Resource and latency estimate", "", est["markdown"]]
    elif est and "error" in est:
        lines += ["", "## Resource and latency estimate", "", f"unavailable: {est['error']}"]
    return "\n".join(lines) + "\n"
