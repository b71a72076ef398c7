"""hls4ml's test bench, fed by the twin: `tb_data/` from the fast engine, and a bit-exact check inside it.

hls4ml's `myproject_test.cpp` reads `tb_data/tb_input_features.dat` (one sample per line) and
`tb_output_predictions.dat`, runs the firmware and logs what it computed, but compares nothing. fpgadl
writes both files from the fast engine (inputs in the firmware's layout, outputs as the exact float32 the
firmware returns, 9 significant digits so they parse back exactly) and adds `hls/testbench/fpgadl_tb.h`:
every output is compared with the twin's and `main` fails on any mismatch. The vendor's C simulation and
RTL co-simulation (`fpgadl hls --synth --cosim`) then check the RTL against the twin, and `run_testbench`
compiles the same test bench with g++ here, without a vendor tool.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np

from fpgadl.core.artifacts import write_text
from fpgadl.core.errors import CheckFailed, ToolUnavailable
from fpgadl.core.resources import package_data
from fpgadl.hls.project import PROJECT_NAME

TB_DIR = "tb_data"
TB_INPUT, TB_OUTPUT = "tb_input_features.dat", "tb_output_predictions.dat"
TB_HEADER = "fpgadl_tb.h"
# RTL co-simulation time grows with the sample count: the test split plus this many stress inputs.
TB_STRESS_SAMPLES = 1000
_PRINT_RE = re.compile(r"^(\s*)nnet::print_result<(.+), (\w+)>\((\w+), fout\);", re.MULTILINE)


def dat_lines(a: np.ndarray) -> str:
    """hls4ml's .dat format: one sample per line, values separated by spaces (float32, exact)."""
    a = a.reshape(len(a), -1).astype(np.float32)
    return "".join(" ".join(f"{v:.9g}" for v in row) + " \n" for row in a.tolist())


def write_tb_data(hls_dir: Path, x: np.ndarray, engine=None) -> int:
    """Write tb_data/ for float inputs x (ONNX layout, already checked) from the fast engine and hook the
    bit-exact check into the project's test bench; returns the number of samples (0: bench not hooked)."""
    from fpgadl.hls.engines import FastEngine, to_firmware_layout

    hls_dir = Path(hls_dir)
    eng = engine or FastEngine(hls_dir)
    x = np.asarray(x, dtype=np.float32)
    y = eng._run(to_firmware_layout(x, eng.meta))  # firmware layout, exactly what the output port holds
    write_text(hls_dir / TB_DIR / TB_INPUT, dat_lines(to_firmware_layout(x, eng.meta)))
    write_text(hls_dir / TB_DIR / TB_OUTPUT, dat_lines(y))
    return len(x) if hook_check(hls_dir) else 0


def generated_inputs(meta, n: int = TB_STRESS_SAMPLES, seed: int = 0) -> np.ndarray:
    """Inputs for a project without a test split: uniform over twice the input port's range (ONNX layout),
    so saturation runs too."""
    from fpgadl.emulator.fixed import FixedType

    t = FixedType.parse(meta.input_type) if meta.input_type else FixedType(16, 6)
    hi = 2.0 * float(t.max_mantissa) * 2.0**-t.frac
    rng = np.random.default_rng(seed)
    return rng.uniform(-hi, hi, size=(n, *meta.input_shape_onnx)).astype(np.float32)


def hook_check(hls_dir: Path) -> bool:
    """Add fpgadl's comparison to hls4ml's generated test bench (idempotent); False if its shape is not
    the one-input, one-output bench this knows."""
    tb = Path(hls_dir) / f"{PROJECT_NAME}_test.cpp"
    text = tb.read_text()
    shutil.copy2(package_data("hls") / "testbench" / TB_HEADER, Path(hls_dir) / TB_HEADER)
    if TB_HEADER in text:
        return True
    text = text.replace(
        '#include "firmware/nnet_utils/nnet_helpers.h"\n',
        f'#include "firmware/nnet_utils/nnet_helpers.h"\n#include "{TB_HEADER}"\n',
    )
    text, n = _PRINT_RE.subn(r"\1fpgadl::check<\2, \3>(\4, pr, e - 1);\n\g<0>", text, count=1)
    done = "    return 0;\n}"
    if n != 1 or not text.rstrip().endswith(done.strip()):
        return False
    write_text(tb, text.rstrip()[: -len(done)] + "    return fpgadl::report();\n}\n")
    return True


def build_testbench(hls_dir: Path, timeout: int = 900) -> Path:
    """Compile the project's test bench with g++ (no vendor tool); returns the executable (in hls_dir)."""
    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        raise ToolUnavailable("the test bench needs a C++ compiler (g++) on PATH")
    hls_dir = Path(hls_dir)
    exe = hls_dir / "fpgadl_tb"
    # hls4ml's firmware reads its weights from WEIGHTS_DIR at run time when built outside the vendor tool
    cmd = [
        cxx,
        "-O1",
        "-std=c++14",
        "-Ifirmware/ap_types",
        "-Ifirmware",
        '-DWEIGHTS_DIR="firmware/weights"',
        f"{PROJECT_NAME}_test.cpp",
        f"firmware/{PROJECT_NAME}.cpp",
        "-o",
        exe.name,
    ]
    proc = subprocess.run(cmd, cwd=hls_dir, capture_output=True, text=True, timeout=timeout)
    if proc.returncode:
        raise RuntimeError(f"g++ failed on {hls_dir}/{PROJECT_NAME}_test.cpp: {proc.stderr[-800:]}")
    return exe


def check_testbench(hls_dir: Path, exe: Path, timeout: int = 900) -> dict:
    """Run a built test bench on hls_dir's tb_data/; raises CheckFailed on any mismatch with the twin."""
    proc = subprocess.run([str(Path(exe).resolve())], cwd=hls_dir, capture_output=True, text=True, timeout=timeout)
    m = re.search(
        r"fpgadl: (\d+) outputs of (\d+) samples compared with the fast engine: (\d+) mismatches", proc.stdout
    )
    if m is None:
        raise RuntimeError(f"test bench printed no verdict (exit {proc.returncode}): {proc.stdout[-500:]}")
    result = {"outputs": int(m[1]), "samples": int(m[2]), "mismatches": int(m[3]), "exit_code": proc.returncode}
    if result["mismatches"] or proc.returncode:
        first = next((ln for ln in proc.stdout.splitlines() if "MISMATCH" in ln), "")
        raise CheckFailed(
            f"{hls_dir}: test bench found {result['mismatches']} mismatches with the fast engine; {first}"
        )
    return result


def run_testbench(hls_dir: Path, timeout: int = 900) -> dict:
    """Compile and run the test bench once (see build_testbench, check_testbench)."""
    exe = build_testbench(hls_dir, timeout)
    try:
        return check_testbench(hls_dir, exe, timeout)
    finally:
        exe.unlink(missing_ok=True)
