"""Write the README's measured table to docs/benchmarks.md (and between its markers in README.md).

Every figure is measured here, in one process, as the median of >= 5 runs: the fast engine vs
onnxruntime vs csim (benchmarks/emulator.py's rows), the default job's wall time (`fpgadl run`,
benchmarks/run_default.py's measurement) and the peak memory of emulating 1,000,000 inputs of the
default model (a fresh interpreter per run, as tests/test_memory.py does).  Nothing is typed by hand:
re-run this script in the change that alters what it measures.

    .venv/bin/python benchmarks/readme_table.py [--repeats 5] [--skip job,memory,first] [--out docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark modules

import emulator  # noqa: E402

from fpgadl.core.artifacts import write_text  # noqa: E402

START, END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"

MEMORY_SCRIPT = """
import sys
import numpy as np
from fpgadl import api
from fpgadl.core.memory import peak_rss_bytes
x = np.random.default_rng(0).uniform(-2, 2, size=(1_000_000, 64)).astype(np.float32)
y = api.emulate(sys.argv[1], x, engine="fast")
assert y.shape == (1_000_000, 10)
print(peak_rss_bytes())
"""


def default_job(repeats: int, work: Path) -> tuple[float, Path]:
    """Median wall seconds of `fpgadl run` (default recipe) in fresh run directories; the last run's dir."""
    walls = []
    out = work
    for i in range(repeats):
        out = work / f"run{i}"
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "fpgadl.cli", "run", "--out", str(out), "-q"], capture_output=True)
        walls.append(time.perf_counter() - t0)
        if proc.returncode:
            sys.exit(f"fpgadl run failed (exit {proc.returncode}): {proc.stderr.decode()[-500:]}")
    return statistics.median(walls), out


def peak_memory(hls_dir: Path, repeats: int) -> float:
    """Median peak RSS (GiB) of emulating 1,000,000 inputs of the project in `hls_dir`."""
    peaks = []
    for _ in range(repeats):
        proc = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(hls_dir)], capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"memory run failed: {proc.stderr[-500:]}")
        peaks.append(int(proc.stdout.split()[-1]) / 2**30)
    return statistics.median(peaks)


def render(args, rows, job_s, mem_gib) -> str:
    parts = [
        "# Measured performance",
        "",
        f"Written by `benchmarks/readme_table.py` (do not edit by hand) on {platform.machine()} "
        f"with {platform.python_version()}; every figure is the median of {args.repeats} runs in one process.",
        "",
        "## Fast engine vs onnxruntime vs csim",
        "",
        emulator.table(rows, args),
        "",
    ]
    if job_s is not None or mem_gib is not None:
        parts += ["## Default job", "", "| what | median |", "|---|---|"]
        if job_s is not None:
            parts.append(f"| `fpgadl run` (mlp-digits, pynq-z2) after set-up, wall | {job_s:.1f} s (goal 60 s) |")
        if mem_gib is not None:
            parts.append(f"| peak memory, 1,000,000 inputs of the default model | {mem_gib:.2f} GiB (limit 2) |")
        parts.append("")
    return "\n".join(parts)


def update_readme(readme: Path, text: str) -> None:
    """Replace what stands between the markers with the generated text (headings demoted one level)."""
    body = re.sub(r"^# .*\n\n", "", text, count=1).replace("\n## ", "\n### ")
    old = readme.read_text()
    if START not in old or END not in old:
        sys.exit(f"{readme}: markers {START} / {END} not found")
    head, rest = old.split(START, 1)
    _, tail = rest.split(END, 1)
    write_text(readme, f"{head}{START}\n{body.strip()}\n{END}{tail}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=20_000)
    ap.add_argument("--csim-n", type=int, default=2000)
    ap.add_argument("--csim-rows", default=None, help="rows csim runs on (default: all)")
    ap.add_argument("--skip", default="", help="comma-separated: job, memory, first")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    ap.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = ap.parse_args()
    if args.repeats < 5:
        sys.exit("--repeats must be >= 5: the README quotes medians of at least five runs")
    skip = set(filter(None, args.skip.split(",")))
    bench_args = emulator.parse_args(
        [f"--repeats={args.repeats}", f"--batch={args.batch}", f"--csim-n={args.csim_n}"]
        + [f"--first-repeats={0 if 'first' in skip else args.repeats}"]
        + ([f"--csim-rows={args.csim_rows}"] if args.csim_rows else [])
    )
    rows = emulator.run_all(bench_args)
    job_s = mem = None
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "mlp-digits"
        if "job" not in skip:
            job_s, run_dir = default_job(args.repeats, Path(tmp))
        if "memory" not in skip:
            if "job" in skip:  # the default model without the job's csim and report stages
                from fpgadl import api

                api.run(out=run_dir, engine="fast", stages=("train", "export", "convert"), warn=lambda m: None)
            mem = peak_memory(run_dir / "hls", args.repeats)
    text = render(bench_args, rows, job_s, mem)
    write_text(args.out, text)
    update_readme(args.readme, text)
    print(text)


if __name__ == "__main__":
    main()
