"""The Python API: every CLI command is a thin wrapper over one function here.

Inputs are validated at this boundary (recipes, boards, arrays, ONNX files); the modules behind it trust
what they are given.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from fpgadl.core.errors import UsageError
from fpgadl.core.options import DEFAULT_RECIPE, RUN_ENGINES, STRESS_SAMPLES
from fpgadl.flow.pipeline import RunConfig, RunDir, run_stages
from fpgadl.ml.recipes import load_recipe

QUANTIZE_STAGES = ("train", "export", "verify")


def _recipe(recipe: str, epochs: int | None, seed: int | None, overrides: dict | None = None):
    # epochs/seed given as arguments win over `overrides`; left at None they must not erase an override.
    given = {k: v for k, v in {"train.epochs": epochs, "train.seed": seed}.items() if v is not None}
    return load_recipe(recipe, **{**(overrides or {}), **given})


def run(
    recipe: str = DEFAULT_RECIPE,
    *,
    out: Path | None = None,
    board: str | None = None,
    epochs: int | None = None,
    seed: int | None = None,
    engine: str = "both",
    stress: int = STRESS_SAMPLES,
    start: str | None = None,
    stages: tuple[str, ...] | None = None,
    progress: Callable | None = None,
    reporter: Callable | None = None,
    warn: Callable[[str], None] = print,
    overrides: dict | None = None,
) -> dict:
    """Run the recipe's pipeline into `out` (default build/<recipe>); returns report.json's content
    (or the manifest when the report stage is not among `stages`). `overrides` sets recipe fields by
    dotted key, e.g. {"dataset.subset": 600}. `stress`: generated inputs on which the two engines are also
    compared (0: the test split only)."""
    from fpgadl.core.boards import load_board

    if engine not in RUN_ENGINES:
        raise UsageError(f"--engine {engine!r}: valid: {', '.join(RUN_ENGINES)}")
    r = _recipe(recipe, epochs, seed, overrides)
    load_board(board or r.board)  # fail early, with the valid names, on an unknown board
    if engine == "verilator":
        _check_rtl_capable(r)
    run_dir = RunDir(out or Path("build") / r.name)
    if stress < 0:
        raise UsageError(f"--stress {stress}: the number of stress inputs must be 0 (none) or more")
    cfg = RunConfig(recipe=r, engine=engine, board=board, stress=stress, progress=progress, warn=warn)
    # after the checks above: torch and Brevitas take seconds to import, a mistyped name should not wait
    import yaml

    import fpgadl.zoo  # noqa: F401  (registers the zoo's builders, trainers and metrics)
    from fpgadl.core.artifacts import write_text
    from fpgadl.flow.stages import STAGE_LIST

    write_text(run_dir / RunDir.RECIPE, yaml.safe_dump(r.model_dump(mode="json"), sort_keys=False))
    chosen = [s for s in STAGE_LIST if stages is None or s.name in stages]
    manifest = run_stages(run_dir, cfg, chosen, start=start, reporter=reporter)
    if stages is None or "report" in stages:
        return run_dir.read_json(RunDir.REPORT_JSON)
    return manifest


def _check_rtl_capable(r) -> None:
    """Refuse, before training, a recipe whose layers the RTL tracer cannot take; load the engine."""
    import fpgadl.rtl.engine  # noqa: F401  (registers the verilator engine)
    from fpgadl.ml.catalog import rtl_refusal

    why = rtl_refusal(r.model.arch, r.model.params)
    if why:
        raise UsageError(
            f"--engine verilator: recipe {r.name} has {why}, which have no exact RTL form; valid engines for it: "
            "fast, csim, both"
        )


def quantize(recipe: str, *, out: Path | None = None, epochs: int | None = None, **kw) -> dict:
    """train + export + verify: the QAT model, its QONNX and QCDQ files, onnxruntime's check.

    Returns the manifest, both stages' metrics, and how many torch outputs onnxruntime reproduced."""
    import json

    from fpgadl.flow.report import compare

    name = load_recipe(recipe).name
    out = Path(out) if out else Path("build") / name
    manifest = run(recipe, out=out, epochs=epochs, stages=QUANTIZE_STAGES, **kw)
    metrics = {e: json.loads((out / f"metrics/{e}.json").read_text()) for e in ("torch", "onnxruntime")}
    same = compare(np.load(out / "predictions/torch.npy"), np.load(out / "predictions/onnxruntime.npy"))
    return {"out": str(out), "manifest": manifest, "metrics": metrics, "torch|onnxruntime": same}


