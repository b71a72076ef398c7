"""The Python API: every CLI command is a thin wrapper over one function here.

Inputs are validated at this boundary (recipes, boards, arrays, ONNX files); the modules behind it trust
what they are given.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from fpgadl.core.errors import UsageError
from fpgadl.flow.pipeline import STAGES, RunConfig, RunDir, run_stages
from fpgadl.ml.recipes import DEFAULT_RECIPE, load_recipe

QUANTIZE_STAGES = ("train", "export", "verify")


def _recipe(recipe: str, epochs: int | None, seed: int | None, overrides: dict | None = None):
    return load_recipe(recipe, **{**(overrides or {}), "train.epochs": epochs, "train.seed": seed})


def run(
    recipe: str = DEFAULT_RECIPE,
    *,
    out: Path | None = None,
    board: str | None = None,
    epochs: int | None = None,
    seed: int | None = None,
    engine: str = "both",
    start: str | None = None,
    stages: tuple[str, ...] = STAGES,
    progress: Callable | None = None,
    reporter: Callable | None = None,
    warn: Callable[[str], None] = print,
    overrides: dict | None = None,
) -> dict:
    """Run the recipe's pipeline into `out` (default build/<recipe>); returns report.json's content
    (or the manifest when the report stage is not among `stages`). `overrides` sets recipe fields by
    dotted key, e.g. {"dataset.subset": 600}."""
    from fpgadl.core.boards import load_board
    from fpgadl.flow.stages import STAGE_LIST

    if engine not in ("fast", "csim", "both"):
        raise UsageError(f"--engine {engine!r}: valid: fast, csim, both")
    r = _recipe(recipe, epochs, seed, overrides)
    load_board(board or r.board)  # fail early, with the valid names, on an unknown board
    run_dir = RunDir(out or Path("build") / r.name)
    cfg = RunConfig(recipe=r, out=run_dir.path, engine=engine, board=board, progress=progress, warn=warn)
    import yaml

    from fpgadl.core.artifacts import write_text

    write_text(run_dir / "recipe.yaml", yaml.safe_dump(r.model_dump(mode="json"), sort_keys=False))
    chosen = [s for s in STAGE_LIST if s.name in stages]
    manifest = run_stages(run_dir, cfg, chosen, start=start, reporter=reporter)
    if "report" in stages:
        return run_dir.read_json("report.json")
    return manifest


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
    board: str = "pynq-z2",
    part: str | None = None,
    io_type: str = "io_parallel",
    reuse_factor: int = 1,
    strategy: str = "latency",
    clock_period_ns: float | None = None,
    resources: dict[str, int] | None = None,
    fit: bool = False,
    ceiling: float = 0.8,
    target_latency_cycles: int | None = None,
    target_ii: int | None = None,
    synth: bool = False,
    sample: np.ndarray | None = None,
    strict: bool = False,
    warn: Callable[[str], None] = print,
):
    """Convert a user's QONNX file (from Brevitas' export_qonnx) into a complete hls4ml project in `out`.

    `fit` chooses per-layer reuse factor and strategy to meet the targets within `ceiling` of every
    resource; `synth` runs the vendor's HLS synthesis (vitis_hls / vivado_hls must be on PATH)."""
    from fpgadl.hls.convert import ConvertOptions, convert

    if io_type not in ("io_parallel", "io_stream"):
        raise UsageError(f"--io {io_type!r}: valid: parallel, stream")
    if strategy not in ("latency", "resource"):
        raise UsageError(f"--strategy {strategy!r}: valid: latency, resource")
    if reuse_factor < 1:
        raise UsageError(f"--reuse {reuse_factor}: must be a positive integer")
    model = Path(model)
    out = Path(out) if out else Path("build") / f"{model.name.split('.')[0]}-hls"
    if not 0 < ceiling <= 1:
        raise UsageError(f"--ceiling {ceiling}: must be in (0, 1]")
    vendor = _which_vendor_tool()
    opts = ConvertOptions(
        board=board,
        part=part,
        part_resources=resources or {},
        io_type=io_type,
        reuse_factor=reuse_factor,
        strategy=strategy,
        clock_period_ns=clock_period_ns,
        fit=fit,
        ceiling=ceiling,
        target_latency_cycles=target_latency_cycles,
        target_ii=target_ii,
        backend="Vivado" if vendor == "vivado_hls" else "Vitis",
    )
    meta = convert(model, out, opts, warn=warn)
    meta = _probe(out, meta, sample, strict, warn)
    if synth:
        synthesize(out)
    return meta


