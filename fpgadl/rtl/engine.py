"""The `verilator` engine: the project's Verilog (from `fpgadl rtl`) run cycle by cycle by Verilator.

It takes the same float inputs as `fast` and `csim`: the host-side conversion to the input port's type
is the bridge's (as in csim), then the mantissas go through the compiled RTL, and the output port's
mantissas are read back as floats.  The RTL directory is reused while it was traced from the same
project; otherwise it is written first (default location: `build.default_out`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fpgadl.emulator.fastfixed import from_float
from fpgadl.emulator.fixed import to_float
from fpgadl.hls.engines import Engine, register_engine
from fpgadl.rtl.build import VerilatorModel, ensure_rtl
from fpgadl.rtl.trace import UnsupportedRTLError


@register_engine
class VerilatorEngine(Engine):
    """Verilator's simulation of the da4ml Verilog traced from the project."""

    name = "verilator"
    traces = False

    def __init__(self, hls_dir: Path, rtl_dir: Path | None = None):
        super().__init__(hls_dir)
        try:
            self.rtl_dir = ensure_rtl(self.hls_dir, rtl_dir)
        except UnsupportedRTLError as e:
            raise UnsupportedRTLError(f"engine verilator: {self.hls_dir}: {e}; use engine fast or csim") from e
        self.model = VerilatorModel(self.rtl_dir)

    def _run(self, x: np.ndarray) -> np.ndarray:
        m = from_float(x.reshape(len(x), -1), self.model.input_type)
        outs = self.model.run_mantissas(m)
        ys = [to_float(o, t) for o, t in zip(outs, self.model.output_types)]
        return np.concatenate(ys, axis=1).astype(x.dtype, copy=False)