def hls(
    model: Path,
    *,
    out: Path | None = None,
    synth: bool = False,
    cosim: bool = False,
    sample: np.ndarray | None = None,
    expect: np.ndarray | None = None,
    strict: bool = False,
    warn: Callable[[str], None] = print,
    **options: Any,
):
    """Convert a user's QONNX file (from Brevitas' export_qonnx) into a complete hls4ml project in `out`.

    `options` are fields of fpgadl.core.options.HlsOptions (board, part, part_resources, io_type,
    strategy, reuse_factor, clock_period_ns, fit, ceiling, target_latency_cycles, target_ii); `fit`
    chooses per-layer reuse factor and strategy to meet the targets within `ceiling` of every resource;
    `synth` runs the vendor's HLS synthesis (vitis_hls / vivado_hls must be on PATH). `sample` adds inputs to
    the exactness probe; `expect` (the model's own outputs on `sample`, from torch) makes the verdict a
    claim against the model, not only against the exported file."""
    from fpgadl.core.options import hls_options
    from fpgadl.hls.convert import convert
    from fpgadl.hls.probe import check_expect_rows

    backend = "Vivado" if _which_vendor_tool() == "vivado_hls" else "Vitis"
    opts = hls_options(**{"backend": backend, **options})
    model = Path(model)
    out = Path(out) if out else Path("build") / f"{model.name.split('.')[0]}-hls"
    if cosim and not synth:
        raise UsageError("--cosim needs --synth (co-simulation runs the synthesized RTL)")
    check_expect_rows(expect, sample)  # before the conversion's seconds
    meta = convert(model, out, opts, warn=warn)
    from fpgadl.flow.report_html import write_project_html
    from fpgadl.hls.engines import FastEngine
    from fpgadl.hls.testbench import generated_inputs, write_tb_data

    # one twin for the probe, the test bench data and the report: each hls4ml conversion costs seconds
    engine = FastEngine(out) if meta.frontend == "onnx" else None
    meta = _probe(out, meta, sample, expect, strict, warn, engine)
    x = generated_inputs(meta)
    write_tb_data(out, x, engine)  # the vendor test bench checks against the twin
    write_project_html(out, x, engine)
    if synth:
        synthesize(out, cosim=cosim)
    return meta


def verdict_line(meta) -> str:
    """One line: the project's exactness verdict and what the probe measured (fpgadl.hls.probe)."""
    from fpgadl.hls.probe import summary_line

    return summary_line(meta)


