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

ENGINE_ORDER = ("torch", "onnxruntime", "csim", "fast", "verilator")
LABELS = {
    "torch": "QAT torch",
    "onnxruntime": "onnxruntime",
    "csim": "hls4ml csim",
    "fast": "fast emulator",
    "verilator": "Verilator (RTL)",
}
# Engines whose outputs must equal the fast engine's on every input (fpgadl's claim, whatever the model).
EQUAL_TO_FAST = ("csim", "verilator")


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


def _identical(name: str, c: dict) -> dict:
    """A check that two executions gave identical values on every sample of comparison `c`."""
    detail = f"{c['identical_samples']:.4%} identical samples, max |diff| {c['max_abs_diff']:.3g}"
    return {"name": name, "passed": c["identical_values"] == 1.0, "detail": detail}


def equality_checks(preds: dict, pairs: dict, exact_expected: bool, stress: dict | None) -> list[dict]:
    """fast == csim and fast == verilator always; every other pair where the scales promise exactness;
    the stress inputs' comparison of the emulate stage."""
    checks = [
        _identical(f"fast == {other} (always exact)", pairs.get(f"{other}|fast") or pairs[f"fast|{other}"])
        for other in EQUAL_TO_FAST
        if other in preds and "fast" in preds
    ]
    if exact_expected:
        for a, b in itertools.combinations([e for e in ("torch", "onnxruntime", "csim", "fast") if e in preds], 2):
            if {a, b} != {"csim", "fast"}:
                checks.append(_identical(f"{a} == {b} (power-of-two scales: exact)", pairs[f"{a}|{b}"]))
    if stress:
        name = f"fast == {stress['engines'][0]} on {stress['n']:,} stress inputs (up to 8x the input range)"
        checks.append(_identical(name, stress))
    return checks


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

    stress = _load(run / RunDir.STRESS) if cfg.stress_compared else None
    exact_expected = bool(meta.get("exact"))
    checks = equality_checks(preds, pairs, exact_expected, stress)
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
    try:
        estimate = _estimate(run, cfg)
    except EstimateError as e:  # a layer with no estimator rule: the report names it instead of a number
        estimate = {"error": str(e)}
    fit = fit_section(estimate, meta.get("board_spec", {}).get("resources", {}), _rtl_synthesis(run))
    board = meta.get("board", cfg.board_name)
    # Only the HLS design, the one `fpgadl package` deploys, is held to the board when the recipe asked for a
    # fitted design; the RTL verdict is information: its fully parallel Verilog ignores the fit's reuse factors.
    hls_fit = fit["hls"]
    if (cfg.fit or r.target is not None) and hls_fit["fits"] is not None:
        name = f"the HLS design fits {board} (by the {hls_fit['rests_on']})"
        checks.append({"name": name, "passed": hls_fit["fits"], "detail": hls_fit["detail"]})

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
        "fit": fit,
        "rtl": _load(run / RunDir.RTL_META),
        "extra": {"title": extra.title, "markdown": extra.markdown, "data": extra.data} if extra else None,
    }


def _rtl_synthesis(run: RunDir) -> dict | None:
    """Yosys' counts from RUN/rtl/rtl.json (`fpgadl rtl RUN --synth`), if traced from this very project."""
    from fpgadl.hls.project import project_hash

    rtl = _load(run / RunDir.RTL_META)
    if not rtl or "yosys" not in rtl or not (run / RunDir.HLS_META).is_file():
        return None
    return rtl["yosys"] if rtl.get("project_sha256") == project_hash(run / RunDir.HLS) else None


def yosys_usage(yosys: dict) -> dict[str, int]:
    """Board resources a Yosys netlist occupies: LUT sites (logic, LUT RAM, shift registers), FFs, DSPs,
    BRAM18K (a RAMB36 is two)."""
    return {
        "lut": yosys["lut"] + yosys.get("lutram", 0) + yosys.get("srl", 0),
        "ff": yosys["ff"],
        "dsp": yosys["dsp"],
        "bram18k": yosys["bram18k"] + 2 * yosys.get("bram36k", 0),
        "uram": 0,
    }


def fit_verdict(used: dict[str, int] | None, available: dict[str, int], rests_on: str, why_not: str = "") -> dict:
    """Does a design using `used` fit the board's `available` resources; `rests_on` names the number."""
    if used is None:
        return {"fits": None, "rests_on": None, "detail": f"not judged: {why_not}"}
    util = {k: used.get(k, 0) / n for k, n in available.items() if n}
    over = [k for k, n in available.items() if used.get(k, 0) > n]
    worst = max(util, key=util.get) if util else None
    detail = f"{worst.upper()} {used[worst]:,} of {available[worst]:,} ({util[worst]:.1%})" if worst else ""
    if over:
        detail = "over: " + ", ".join(f"{k.upper()} {used[k]:,} > {available[k]:,}" for k in over)
    return {"fits": not over, "rests_on": rests_on, "used": used, "utilization": util, "detail": detail}


def fit_section(estimate: dict | None, available: dict[str, int], yosys: dict | None) -> dict:
    """The fit verdicts, each naming the number it rests on. `hls`: the HLS design as converted (the fit's
    reuse factors included) by fpgadl's analytic estimate, the number the fit itself used: no vendor
    synthesis runs here. `rtl`: the da4ml Verilog of the same graph (fully parallel: reuse factors do not
    apply) by Yosys' counts, when `fpgadl rtl --synth` ran on this very project; else None."""
    total = (estimate or {}).get("total")
    why = (estimate or {}).get("error", "no estimate")
    return {
        "hls": fit_verdict(total, available, "analytic estimate", why),
        "rtl": fit_verdict(yosys_usage(yosys), available, "Yosys synthesis") if yosys else None,
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
    lines += _fit_markdown(rep)
    est = rep.get("estimate")
    if est and "markdown" in est:
        lines += ["", "## Resource and latency estimate", "", est["markdown"]]
    elif est and "error" in est:
        lines += ["", "## Resource and latency estimate", "", f"unavailable: {est['error']}"]
    return "\n".join(lines) + "\n"


def _fit_markdown(rep: dict) -> list[str]:
    fit = rep.get("fit")
    if not fit:
        return []
    hls, rtl = fit["hls"], fit["rtl"]
    lines = ["", "## Fits the board?", ""]
    if hls["fits"] is None:
        lines.append(f"- HLS design: {hls['detail']}.")
    else:
        lines.append(
            f"- HLS design (as converted, with the fit's reuse factors): **{'yes' if hls['fits'] else 'no'}** "
            f"({hls['detail']}); rests on the **analytic estimate** (no vendor synthesis runs here)."
        )
    if rtl is None:
        lines.append(
            "- RTL design: not synthesized (`fpgadl rtl RUN --synth` adds Yosys' counts); the fit verdict rests "
            "on the analytic estimate alone."
        )
        return lines
    y, da = rep["rtl"]["yosys"], rep["rtl"]["da4ml_estimate"]
    lines.append(
        f"- RTL design (`fpgadl rtl`: da4ml Verilog of the same graph, fully parallel): "
        f"**{'yes' if rtl['fits'] else 'no'}** ({rtl['detail']}); rests on **Yosys synthesis** "
        f"(`synth_xilinx -family {y['family']}`: {y['lut']} LUT, {y['ff']} FF, {y['carry']} CARRY, {y['dsp']} DSP, "
        f"{y['bram18k']} BRAM18K, {y['logic_levels']} logic levels; da4ml's estimate {da['lut']} LUT / {da['ff']} FF). "
        "Information only: the HLS design above is the one deployed and judged."
    )
    return lines
