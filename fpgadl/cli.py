"""The `fpgadl` command line: parses, calls `fpgadl.api`, formats. Nothing else lives here.

Errors are one line on stderr (exit 2 bad input, 1 a failed check); `--debug` shows the traceback.
`--json` prints a machine-readable summary on stdout; progress goes to stderr.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fpgadl.core.errors import FpgadlError, UsageError
from fpgadl.core.options import DEFAULT_BOARD, ENGINES, RUN_ENGINES, STRATEGIES, STRESS_SAMPLES

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Quantize, convert and verify neural networks for FPGAs (Brevitas -> ONNX -> hls4ml).",
)
err = Console(stderr=True)
stdout = Console()

JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable summary on stdout")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="show tracebacks")]
QuietOpt = Annotated[bool, typer.Option("-q", "--quiet", help="no progress output")]
VerboseOpt = Annotated[bool, typer.Option("-v", "--verbose", help="show library warnings")]


class _Ui:
    """Progress on stderr for stages and epochs (Rich), silent under --json/-q."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.progress = None
        self.task = None

    def warn(self, msg: str) -> None:
        err.print(f"[yellow]{msg}[/yellow]", highlight=False)

    def stage(self, name: str, event: str, info: dict) -> None:
        if event == "start" and name == "train" and not self.quiet:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(
                TextColumn("  train"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
                console=err,
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task("train", total=None, info="")
        if event in ("done", "fail") and self.progress is not None:
            self.progress.stop()
            self.progress = None
        if self.quiet:
            return
        if event == "start":
            err.print(f"[cyan]▶ {name}[/cyan]", highlight=False)
        elif event == "skip":
            err.print(f"[dim]↷ {name}: unchanged, skipped[/dim]", highlight=False)
        elif event == "done":
            err.print(f"[green]✓ {name}[/green] {info['seconds']:.1f} s", highlight=False)
        elif event == "fail":
            err.print(f"[red]✗ {name}[/red] {info.get('error', '')}", highlight=False)

    def epoch(self, epoch: int, epochs: int, info: dict) -> None:
        if self.progress is not None:
            self.progress.update(
                self.task,
                total=epochs,
                completed=epoch,
                info=f"loss {info['loss']:.4f} val {info['val']:.4f}",
            )


def _setup(verbose: bool) -> None:
    if not verbose:
        warnings.filterwarnings("ignore")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _emit(as_json: bool, data) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


@app.command()
def run(
    recipe: Annotated[str, typer.Argument(help="recipe name in quantize/ or a .yaml path")] = "mlp-digits",
    board: Annotated[str | None, typer.Option(help="board name (see `fpgadl boards`)")] = None,
    out: Annotated[Path | None, typer.Option(help="run directory (default build/<recipe>)")] = None,
    epochs: Annotated[int | None, typer.Option(min=0)] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    engine: Annotated[str, typer.Option(help=" | ".join(RUN_ENGINES))] = "both",
    stress: Annotated[
        int, typer.Option(min=0, help="generated inputs (in and far out of range) the two engines also compare on")
    ] = STRESS_SAMPLES,
    start: Annotated[str | None, typer.Option("--from", help="restart at this stage")] = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
):
    """Recipe -> trained QAT model -> ONNX -> verified HLS project -> emulation -> report."""
    _setup(verbose)
    ui = _Ui(quiet or as_json)
    from fpgadl import api

    rep = api.run(
        recipe,
        out=out,
        board=board,
        epochs=epochs,
        seed=seed,
        engine=engine,
        stress=stress,
        start=start,
        progress=ui.epoch,
        reporter=ui.stage,
        warn=ui.warn,
    )
    _emit(as_json, rep)
    if not as_json:
        _print_summary(rep, out or Path("build") / rep["recipe"])
    raise typer.Exit(0 if rep["passed"] else 1)


def _print_summary(rep: dict, run_dir: Path) -> None:
    for e, m in rep["metrics"].items():
        stdout.print(f"{e:>12}: {rep['metric']} {m['value']:.4f}", highlight=False, soft_wrap=True)
    for c in rep["checks"]:
        stdout.print(
            f"{'PASS' if c['passed'] else 'FAIL'}  {c['name']} ({c['detail']})", highlight=False, soft_wrap=True
        )
    stdout.print(f"report: {run_dir / 'report.md'}", highlight=False, soft_wrap=True)


@app.command()
def quantize(
    recipe: Annotated[str, typer.Argument(help="recipe name in quantize/ or a .yaml path")],
    out: Annotated[Path | None, typer.Option()] = None,
    epochs: Annotated[int | None, typer.Option(min=0)] = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
):
    """Train (QAT), export QONNX + QCDQ ONNX, and verify with onnxruntime."""
    _setup(verbose)
    ui = _Ui(quiet or as_json)
    from fpgadl import api

    result = api.quantize(recipe, out=out, epochs=epochs, progress=ui.epoch, reporter=ui.stage, warn=ui.warn)
    _emit(as_json, result)
    if not as_json:
        for e, m in result["metrics"].items():
            stdout.print(f"{e:>12}: {m['metric']} {m['value']:.4f}", highlight=False)
        same = result["torch|onnxruntime"]
        stdout.print(
            f"torch vs onnxruntime: {same['identical_values']:.2%} identical values, "
            f"max |diff| {same['max_abs_diff']:.3g}; files in {result['out']}",
            highlight=False,
        )


@app.command()
def hls(
    model: Annotated[Path, typer.Argument(help="QONNX file from brevitas.export.export_qonnx")],
    board: Annotated[str, typer.Option(help="board name (see `fpgadl boards`)")] = DEFAULT_BOARD,
    part: Annotated[str | None, typer.Option(help="FPGA part, instead of a board")] = None,
    out: Annotated[Path | None, typer.Option(help="project directory")] = None,
    io: Annotated[str, typer.Option(help="parallel | stream")] = "parallel",
    reuse: Annotated[int, typer.Option(help="reuse factor")] = 1,
    strategy: Annotated[str, typer.Option(help=" | ".join(STRATEGIES))] = "latency",
    resources: Annotated[str | None, typer.Option(help="with --part: lut=N,ff=N,dsp=N,bram18k=N[,uram=N]")] = None,
    fit: Annotated[bool, typer.Option("--fit", help="choose reuse factors/strategies to fit the board")] = False,
    ceiling: Annotated[float, typer.Option(help="utilization ceiling for --fit")] = 0.8,
    target_latency: Annotated[int | None, typer.Option(help="latency target in cycles for --fit")] = None,
    target_ii: Annotated[int | None, typer.Option(help="initiation interval target for --fit")] = None,
    synth: Annotated[bool, typer.Option("--synth", help="run vendor HLS synthesis (needs vitis_hls)")] = False,
    cosim: Annotated[
        bool, typer.Option("--cosim", help="with --synth: RTL co-simulation, checked against the fast engine")
    ] = False,
    sample: Annotated[Path | None, typer.Option("--sample", help=".npy inputs the exactness probe adds")] = None,
    expect: Annotated[
        Path | None, typer.Option("--expect", help=".npy: your model's outputs on --sample (torch), checked exactly")
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="exit 1 if the probe finds any difference")] = False,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
):
    """Convert a user's QONNX model into a complete hls4ml project that `fpgadl emulate` can run."""
    _setup(verbose)
    ui = _Ui(quiet or as_json)
    from dataclasses import asdict

    from fpgadl import api

    io_type = {"parallel": "io_parallel", "stream": "io_stream"}.get(io, io)
    meta = api.hls(
        model,
        out=out,
        board=board,
        part=part,
        io_type=io_type,
        reuse_factor=reuse,
        strategy=strategy,
        part_resources=_parse_resources(resources),
        fit=fit,
        ceiling=ceiling,
        target_latency_cycles=target_latency,
        target_ii=target_ii,
        synth=synth,
        cosim=cosim,
        sample=api.load_array(sample, "--sample") if sample else None,
        expect=api.load_array(expect, "--expect") if expect else None,
        strict=strict,
        warn=ui.warn,
    )
    project = out or Path("build") / f"{model.name.split('.')[0]}-hls"
    summary = {k: v for k, v in asdict(meta).items() if k not in ("hls_config", "quant_nodes")}
    summary["project"] = str(project)
    _emit(as_json, summary)
    if not as_json:
        out_msg = f"project: {project}  (part {meta.part}, input port {meta.input_type})"
        stdout.print(out_msg, highlight=False)
        stdout.print(api.verdict_line(meta), highlight=False)


def _parse_resources(text: str | None) -> dict[str, int]:
    if not text:
        return {}
    out_: dict[str, int] = {}
    for item in text.split(","):
        key, _, value = item.partition("=")
        if not value.strip().isdigit():
            raise UsageError(
                f"--resources {item!r}: expected NAME=INTEGER, e.g. lut=53200,ff=106400,dsp=220,bram18k=280"
            )
        out_[key.strip().lower()] = int(value)
    return out_


@app.command()
def emulate(
    project: Annotated[Path, typer.Argument(help="project directory from `fpgadl hls` (or a run directory)")],
    input: Annotated[Path, typer.Option("--input", help=".npy float array in the ONNX model's layout")],
    output: Annotated[Path | None, typer.Option("--output", help="write predictions to this .npy")] = None,
    labels: Annotated[Path | None, typer.Option("--labels", help=".npy of integer labels: print accuracy")] = None,
    engine: Annotated[str, typer.Option(help=" | ".join(ENGINES))] = "fast",
    trace: Annotated[Path | None, typer.Option("--trace", help="write every layer's output to this folder")] = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
):
    """Run inputs through the emulated FPGA: `fast` (numpy twin), `csim` (hls4ml C simulation) or
    `verilator` (the `fpgadl rtl` Verilog, simulated)."""
    _setup(verbose)
    import numpy as np

    from fpgadl import api
    from fpgadl.core.artifacts import write_npy

    x = api.load_array(input, "--input")
    y = api.emulate(project, x, engine=engine, trace_dir=trace)
    summary = {"engine": engine, "samples": len(y), "output_shape": list(y.shape)}
    if output:
        write_npy(output, y)
        summary["output"] = str(output)
    if labels:
        lab = api.load_array(labels, "--labels")
        if lab.shape != (len(y),):
            raise UsageError(f"--labels: shape {lab.shape} does not match {len(y)} predictions; valid: ({len(y)},)")
        summary["accuracy"] = float(np.mean(y.reshape(len(y), -1).argmax(1) == lab))
    _emit(as_json, summary)
    if not as_json:
        stdout.print(" ".join(f"{k}={v}" for k, v in summary.items()), highlight=False)


@app.command()
def rtl(
    path: Annotated[Path, typer.Argument(help="project directory from `fpgadl hls` (or a run directory)")],
    clock: Annotated[float | None, typer.Option("--clock", help="clock period in ns (default: the project's)")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="RTL directory (default RUN/rtl or DIR-rtl)")] = None,
    cosim: Annotated[bool, typer.Option("--cosim/--no-cosim", help="Verilator vs fast engine, bit for bit")] = True,
    synth: Annotated[bool, typer.Option("--synth", help="Yosys synth_xilinx: LUT/FF/CARRY/DSP/BRAM counts")] = False,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
    verbose: VerboseOpt = False,
):
    """Verilog via da4ml, co-simulated with Verilator against the fast engine (exit 1 if it differs)."""
    _setup(verbose)
    from fpgadl import api

    info = api.rtl(path, out=out, clock_ns=clock, cosim=cosim, synth=synth)
    _emit(as_json, info)
    if as_json:
        return
    est = info["da4ml_estimate"]
    stdout.print(
        f"verilog: {info['stages']} stages at {info['clock_period_ns']} ns, da4ml estimate "
        f"{est['lut']} LUT / {est['ff']} FF",
        highlight=False,
    )
    if "cosim" in info:
        c = info["cosim"]
        stdout.print(f"co-simulation: verilator == fast on {c['samples']} inputs", highlight=False)
    if "yosys" in info:
        y = info["yosys"]
        stdout.print(
            f"yosys ({y['family']}): {y['lut']} LUT, {y['ff']} FF, {y['carry']} CARRY, {y['dsp']} DSP, "
            f"{y['bram18k'] + 2 * y['bram36k']} BRAM18K, longest path {y['logic_levels']} cells",
            highlight=False,
        )
        a = info["analytic_estimate"]
        stdout.print(f"analytic HLS estimate: {a['lut']} LUT, {a['ff']} FF, {a['dsp']} DSP", highlight=False)


