"""`fpgadl rtl`: Verilog from a converted project, co-simulated against the fast engine, optionally synthesized.

The co-simulation is the proof that the Verilog is the firmware: Verilator's outputs must equal the
fast engine's bit for bit on the run's test split (when the project sits in a run directory) and on
stress inputs at the input port: off-grid values, exact rounding ties of the port's grid, every
extreme, and values far outside the port's range (saturation).  The verdict, da4ml's estimate, Yosys'
counts and the analytic estimate land in `rtl.json` of the RTL directory.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from fpgadl.core.artifacts import write_json
from fpgadl.core.errors import CheckFailed
from fpgadl.emulator.fixed import FixedType
from fpgadl.rtl.build import RTL_META, TOP, VerilatorModel, default_out, load_rtl_meta, write_rtl

COSIM_SAMPLES = 4096  # stress inputs at the port, besides the test split


def stress_inputs(port: FixedType, shape: tuple[int, ...], n: int = COSIM_SAMPLES, seed: int = 0) -> np.ndarray:
    """Float inputs (ONNX layout) for the port type: a quarter each off the grid within twice the range,
    on exact ties of the grid, on the grid (extremes included) and far outside the range."""
    rng = np.random.default_rng(seed)
    lsb = 2.0**-port.frac
    lo, hi = port.min_mantissa * lsb, port.max_mantissa * lsb
    q = n // 4
    off_grid = rng.uniform(2 * lo - lsb, 2 * hi + lsb, size=(q, *shape))
    ties = (rng.integers(port.min_mantissa - 4, port.max_mantissa + 4, size=(q, *shape)) + 0.5) * lsb
    on_grid = rng.integers(port.min_mantissa, port.max_mantissa + 1, size=(q, *shape)) * lsb
    on_grid[: q // 8] = rng.choice([lo, hi, 0.0, -0.0], size=(q // 8, *shape))
    far = rng.standard_normal((n - 3 * q, *shape)) * 1000 * max(abs(lo), abs(hi), lsb)
    return np.concatenate([off_grid, ties, on_grid, far]).astype(np.float32)


def _test_split(project: Path) -> np.ndarray | None:
    path = Path(project).parent / "data" / "x_test.npy"
    return np.load(path) if Path(project).name == "hls" and path.is_file() else None


def cosimulate(project: Path, rtl_dir: Path, x: np.ndarray) -> dict:
    """Verilator vs fast engine on x (ONNX layout floats): sample counts and the first differing sample."""
    from fpgadl.hls.engines import FastEngine, check_input
    from fpgadl.rtl.engine import VerilatorEngine

    fast = FastEngine(project)
    x = check_input(x, fast.meta, "co-simulation inputs")
    t0 = time.perf_counter()
    rtl = VerilatorEngine(project, rtl_dir)
    build_s = time.perf_counter() - t0
    y_rtl, y_fast = rtl.predict(x), fast.predict(x)
    differs = np.any((y_rtl != y_fast).reshape(len(x), -1), axis=1)
    bad = np.flatnonzero(differs)
    return {
        "samples": int(len(x)),
        "mismatched_samples": int(len(bad)),
        "equal": bool(len(bad) == 0),
        "first_mismatch": int(bad[0]) if len(bad) else None,
        "verilator_build_seconds": round(rtl.model.compile_seconds or build_s, 1),
    }


def _analytic_estimate(project: Path) -> dict:
    from fpgadl.core.boards import Board
    from fpgadl.estimate import estimate
    from fpgadl.hls.project import load_project

    hls_model, meta = load_project(project)
    return estimate(hls_model, Board.model_validate(meta.board_spec), meta.clock_period_ns).total


def rtl(
    project: Path, out: Path | None = None, *, clock_ns: float | None = None, cosim: bool = True, synth: bool = False
) -> dict:
    """Write the project's Verilog to `out`, co-simulate it (exit 1 if it differs), optionally run Yosys."""
    from fpgadl.hls.project import ProjectMeta

    out = Path(out) if out else default_out(project)
    info = write_rtl(project, out, clock_ns)
    meta = ProjectMeta.load(project)
    if cosim:
        port = FixedType.parse(info["input_type"])
        xs = [stress_inputs(port, tuple(meta.input_shape_onnx))]
        split = _test_split(project)
        if split is not None:
            xs.insert(0, split.astype(np.float32))
        info["cosim"] = cosimulate(project, out, np.concatenate(xs))
        info["cosim"]["test_split_samples"] = 0 if split is None else int(len(split))
    if synth:
        from fpgadl.rtl.synth import synthesize

        info["yosys"] = synthesize(out, TOP, meta.board_spec.get("family", "unknown"))
        info["analytic_estimate"] = _analytic_estimate(project)
    write_json(out / RTL_META, {**load_rtl_meta(out), **info})
    if cosim and not info["cosim"]["equal"]:
        c = info["cosim"]
        raise CheckFailed(
            f"RTL co-simulation: Verilator differs from the fast engine on {c['mismatched_samples']} of "
            f"{c['samples']} inputs (first: sample {c['first_mismatch']}); details in {out / RTL_META}"
        )
    return json.loads((out / RTL_META).read_text())


__all__ = ["COSIM_SAMPLES", "VerilatorModel", "cosimulate", "rtl", "stress_inputs"]