def _probe(out: Path, meta, sample, expect, strict: bool, warn: Callable[[str], None], engine=None):
    """Measure exactness against the QONNX reference and the user's expected outputs (fpgadl.hls.probe);
    --strict fails on a mismatch with either."""
    from fpgadl.core.errors import CheckFailed
    from fpgadl.hls.probe import record_probe, summary_line

    if meta.frontend != "onnx":
        return meta
    meta = record_probe(out, sample, engine, expect)
    p = meta.probe
    expected = p.get("expected") or {"rows": 0, "identical_rows": 0, "max_abs_diff": 0.0}
    if p["identical_rows"] != p["rows"]:
        warn(f"warning: the firmware differs from the QONNX reference: {summary_line(meta)}")
    if expected["identical_rows"] != expected["rows"]:
        warn(f"warning: the firmware differs from the --expect outputs: {summary_line(meta)}")
    if strict and p["identical_rows"] != p["rows"]:
        raise CheckFailed(
            f"{out}: not exact: {p['rows'] - p['identical_rows']} of {p['rows']} probe rows differ from the "
            f"QONNX reference (max |diff| {p['max_abs_diff']:.3g}, first at layer {p['first_divergent_layer']})"
        )
    if strict and expected["identical_rows"] != expected["rows"]:
        raise CheckFailed(
            f"{out}: not exact: {expected['rows'] - expected['identical_rows']} of {expected['rows']} --sample rows "
            f"differ from --expect (max |diff| {expected['max_abs_diff']:.3g}){_folded_hint(meta)}"
        )
    return meta


def _folded_hint(meta) -> str:
    return f"; the exporter folded {'; '.join(meta.folded_constants)}" if meta.folded_constants else ""


VENDOR_TOOLS = ("vitis_hls", "vivado_hls")


def _which_vendor_tool() -> str | None:
    import shutil

    return next((t for t in VENDOR_TOOLS if shutil.which(t)), None)


def vendor_tool(project: Path | None = None) -> str:
    """The vendor HLS tool on PATH, or a one-line error naming what is missing (exit 2)."""
    from fpgadl.core.errors import ToolUnavailable

    tool = _which_vendor_tool()
    if tool:
        return tool
    where = f"; the project is ready in {project}" if project else ""
    raise ToolUnavailable(f"--synth needs vitis_hls or vivado_hls on PATH; neither was found{where}")


def synthesize(project: Path, cosim: bool = False) -> dict:
    """Run the vendor's C synthesis (and RTL co-simulation: hls4ml's test bench compares every output with
    the fast engine's, tb_data/) through hls4ml; returns hls4ml's parsed report."""
    from fpgadl.hls.project import load_project

    vendor_tool(project)
    hls_model, _ = load_project(project_dir(project))
    return hls_model.build(csim=False, synth=True, cosim=cosim, export=False)


def project_dir(path: Path) -> Path:
    """A project written by `fpgadl hls`, or a run directory holding one in hls/."""
    path = Path(path)
    if (path / "fpgadl.json").is_file():
        return path
    if (path / "hls" / "fpgadl.json").is_file():
        return path / "hls"
    raise UsageError(
        f"{path}: not an fpgadl HLS project (no fpgadl.json); create one with `fpgadl hls` or `fpgadl run`"
    )


def package(path: Path, *, board: str, out: Path) -> dict:
    """Deployment bundle for a project (or run) on `board`: accelerator project, I/O manifest, vendor
    build script, host driver (fpgadl.runtime.bundle); returns the manifest."""
    from fpgadl.runtime.bundle import write_bundle

    return write_bundle(project_dir(path), board, Path(out))


def load_array(path: Path, what: str = "--input") -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{what} {path}: no such file")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise UsageError(f"{what} {path}: not a .npy array ({str(e).splitlines()[0]})") from e


def emulate(project: Path, x: np.ndarray, *, engine: str = "fast", trace_dir: Path | None = None) -> np.ndarray:
    """Run float inputs (ONNX layout) through the firmware's twin (`fast`) or hls4ml's C simulation.

    `trace_dir` receives every layer's output as <layer>.npy (firmware layout) plus layers.json."""
    from fpgadl.hls.engines import check_input, open_engine

    if engine == "verilator":
        import fpgadl.rtl.engine  # noqa: F401  (registers the engine)
    eng = open_engine(project_dir(project), engine, trace=trace_dir is not None)
    try:
        x = check_input(x, eng.meta)
        if trace_dir is None:
            return eng.predict(x)
        y, layers = eng.trace(x)
        _write_trace(Path(trace_dir), eng, layers)
        return y
    finally:
        eng.close()