@app.command()
def diff(
    path: Annotated[Path, typer.Argument(help="run directory or project directory")],
    input: Annotated[Path | None, typer.Option("--input", help=".npy inputs (default: the run's test split)")] = None,
    samples: Annotated[int, typer.Option(min=1, help="compare on at most this many inputs")] = 64,
    against: Annotated[str, typer.Option(help="all | csim (fast vs csim) | qonnx (QONNX reference vs fast)")] = "all",
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
    verbose: VerboseOpt = False,
):
    """Name the first layer where two executions diverge, and by how much (exit 1 if an exact pair differs)."""
    _setup(verbose)
    from fpgadl import api

    x = api.load_array(input, "--input") if input else None
    results = api.diff(path, x, samples=samples, against=against)
    _emit(as_json, results)
    failed = False
    for r in results:
        verdict = (
            "identical at every layer"
            if r["first_divergent"] is None
            else (f"first diverges at layer {r['first_divergent']} (max |diff| {r['max_abs_diff']:.6g})")
        )
        if not as_json:
            stdout.print(
                f"{r['left']} vs {r['right']}: {verdict}" + ("" if r["expected_exact"] else " [not expected exact]"),
                highlight=False,
            )
            for d in r["layers"]:
                stdout.print(
                    f"  {d['layer']:<28} identical {d['identical_values']:.2%}  max |diff| {d['max_abs_diff']:.6g}",
                    highlight=False,
                )
        failed |= r["expected_exact"] and r["first_divergent"] is not None
    raise typer.Exit(1 if failed else 0)


