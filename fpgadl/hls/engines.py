"""The ways to run a converted model: `csim` (hls4ml's C simulation, compiled with g++), `fast` (fpgadl's
numpy twin of the firmware) and `verilator` (the da4ml Verilog of `fpgadl rtl`, simulated by Verilator). All
take float arrays in the ONNX model's own layout, checked once here, and return float32 outputs in that layout.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
from pathlib import Path

import numpy as np

from fpgadl.core.errors import ToolUnavailable, UsageError
from fpgadl.core.options import ENGINES
from fpgadl.hls.csim_build import use_shared_header
from fpgadl.hls.hostops import apply_host_ops
from fpgadl.hls.project import ProjectMeta, load_project


def check_input(x, meta: ProjectMeta, source: str = "input") -> np.ndarray:
    """Validate a user's array: float dtype, (N, *input shape) in the ONNX layout, finite values."""
    if not isinstance(x, np.ndarray):
        raise UsageError(f"{source}: expected a numpy array, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise UsageError(f"{source}: dtype {x.dtype} is not a float type; valid: float32, float64")
    shape = tuple(meta.input_shape_onnx)
    if x.shape[1:] != shape:
        if x.shape == shape:
            x = x[None]
        else:
            raise UsageError(
                f"{source}: shape {x.shape} does not match the model input; valid: (N, {', '.join(map(str, shape))})"
            )
    if not np.all(np.isfinite(x)):
        bad = np.argwhere(~np.isfinite(x))[0]
        raise UsageError(
            f"{source}: contains NaN or Inf (first at index {tuple(int(i) for i in bad)}); inputs must be finite"
        )
    return x


def prequantize(x: np.ndarray, spec: dict) -> np.ndarray:
    """The model's input quantizer in numpy (round half to even, clamp): for ports that cannot round."""
    scale = 2.0 ** spec["scale_exponent"]
    bits = spec["bits"]
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if spec["signed"] else (0, 2**bits - 1)
    return (np.clip(np.round(x.astype(np.float64) / scale), lo, hi) * scale).astype(x.dtype)


def to_firmware_layout(x: np.ndarray, meta: ProjectMeta) -> np.ndarray:
    x = apply_host_ops(x, meta.host_ops)  # pre-processing the model does in float before its quantizer
    if meta.input_prequant:
        x = prequantize(x, meta.input_prequant)
    if meta.input_transpose:
        x = x.transpose(meta.input_transpose)
    return np.ascontiguousarray(x)


def from_firmware_layout(y: np.ndarray, meta: ProjectMeta) -> np.ndarray:
    y = np.asarray(y).reshape(len(y), *meta.output_shape_hls)
    if meta.output_transpose:
        y = y.transpose(meta.output_transpose)
    y = np.ascontiguousarray(y).reshape(len(y), *meta.output_shape_onnx).astype(np.float32, copy=False)
    return apply_host_ops(y, meta.host_post_ops)  # post-processing the model does in float after its last layer


class Engine:
    name = ""
    traces = True  # can report every layer's output (`trace`)

    def __init__(self, hls_dir: Path):
        self.hls_dir = Path(hls_dir)
        self.meta = ProjectMeta.load(self.hls_dir)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """x already checked; returns float32 in the ONNX layout."""
        return from_firmware_layout(self._run(to_firmware_layout(x, self.meta)), self.meta)

    def _run(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def trace(self, x: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Outputs (ONNX layout) and every layer's output (firmware layout, keyed by hls4ml layer name)."""
        y, layers = self._trace(to_firmware_layout(x, self.meta))
        n = len(x)
        return from_firmware_layout(np.asarray(y).reshape(n, -1), self.meta), {
            k: np.asarray(v).reshape(n, *np.asarray(v).shape[1:]) for k, v in layers.items()
        }

    def _trace(self, x: np.ndarray):
        raise NotImplementedError

    def close(self) -> None:
        pass


class CsimEngine(Engine):
    """hls4ml's C simulation of the project: the firmware compiled with g++ and called through ctypes."""

    name = "csim"

    def __init__(self, hls_dir: Path, trace: bool = False):
        super().__init__(hls_dir)
        compiler = shutil.which("g++") or shutil.which("c++")
        if compiler is None:
            raise ToolUnavailable("engine csim needs a C++ compiler (g++) on PATH; use --engine fast")
        # Compile a copy: the project directory stays exactly as `fpgadl hls` wrote it.
        self._tmp = tempfile.TemporaryDirectory(prefix="fpgadl-csim-")
        self.hls_model, _ = load_project(self.hls_dir, output_dir=Path(self._tmp.name), trace=trace)
        use_shared_header(self.hls_model)
        if not trace:  # hls_model.trace() compiles by itself
            with contextlib.redirect_stdout(io.StringIO()):
                self.hls_model.compile()

    def _trace(self, x: np.ndarray):
        with contextlib.redirect_stdout(io.StringIO()):
            y, layers = self.hls_model.trace(np.ascontiguousarray(x))
        return y, layers

    def _run(self, x: np.ndarray) -> np.ndarray:
        y = self.hls_model.predict(x)
        return np.asarray(y).reshape(len(x), -1)

    def close(self) -> None:
        self._tmp.cleanup()


class FastEngine(Engine):
    """fpgadl's compiler-free numpy emulator of the firmware (bit-identical to csim)."""

    name = "fast"

    def __init__(self, hls_dir: Path):
        from fpgadl.emulator.registry import UnsupportedLayerError
        from fpgadl.emulator.runner import plan

        super().__init__(hls_dir)
        self.hls_model, _ = load_project(self.hls_dir)
        try:
            self.plan = plan(self.hls_model)  # every kernel built once: an unsupported layer fails here
        except UnsupportedLayerError as e:
            raise UsageError(f"{self.hls_dir}: {e}; use --engine csim for this project") from e

    def _run(self, x: np.ndarray) -> np.ndarray:
        from fpgadl.emulator.runner import emulate

        return np.asarray(emulate(self.plan, x)).reshape(len(x), -1)

    def _trace(self, x: np.ndarray):
        from fpgadl.emulator.runner import emulate

        return emulate(self.hls_model, x, trace=True)


# Engines by name. `verilator` registers itself from fpgadl.rtl.engine (the RTL side builds on this module,
# not the reverse); the API imports it when that engine is asked for.
ENGINE_CLASSES: dict[str, type[Engine]] = {"fast": FastEngine, "csim": CsimEngine}


def register_engine(cls: type[Engine]) -> type[Engine]:
    ENGINE_CLASSES[cls.name] = cls
    return cls


def open_engine(hls_dir: Path, engine: str, *, trace: bool = False) -> Engine:
    if engine not in ENGINES:
        raise UsageError(f"unknown engine {engine!r}; valid: {', '.join(ENGINES)}")
    cls = ENGINE_CLASSES.get(engine)
    if cls is None:  # a caller below the API that did not import the RTL side
        raise UsageError(f"engine {engine} is not loaded; import fpgadl.rtl.engine (fpgadl.api does) to use it")
    if trace and not cls.traces:
        raise UsageError(f"--trace: engine {engine} exposes only the output port; use --engine fast or csim")
    return cls(hls_dir, trace=trace) if cls is CsimEngine else cls(hls_dir)
