"""`Device(bundle, backend)`: one host API for the accelerator, emulated or on the board.

`predict(x_float)` does on the host exactly what the board's driver must: check the array, move it from
the ONNX layout to the firmware's, quantize to the input port's type (the quantizer's rounding and
clamping), pack into AXI words, hand the words to the backend, unpack the output words and convert them to
float. Only the backend differs: `emulated` runs the packed words through the fast engine (the bit-exact
twin of the firmware, behind the AXI wrapper's casts), `pynq` moves them through the board's DMA.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fpgadl.core.errors import ToolUnavailable, UsageError
from fpgadl.runtime import axi
from fpgadl.runtime.bundle import PROJECT, load_manifest

BACKENDS = ("emulated", "pynq")


class EmulatedBackend:
    """The firmware behind its AXI wrapper, on words: `in_local[i] = in[i].data` (a cast from T_in to
    input_t), the network, `out[i].data = out_local[i]` (a cast from result_t to T_out)."""

    def __init__(self, bundle: Path, manifest: dict):
        from fpgadl.emulator.runner import plan
        from fpgadl.hls.project import load_project

        self.plan = plan(load_project(bundle / PROJECT)[0])
        self.inp, self.out = manifest["ports"]["in"], manifest["ports"]["out"]

    def run(self, words: np.ndarray, n: int) -> np.ndarray:
        from fpgadl.emulator.fastfixed import convert
        from fpgadl.emulator.runner import forward

        m = convert(axi.unpack_words(words, self.inp, n), self.inp.axi_fixed(), self.inp.fixed())
        (y,) = forward(self.plan, [m.reshape(n, *self.inp.shape)])
        return axi.pack_words(y.reshape(n, -1), self.out)


class PynqBackend:
    """The board: PYNQ's Overlay with the bundle's bitstream; AXI DMA (Zynq) or the RTL kernel (Alveo)."""

    def __init__(self, bundle: Path, manifest: dict):
        try:
            import pynq
        except ImportError as e:
            raise ToolUnavailable(
                "backend 'pynq' needs the pynq package (on the board's PYNQ image, or `pip install pynq` with "
                "XRT for Alveo); it is not installed here; use backend='emulated' off the board"
            ) from e
        bit = bundle / manifest["bitstream"]
        if not bit.is_file():
            raise UsageError(f"{bit}: no bitstream in the bundle; run {bundle / 'build.sh'} with the vendor tools")
        self.pynq = pynq
        self.overlay = pynq.Overlay(str(bit))
        self.inp, self.out = manifest["ports"]["in"], manifest["ports"]["out"]
        self.alveo = manifest["shell"] == "alveo-rtl-kernel"

    def run(self, words: np.ndarray, n: int) -> np.ndarray:
        in_buf = self.pynq.allocate(shape=words.shape, dtype=np.uint8)
        out_buf = self.pynq.allocate(shape=(n * self.out.elements * self.out.word_bytes,), dtype=np.uint8)
        in_buf[:] = words
        if self.alveo:
            in_buf.sync_to_device()
            self.overlay.krnl_rtl_1.call(in_buf, out_buf, n * self.inp.elements, n * self.out.elements)
            out_buf.sync_from_device()
        else:
            dma = self.overlay.hier_0.axi_dma_0
            dma.sendchannel.transfer(in_buf)
            dma.recvchannel.transfer(out_buf)
            dma.sendchannel.wait()
            dma.recvchannel.wait()
        return np.array(out_buf, dtype=np.uint8)


class Device:
    """An accelerator bundle behind one API: `Device(bundle, "emulated").predict(x)`."""

    def __init__(self, bundle: str | Path, backend: str = "emulated"):
        if backend not in BACKENDS:
            raise UsageError(f"backend {backend!r}: valid: {', '.join(BACKENDS)}")
        self.bundle = Path(bundle)
        self.manifest = load_manifest(self.bundle)
        from fpgadl.hls.project import ProjectMeta

        self.meta = ProjectMeta.load(self.bundle / PROJECT)
        self.backend = backend
        self._impl = (EmulatedBackend if backend == "emulated" else PynqBackend)(self.bundle, self.manifest)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Float inputs (N, *input shape) in the ONNX model's layout -> float32 outputs in that layout."""
        from fpgadl.emulator.runner import to_host_float
        from fpgadl.hls.engines import check_input, from_firmware_layout, to_firmware_layout

        x = check_input(x, self.meta, "Device.predict input")
        n = len(x)
        inp, out = self.manifest["ports"]["in"], self.manifest["ports"]["out"]
        m = axi.quantize(to_firmware_layout(x, self.meta).reshape(n, -1), inp)
        words = self._impl.run(axi.pack_words(m, inp), n)
        y = to_host_float(axi.unpack_words(words, out, n), out.axi_fixed(), np.float32)
        return from_firmware_layout(y, self.meta)