@app.command()
def package(
    path: Annotated[Path, typer.Argument(help="project directory from `fpgadl hls` (or a run directory)")],
    board: Annotated[str, typer.Option(help="a board an accelerator backend supports (pynq-z2, zcu102, alveo-*)")],
    out: Annotated[Path, typer.Option(help="bundle directory to write")],
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
    verbose: VerboseOpt = False,
):
    """Write a deployable bundle: accelerator project, I/O manifest, vendor build script, host driver."""
    _setup(verbose)
    from fpgadl import api

    manifest = api.package(path, board=board, out=out)
    _emit(as_json, manifest)
    if not as_json:
        i, o = manifest["ports"]["in"], manifest["ports"]["out"]
        stdout.print(
            f"bundle {out}: {manifest['backend']} {manifest['interface']} on {manifest['board']}; "
            f"in {i['elements']} x {i['word_bits']}-bit words ({i['type']}), "
            f"out {o['elements']} x {o['word_bits']}-bit words ({o['type']})",
            highlight=False,
        )


@app.command()
def boards(as_json: JsonOpt = False, debug: DebugOpt = False):
    """List the boards in boards/."""
    from rich.table import Table

    from fpgadl import api

    rows = api.boards()
    if as_json:
        _emit(True, [b.model_dump(mode="json") for b in rows])
        return
    t = Table("board", "part", "family", "clock MHz", "LUT", "FF", "DSP", "BRAM18K", "URAM")
    for b in rows:
        r = b.resources
        t.add_row(
            b.name,
            b.part,
            b.family,
            f"{b.clock_mhz:.0f}",
            *(str(v) for v in (r.lut, r.ff, r.dsp, r.bram18k, r.uram)),
        )
    Console(width=max(stdout.width, 120)).print(t)


