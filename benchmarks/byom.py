"""Bring-your-own-model corpus table: every external model of tests/external/ through export_qonnx ->
`fpgadl hls` -> `fpgadl emulate` (fast on all generated inputs, csim on a subset) against torch.
Writes docs/byom.md (one row per model and export) and build/byom/results.json.

    PYTHONPATH=. .venv/bin/python benchmarks/byom.py [--only a,b] [--exports dynamo,ts] [--rows 2000]
        [--csim-rows 64] [--skip-tag lfc-big] [--out docs/byom.md] [--status FILE]

--csim-rows N runs csim on the first N rows of every input set (0: no csim); csim runs on one export
per model (the first in --exports that converted). A few models also go through the CLI (CLI_MODELS).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
import time
import warnings
from pathlib import Path

from tests.external.corpus import CORPUS
from tests.external.runner import FAILURES, Outcome, reclassify, run_entry
from tests.external.table import markdown_table, status_table, summary_counts

STATUS_INTRO = """How to use this (converter side): `git -C /work/wt-guarantee merge corpus`, then
  PYTHONPATH=. .venv/bin/python benchmarks/byom.py --only NAME[,NAME] --exports ts --rows 500 --csim-rows 0 \\
      --out /tmp/b.md --status /tmp/s.md
re-runs one model (a few seconds each with `ts`; the default dynamo export costs 10-50 s on the loaded machine).
Builders: tests/external/{bnn_pynq,tutorial,edge,thirdparty}.py; the list and the required class: corpus.py.
In Python: `from tests.external.corpus import BY_NAME; from tests.external.runner import run_entry;
run_entry(BY_NAME["mlp-float-bias"], "ts", Path("/tmp/w"), n=500)` returns the Outcome below.

Classes: exact / exact-except-float32 / twin-only / refused (FpgadlError exit 2) are fine where the
'required' column allows them; CLAIMS-EXACT-BUT-DIFFERS, FAST!=CSIM, internal-error are failures.
A UsageError that only wraps a library exception ("qonnx clean-up failed (IndexError: ...)") counts as
internal-error: it names nothing the user can change. `twin-only` means fpgadl.json says exact=false.

What the runner reads from fpgadl.json (tell me if you change it): `exact` (bool), `inexact_layers`
(list), and -- if you add them -- `verdict` ('exact' | 'exact-except-float32' | 'twin-only') and
`verdict_reason` (str). 'exact-except-float32' is accepted when >= 99.9% rows equal torch; claiming it
below that is counted as CLAIMS-EXACT-BUT-DIFFERS. 'first divergent layer' = api.diff(against='qonnx')
on up to 8 failing rows ("none vs qonnx" = the cleaned QONNX graph already differs from torch, e.g.
pre-processing dropped, or torch float32 sums)."""

# Also exported with a batch-4 example input (issue 9, item 5: a batch dimension other than 1).
BATCH4_MODELS = ("bnn_pynq-tfc-1w1a", "mlp-no-bias", "cnn-int16-bias")


def write_text(path: Path, text: str) -> None:
    """Write via a temporary name and rename (a reader never sees half a table); no fpgadl import, so the
    script works on either package layout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


CLI_MODELS = ("bnn_pynq-tfc-1w1a", "mlp-float-bias", "cnn-int16-bias", "pre-div255-cnn")


def _run_model(entry, exports, workdir, rows, csim_rows, log, cli: bool = True) -> list:
    outcomes, csim_done = [], csim_rows == 0
    if entry.name in BATCH4_MODELS:
        exports = [*exports, *(f"{v}-b4" for v in exports)]
    for variant in exports:
        if variant not in entry.exports and not variant.endswith("-b4"):
            continue
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            o = run_entry(entry, variant, workdir, n=rows, csim_rows=0 if csim_done else csim_rows)
        csim_done = csim_done or o.fast_csim is not None
        outcomes.append(o)
        log(
            f"{o.model:32s} {o.export:10s} {o.klass:26s} torch=fast {o.torch_fast}/{o.rows} "
            f"fast=csim {o.fast_csim}/{o.csim_rows} {o.seconds} {o.detail[:160]}"
        )
    if cli and entry.name in CLI_MODELS:
        with contextlib.redirect_stdout(io.StringIO()):
            o = run_entry(entry, exports[0], workdir, n=rows, csim_rows=min(csim_rows, 16), via="cli")
        outcomes.append(o)
        log(f"{o.model:32s} {o.export:10s} {o.klass:26s} torch=fast {o.torch_fast}/{o.rows} {o.detail[:160]}")
    return outcomes


