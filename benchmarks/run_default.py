"""Measure `make run`'s default job (`fpgadl run`: mlp-digits on pynq-z2) after set-up.

Runs the CLI end to end in fresh run directories, as a user would, and prints the median wall time,
its ratio to the 60 s goal, and the median seconds of each stage (from manifest.json). The machines are
shared and noisy: quote the median.

    .venv/bin/python benchmarks/run_default.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_SECONDS = 60.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    walls: list[float] = []
    stages: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            out = Path(tmp) / f"run{i}"
            t0 = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "fpgadl.cli", "run", "--out", str(out), "-q"],
                capture_output=True,
                text=True,
            )
            walls.append(time.perf_counter() - t0)
            if proc.returncode != 0:
                sys.exit(f"fpgadl run failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
            for name, entry in json.loads((out / "manifest.json").read_text())["stages"].items():
                stages.setdefault(name, []).append(entry["seconds"])
    med = statistics.median(walls)
    print(
        f"fpgadl run (default job), {args.repeats} runs: median {med:.1f} s "
        f"(min {min(walls):.1f}, max {max(walls):.1f}); goal {GOAL_SECONDS:.0f} s; "
        f"ratio median/goal = {med / GOAL_SECONDS:.2f} -> {'MET' if med < GOAL_SECONDS else 'MISSED'}"
    )
    print("| stage | median s |\n|---|---|")
    for name, secs in stages.items():
        print(f"| {name} | {statistics.median(secs):.2f} |")
    rest = med - sum(statistics.median(s) for s in stages.values())
    print(f"| (start-up, imports) | {rest:.2f} |")


if __name__ == "__main__":
    main()