def _probe(out: Path, meta, sample: np.ndarray | None, strict: bool, warn: Callable[[str], None]):
    """Measure exactness against the QONNX reference (fpgadl.hls.probe); --strict fails on a mismatch."""
    from fpgadl.core.errors import CheckFailed
    from fpgadl.hls.probe import record_probe, summary_line

    if meta.frontend != "onnx":
        return meta
    meta = record_probe(out, sample)
    p = meta.probe
    if p["identical_rows"] != p["rows"]:
        warn(f"warning: the firmware differs from the QONNX reference: {summary_line(meta)}")
        if strict:
            raise CheckFailed(
                f"{out}: not exact: {p['rows'] - p['identical_rows']} of {p['rows']} probe rows differ from the "
                f"QONNX reference (max |diff| {p['max_abs_diff']:.3g}, first at layer {p['first_divergent_layer']})"
            )
    return meta


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


def synthesize(project: Path) -> dict:
    """Run the vendor's C synthesis through hls4ml; returns hls4ml's parsed report."""
    from fpgadl.hls.project import load_project

    vendor_tool(project)
    hls_model, _ = load_project(project_dir(project))
    return hls_model.build(csim=False, synth=True, export=False)


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
    from fpgadl.flow.diff import engines_diff, qonnx_diff
    from fpgadl.hls.engines import check_input
    from fpgadl.hls.project import ProjectMeta

    hls_dir = project_dir(path)
    meta = ProjectMeta.load(hls_dir)
    if x is None:
        test = hls_dir.parent / "data" / "x_test.npy"
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
    """Every recipe with its family, dataset, bit widths and which stages are expected bit-exact."""
    from fpgadl.ml.recipes import available_recipes

    rows = []
    for name in available_recipes():
        r = load_recipe(name)
        q = r.quant
        rows.append(
            {
                "recipe": name,
                "family": r.family,
                "dataset": r.dataset.name,
                "arch": r.model.arch,
                "metric": r.metric,
                "floor": r.floor,
                "board": r.board,
                "bits": {
                    "input": q.input_bits,
                    "weight": q.weight_bits,
                    "act": q.act_bits,
                    "bias": q.bias_bits,
                },
                "scaling": q.scaling,
                "bit_exact": _expected_exact(r),  # stages expected to give identical outputs
            }
        )
    return rows


# Modules whose firmware arithmetic cannot equal torch's: lookup-table activations, float BatchNorm
# constants, recurrent gates (tables too).
_INEXACT_MODULES = ("Sigmoid", "Tanh", "QuantSigmoid", "QuantTanh", "BatchNorm1d", "BatchNorm2d", "GRU", "LSTM", "RNN")


def _expected_exact(r) -> list[str]:
    """Stage pairs expected bit-exact, from the model the recipe builds (every run's report measures them)."""
    from fpgadl.ml.datasets import load_dataset
    from fpgadl.zoo import build_model

    data = load_dataset(r.dataset.name, subset=200, params=r.dataset.params)
    model = build_model(r.model.arch, r.model.params, r.quant, data.input_shape, data.n_out)
    kinds = {type(m).__name__ for m in model.modules()}
    if r.quant.scaling == "power_of_two" and not kinds & set(_INEXACT_MODULES):
        return ["torch", "onnxruntime", "csim", "fast"]
    return ["csim", "fast"]
