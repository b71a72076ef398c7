"""report.html: the run report with plots, one self-contained file (inline SVG and base64 PNG, no network).

Beside report.md for every run, and in every `fpgadl hls` project: the metric per stage, the bit-identity
matrix between stages, the per-layer precision profile (each layer's weight and output value ranges drawn
against its fixed-point type's range and resolution, for the firmware actually generated, like hls4ml's
profiling), resource use per layer against the board, and the recipe's sample pictures. Each plot is a
<figure class="plot">; the browser test checks that every one rendered.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

from fpgadl.core.artifacts import write_text

PROFILE_SAMPLES = 256  # inputs traced for the activation ranges


def _figure_svg(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.index("<svg") :]  # drop the XML prolog and DOCTYPE: inline SVG in HTML


def _plot(title: str, body: str, caption: str = "") -> str:
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f'<section><h2>{html.escape(title)}</h2><figure class="plot">{body}{cap}</figure></section>'


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: smaller, selectable
    import matplotlib.pyplot as plt

    return plt


def metric_plot(rep: dict) -> str:
    from fpgadl.flow.report import LABELS

    plt = _pyplot()
    names = list(rep["metrics"])
    values = [rep["metrics"][e]["value"] for e in names]
    fig, ax = plt.subplots(figsize=(6, 2.6))
    bars = ax.barh([LABELS.get(e, e) for e in names], values, color="#4c78a8")
    ax.bar_label(bars, labels=[f"{v:.4f}" for v in values], padding=3)
    if rep.get("floor") is not None:
        ax.axvline(rep["floor"], color="#e45756", linestyle="--", label=f"floor {rep['floor']}")
        ax.legend(loc="lower right")
    ax.set_xlabel(rep["metric"])
    ax.invert_yaxis()
    return _plot(f"{rep['metric']} on the test split, per stage", _figure_svg(fig))


def identity_plot(rep: dict) -> str:
    """Matrix of the fraction of bit-identical output values between every pair of stages."""
    from fpgadl.flow.report import LABELS

    plt = _pyplot()
    stages = list(rep["metrics"])
    n = len(stages)
    mat = np.eye(n)
    for pair, c in rep["comparisons"].items():
        a, b = pair.split("|")
        if a in stages and b in stages:
            mat[stages.index(a), stages.index(b)] = mat[stages.index(b), stages.index(a)] = c["identical_values"]
    fig, ax = plt.subplots(figsize=(4.6, 3.8))
    im = ax.imshow(mat, vmin=0, vmax=1, cmap="viridis")
    labels = [LABELS.get(s, s) for s in stages]
    ax.set_xticks(range(n), labels, rotation=30, ha="right")
    ax.set_yticks(range(n), labels)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{mat[i, j]:.2%}", ha="center", va="center", color="w" if mat[i, j] < 0.6 else "k")
    fig.colorbar(im, ax=ax, label="identical output values")
    return _plot("Bit-identical outputs between stages", _figure_svg(fig))


def precision_profile(hls_dir: Path, x: np.ndarray, engine=None) -> str:
    """Per layer: |value| ranges of weights and outputs (boxes) against the type's range (line from the
    resolution 2^-frac to the largest magnitude), on a log2 axis."""
    from fpgadl.emulator.fixed import FixedType
    from fpgadl.hls.engines import FastEngine, check_input

    plt = _pyplot()
    eng = engine or FastEngine(hls_dir)
    _, traced = eng.trace(check_input(x[:PROFILE_SAMPLES], eng.meta))
    rows = []  # (label, values, type)
    for layer in eng.hls_model.get_layers():
        for wname, w in layer.weights.items():
            rows.append((f"{layer.name}.{wname}", np.asarray(w.data), w.type.precision))
        if layer.name in traced:
            rows.append((f"{layer.name} out", traced[layer.name], layer.get_output_variable().type.precision))
    fig, ax = plt.subplots(figsize=(7.5, 0.32 * len(rows) + 1.2))
    for i, (_, values, precision) in enumerate(rows):
        t = FixedType.from_hls4ml(precision)
        lo, hi = -t.frac, np.log2(max(abs(t.max_mantissa), abs(t.min_mantissa)) * 2.0**-t.frac)
        ax.plot([lo, hi], [i, i], color="#9d9d9d", linewidth=6, solid_capstyle="butt")
        nz = np.abs(values[values != 0]).astype(np.float64)
        if nz.size:
            q = np.log2(np.percentile(nz, [0, 25, 50, 75, 100]))
            ax.plot([q[0], q[4]], [i, i], color="#4c78a8", linewidth=1)
            ax.add_patch(plt.Rectangle((q[1], i - 0.3), q[3] - q[1], 0.6, color="#4c78a8"))
    ax.set_yticks(range(len(rows)), [r[0] for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("log2 |value|   (grey: the fixed-point type, resolution to largest magnitude; blue: values)")
    return _plot(
        "Per-layer precision profile", _figure_svg(fig), f"activations traced on {len(x[:PROFILE_SAMPLES])} inputs"
    )


def resource_plot(estimate: dict | None, board: dict) -> str:
    if estimate and "error" in estimate:
        reason = html.escape(estimate["error"])
        return f"<section><h2>Resources per layer against the board</h2><p>estimate unavailable: {reason}</p></section>"
    plt = _pyplot()
    if not estimate or "layers" not in estimate:
        return ""
    layers = [ly for ly in estimate["layers"] if any(ly[r] for r in ("lut", "ff", "dsp", "bram18k"))]
    avail = board.get("resources", {})
    kinds = [r for r in ("lut", "ff", "dsp", "bram18k") if avail.get(r)]
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(kinds) + 1.4))
    left = np.zeros(len(kinds))
    for ly in layers:
        share = np.array([ly[k] / avail[k] for k in kinds])
        ax.barh([k.upper() for k in kinds], share * 100, left=left * 100, label=ly["name"])
        left += share
    ax.axvline(100, color="#e45756", linestyle="--")
    ax.set_xlabel(f"% of {board.get('name', 'the board')}'s resources (estimate)")
    ax.legend(fontsize=7, loc="lower right")
    return _plot("Resources per layer against the board", _figure_svg(fig))


def _png(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def samples_section(run_dir: Path) -> str:
    """The recipe's pictures: the generator's sample grid, or an autoencoder's reconstructions."""
    if (run_dir / "samples.png").is_file():
        img = f'<img alt="generated samples" src="{_png(run_dir / "samples.png")}">'
        return _plot("Generated samples (emulated FPGA, test latents)", img)
    x_path, y_path = run_dir / "data/x_test.npy", run_dir / "predictions/fast.npy"
    if not (x_path.is_file() and y_path.is_file()):
        return ""
    x, y = np.load(x_path), np.load(y_path)
    side = int(round(np.sqrt(x[0].size)))
    if x.shape != y.shape or side * side != x[0].size or side < 4:
        return ""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 8, figsize=(8, 2.2))
    for j in range(8):
        for row, img in enumerate((x[j], y[j])):
            axes[row, j].imshow(img.reshape(side, side), cmap="gray")
            axes[row, j].axis("off")
    return _plot("Reconstructions (top: input, bottom: emulated FPGA)", _figure_svg(fig))


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}}
figure.plot{{margin:0}} figure.plot svg,figure.plot img{{max-width:100%;height:auto}}
table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:.2em .6em}}
.pass{{color:#2a7}} .fail{{color:#c33}}</style></head>
<body><h1>{title}</h1>{summary}{sections}</body></html>
"""


def render_run_html(rep: dict, run_dir: Path) -> str:
    checks = "".join(
        f'<li class="{"pass" if c["passed"] else "fail"}">{"PASS" if c["passed"] else "FAIL"}: '
        f"{html.escape(c['name'])} — {html.escape(c['detail'])}</li>"
        for c in rep["checks"]
    )
    summary = (
        f"<p>{html.escape(rep.get('description') or '')}</p><p>board <b>{html.escape(str(rep['board']))}</b> "
        f"(part <code>{html.escape(str(rep['part']))}</code>, clock {rep['clock_period_ns']} ns); input port "
        f"<code>{html.escape(str(rep['input_type']))}</code>; result "
        f"<b>{'PASS' if rep['passed'] else 'FAIL'}</b></p><ul>{checks}</ul>"
    )
    from fpgadl.hls.project import ProjectMeta

    meta = ProjectMeta.load(run_dir / "hls")
    sections = [metric_plot(rep), identity_plot(rep)]
    sections.append(precision_profile(run_dir / "hls", np.load(run_dir / "data/x_test.npy")))
    sections += [resource_plot(rep.get("estimate"), meta.board_spec), samples_section(run_dir)]
    return PAGE.format(
        title=f"fpgadl report: {html.escape(rep['recipe'])}", summary=summary, sections="".join(sections)
    )


def write_run_html(rep: dict, run_dir: Path) -> None:
    write_text(Path(run_dir) / "report.html", render_run_html(rep, Path(run_dir)))


def write_project_html(hls_dir: Path, x: np.ndarray, engine=None) -> None:
    """report.html of an `fpgadl hls` project: precision profile and resources (no stages to compare).
    `engine`: the project's fast engine, if already open (its hls4ml model is reused)."""
    from fpgadl.core.boards import Board
    from fpgadl.estimate import EstimateError
    from fpgadl.estimate import estimate as estimate_fn
    from fpgadl.hls.project import ProjectMeta, load_project

    hls_dir = Path(hls_dir)
    meta = ProjectMeta.load(hls_dir)
    board = Board.model_validate(meta.board_spec)
    try:
        hls_model = engine.hls_model if engine is not None else load_project(hls_dir)[0]
        est = estimate_fn(hls_model, board, clock_period_ns=meta.clock_period_ns).to_dict()
    except EstimateError as e:  # a layer with no estimator rule: the page names it instead of a plot
        est = {"error": str(e)}
    summary = (
        f"<p>board <b>{html.escape(meta.board)}</b> (part <code>{html.escape(meta.part)}</code>, clock "
        f"{meta.clock_period_ns} ns); input port <code>{html.escape(str(meta.input_type))}</code>; "
        f"bit-exact against the QONNX model: <b>{meta.exact}</b></p>"
    )
    sections = precision_profile(hls_dir, x, engine) + resource_plot(est, meta.board_spec)
    page = PAGE.format(title=f"fpgadl project: {html.escape(hls_dir.name)}", summary=summary, sections=sections)
    write_text(hls_dir / "report.html", page)