def render(outcomes: list[Outcome], wall: float, note: str = "") -> str:
    sources = {e.name: e.source for e in CORPUS}
    counts = summary_counts(outcomes)
    bad = [o for o in outcomes if o.klass in FAILURES]
    csim = [o for o in outcomes if o.fast_csim is not None]
    csim_ok = sum(o.fast_csim == o.csim_rows for o in csim)
    rows = max((o.rows for o in outcomes), default=0)
    models = len({o.model for o in outcomes})
    return "\n".join(
        [
            "# Bring your own model: the external corpus",
            "",
            "Generated by `benchmarks/byom.py` (do not edit). Models: `tests/external/` (bnn_pynq, hls4ml's and",
            "FINN's Brevitas tests, tutorial-style compositions), random weights, randomised BatchNorm statistics.",
            "Each is exported with `export_qonnx` (`dynamo`: the default call; `ts`: `dynamo=False`; `-b4`: a",
            "batch-4 example input; `(CLI)`: `fpgadl hls` / `fpgadl emulate` in a subprocess), converted with",
            f"`fpgadl hls`, emulated by the fast engine on {rows} generated inputs (off the grid, exact ties, out",
            "of range, on the grid, typical) and compared with torch row by row; csim runs on a subset of every",
            "input set (column 'fast == csim'), for one export per model.",
            "",
            f"{models} models, {len(outcomes)} runs. Outcomes: {', '.join(f'{k} {v}' for k, v in counts.items())}.",
            f"Failures (claims exact but differs, fast != csim, internal error): **{len(bad)}**. "
            f"fast == csim on {csim_ok}/{len(csim)} runs where both engines ran."
            + (f" Wall time {wall / 60:.1f} min." if wall else ""),
            *([note, ""] if note else [""]),
            markdown_table(outcomes, sources),
            "",
        ]
    )


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="")
    ap.add_argument("--exports", default="dynamo,ts")
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--csim-rows", type=int, default=64)
    ap.add_argument("--skip-tag", default="")
    ap.add_argument("--out", type=Path, default=Path("docs/byom.md"))
    ap.add_argument("--json", type=Path, default=Path("build/byom/results.json"))
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--note", default="", help="a line for docs/byom.md (e.g. which fpgadl commit ran)")
    ap.add_argument("--no-cli", action="store_true", help="skip the CLI runs of CLI_MODELS")
    ap.add_argument("--status", type=Path, default=None, help="also write the team's status sheet here")
    ap.add_argument("--render", action="store_true", help="only re-render --out/--status from --json (or --merge)")
    ap.add_argument("--merge", type=Path, nargs="*", help="with --render: results files, later ones win per row")
    a = ap.parse_args(argv)
    if a.render:
        write_outputs(a, merged(a.merge or [a.json]), 0.0)
        return
    only = [n for n in a.only.split(",") if n]  # run in the order given
    skip = set(filter(None, a.skip_tag.split(",")))
    by_name = {e.name: e for e in CORPUS}
    unknown = [n for n in only if n not in by_name]
    if unknown:
        raise SystemExit(f"--only: unknown models {unknown}; valid: {', '.join(by_name)}")
    entries = [by_name[n] for n in only] if only else [e for e in CORPUS if not (e.tags & skip)]
    workdir = a.workdir or Path(tempfile.mkdtemp(prefix="byom-"))
    t0, outcomes = time.perf_counter(), []
    for entry in entries:
        outcomes += _run_model(entry, a.exports.split(","), workdir, a.rows, a.csim_rows, print, cli=not a.no_cli)
        write_text(a.json, json.dumps([o.to_dict() for o in outcomes], indent=1))  # partial results survive
        if a.status:
            write_text(a.status, status_text(outcomes))
    write_outputs(a, outcomes, time.perf_counter() - t0)
    print(f"wrote {a.out} ({len(outcomes)} rows) in {(time.perf_counter() - t0) / 60:.1f} min")


def merged(paths: list[Path]) -> list[Outcome]:
    """Outcomes of several runs (a fast pass, csim passes, ...): per (model, export) the last file's row wins."""
    rows: dict[tuple[str, str], dict] = {}
    for path in (p for p in paths if Path(p).is_file()):  # a pass still at its first model has no file yet
        for o in json.loads(Path(path).read_text()):
            rows[o["model"], o["export"]] = o
    order = {e.name: i for i, e in enumerate(CORPUS)}
    ordered = sorted(rows.values(), key=lambda o: (order.get(o["model"], len(order)), o["export"]))
    return [reclassify(Outcome(**o)) for o in ordered]


def write_outputs(a, outcomes, wall: float) -> None:
    write_text(a.out, render(outcomes, wall, a.note))
    if a.status:
        write_text(a.status, status_text(outcomes))


def status_text(outcomes) -> str:
    counts = summary_counts(outcomes)
    return "\n".join(
        [
            "# Corpus status (issue 9) -- generated by benchmarks/byom.py from branch `corpus`",
            "",
            f"{len(outcomes)} runs: " + ", ".join(f"{k} {v}" for k, v in counts.items()),
            "",
            STATUS_INTRO,
            "",
            status_table(outcomes),
            "",
        ]
    )


if __name__ == "__main__":
    main()