@app.command()
def zoo(as_json: JsonOpt = False, debug: DebugOpt = False):
    """List the model zoo's recipes."""
    from rich.table import Table

    from fpgadl import api

    rows = api.zoo()
    if as_json:
        _emit(True, rows)
        return
    t = Table("recipe", "family", "dataset", "bits in/w/act", "metric", "identical outputs")
    for r in rows:
        b = r["bits"]
        t.add_row(
            r["recipe"],
            r["family"],
            r["dataset"],
            f"{b['input']}/{b['weight']}/{b['act']}",
            r["metric"],
            " = ".join(r["bit_exact"]),
        )
    Console(width=max(stdout.width, 110)).print(t)


def main() -> None:
    debug = "--debug" in sys.argv
    try:
        # Outside standalone mode, typer returns a command's typer.Exit code instead of exiting.
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except FpgadlError as e:
        if debug:
            raise
        err.print(f"error: {e}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err.print("interrupted; finished stages' artifacts are kept", highlight=False)
        sys.exit(130)
    except Exception as e:
        if hasattr(e, "format_message") and hasattr(e, "exit_code"):  # typer's (click's) usage errors: exit 2
            if debug:
                raise
            ctx = getattr(e, "ctx", None)
            see = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            err.print(f"error: {e.format_message()}{see}", highlight=False, markup=False, soft_wrap=True)
            sys.exit(e.exit_code)
        if debug:
            raise
        err.print(
            f"error: internal: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} "
            "(re-run with --debug for the traceback)",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