def rtl(
    path: Path, *, out: Path | None = None, clock_ns: float | None = None, cosim: bool = True, synth: bool = False
) -> dict:
    """Verilog of a converted project via da4ml (default out: RUN/rtl), co-simulated with Verilator against
    the fast engine (CheckFailed if any output differs), and with `synth` Yosys' resource counts."""
    from fpgadl.rtl.flow import rtl as rtl_flow

    if clock_ns is not None and clock_ns <= 0:
        raise UsageError(f"--clock {clock_ns}: must be a positive number of nanoseconds")
    return rtl_flow(project_dir(path), out, clock_ns=clock_ns, cosim=cosim, synth=synth)


def _write_trace(trace_dir: Path, eng, layers: dict[str, np.ndarray]) -> None:
    from fpgadl.core.artifacts import write_json, write_npy

    index = []
    for layer in eng.hls_model.get_layers():
        if layer.name not in layers:
            continue
        write_npy(trace_dir / f"{layer.name}.npy", layers[layer.name])
        index.append(
            {
                "layer": layer.name,
                "class": layer.class_name,
                "shape": list(layers[layer.name].shape[1:]),
                "type": str(layer.get_output_variable().type.precision),
            }
        )
    write_json(trace_dir / "layers.json", {"engine": eng.name, "layers": index})


def diff(path: Path, x: np.ndarray | None = None, *, samples: int = 64, against: str = "all") -> list[dict]:
    """Compare executions layer by layer: fast vs csim, and the QONNX reference vs fast.

    Inputs: `x` if given, else the run's test split (data/x_test.npy), else uniform random values across
    twice the input port's range (so saturation runs)."""
    from fpgadl.hls.diff import engines_diff, qonnx_diff
    from fpgadl.hls.engines import check_input
    from fpgadl.hls.project import ProjectMeta

    hls_dir = project_dir(path)
    meta = ProjectMeta.load(hls_dir)
    if x is None:
        test = hls_dir.parent / RunDir.X_TEST
        if test.is_file():
            x = np.load(test)
        else:
            x = np.random.default_rng(0).uniform(-4, 4, size=(samples, *meta.input_shape_onnx)).astype(np.float32)
    x = check_input(x, meta)[:samples]
    if against not in ("all", "csim", "qonnx"):
        raise UsageError(f"--against {against!r}: valid: all, csim, qonnx")
    results = []
    if against in ("all", "csim"):
        results.append(engines_diff(hls_dir, x).to_dict() | {"expected_exact": True})
    if against in ("all", "qonnx"):
        results.append(qonnx_diff(hls_dir, x).to_dict() | {"expected_exact": meta.exact})
    return results


def boards():
    from fpgadl.core.boards import list_boards

    return list_boards()


def zoo() -> list[dict]:
    """Every recipe with its family, dataset, bit widths and which stages are expected bit-exact: read from
    the recipes and fpgadl.ml.catalog alone (no model is built; every run's report measures the claim)."""
    from fpgadl.ml.catalog import facts, inexact_reasons
    from fpgadl.ml.recipes import available_recipes

    rows = []
    for name in available_recipes():
        r = load_recipe(name)
        q = r.quant
        reasons = inexact_reasons(r.model.arch, r.model.params, q.scaling)
        rows.append(
            {
                "recipe": name,
                "family": r.family,
                "dataset": r.dataset.name,
                "arch": r.model.arch,
                "frontend": facts(r.model.arch).frontend,
                "metric": r.metric,
                "floor": r.floor,
                "board": r.board,
                "bits": {"input": q.input_bits, "weight": q.weight_bits, "act": q.act_bits, "bias": q.bias_bits},
                "scaling": q.scaling,
                # stages expected to give identical outputs, and why the others cannot
                "bit_exact": ["csim", "fast"] if reasons else ["torch", "onnxruntime", "csim", "fast"],
                "inexact_because": reasons,
            }
        )
    return rows
