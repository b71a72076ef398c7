"""Measure how fast the listing commands answer: `fpgadl zoo --json` (goal < 2 s) and `fpgadl boards --json`.

Each command runs as a user runs it (a fresh `python -m fpgadl.cli` process), `--repeats` times; prints
the median wall time and its ratio to the goal. `fpgadl zoo` reads the recipes and fpgadl.ml.catalog and
builds no model, so it imports neither torch nor Brevitas; the script also reports whether it did.

    .venv/bin/python benchmarks/cli_latency.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

GOAL_SECONDS = 2.0


def wall(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "fpgadl.cli", *args], check=True, capture_output=True)
    return time.perf_counter() - t0


def imports_heavy_libraries(command: str) -> list[str]:
    code = (
        "import sys\nfrom fpgadl import api\n"
        f"api.{command}()\n"
        "print(','.join(m for m in ('torch', 'brevitas', 'hls4ml', 'qonnx') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return [m for m in out.strip().split(",") if m]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    print(f"| command | median of {args.repeats} (s) | goal (s) | goal / median | heavy imports |")
    print("|---|---|---|---|---|")
    for command in ("zoo", "boards"):
        times = [wall([command, "--json"]) for _ in range(args.repeats)]
        med = statistics.median(times)
        heavy = ", ".join(imports_heavy_libraries(command)) or "none"
        print(f"| fpgadl {command} --json | {med:.2f} | {GOAL_SECONDS:.0f} | {GOAL_SECONDS / med:.1f}x | {heavy} |")


if __name__ == "__main__":
    main()
