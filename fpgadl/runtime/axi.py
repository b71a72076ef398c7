"""AXI-stream words at the accelerator's ports: the host side of the board, in numpy.

hls4ml's VivadoAccelerator `axi_stream` wrapper moves one tensor element per AXI beat. The beat's data
field (`T_in`/`T_out`) is the port's fixed-point type widened with the integer bits kept (the extra bits are
fractional), so a port value is its mantissa shifted left by the padding. hls4ml widens to whole bytes
(`_next_factor8_type`), but the AXI DMA's stream side takes only 8, 16, 32, 64... bits: fpgadl asks for the
next such width, so a 22-bit output travels in 32-bit words, not 24-bit ones the DMA cannot connect to.
A beat is a two's complement integer, little-endian in memory (what the AXI DMA reads from and writes to
DDR); a sample is its elements in the firmware's order (row-major over the
channels-last shape); a batch is its samples back to back, TLAST on the batch's final beat.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from fpgadl.emulator.fastfixed import convert, from_float
from fpgadl.emulator.fixed import FixedType

MAX_WORD_BITS = 64  # numpy int64 holds the mantissas


@dataclass(frozen=True)
class Port:
    """One accelerator port as the host driver must see it (an entry of the bundle's manifest)."""

    name: str
    type: str  # the network's own port type (ap_fixed spelling), what the firmware computes with
    axi_type: str  # the AXI data field's type: `type` widened to 8, 16, 32 or 64 bits, integer bits kept
    word_bits: int  # TDATA width per beat
    elements: int  # beats per sample
    shape: list[int]  # element order: row-major over this (firmware, channels-last) shape

    @property
    def word_bytes(self) -> int:
        return self.word_bits // 8

    def fixed(self) -> FixedType:
        return FixedType.parse(self.type)

    def axi_fixed(self) -> FixedType:
        return FixedType.parse(self.axi_type)

    def to_dict(self) -> dict:
        return asdict(self)


def axi_type_for(t: FixedType) -> FixedType:
    """The AXI data type for port type t: the width rounded up to 8, 16, 32 or 64, everything else kept."""
    width = max(8, 1 << (t.width - 1).bit_length())
    return FixedType(width, t.integer, t.signed, t.rounding, t.saturation, t.saturation_bits)


def make_port(name: str, t: FixedType, shape: list[int]) -> Port:
    axi = axi_type_for(t)
    if axi.width > MAX_WORD_BITS:
        raise ValueError(f"port {name}: type {t.cpp()} is wider than {MAX_WORD_BITS} bits")
    return Port(name, t.cpp(), axi.cpp(), axi.width, int(np.prod(shape)), [int(d) for d in shape])


def quantize(x: np.ndarray, port: Port) -> np.ndarray:
    """Float values (n, elements) -> mantissas of the port type: the quantizer's rounding and clamping."""
    return from_float(x, port.fixed())


def pack_words(m: np.ndarray, port: Port) -> np.ndarray:
    """Mantissas (n, elements) of the port type -> the DMA buffer: uint8 (n * elements * word_bytes,)."""
    wide = convert(np.asarray(m, dtype=np.int64), port.fixed(), port.axi_fixed())  # exact: a left shift
    return _to_bytes(wide, port.word_bits)


def unpack_words(buf: np.ndarray, port: Port, n: int) -> np.ndarray:
    """The DMA buffer -> mantissas (n, elements) of the AXI data type (`T_in`/`T_out`)."""
    buf = np.asarray(buf, dtype=np.uint8)
    if buf.size != n * port.elements * port.word_bytes:
        raise ValueError(
            f"port {port.name}: buffer of {buf.size} bytes; expected {n} samples x {port.elements} words x "
            f"{port.word_bytes} bytes = {n * port.elements * port.word_bytes}"
        )
    return _from_bytes(buf, port.word_bits, port.axi_fixed().signed).reshape(n, port.elements)


def _to_bytes(m: np.ndarray, bits: int) -> np.ndarray:
    nbytes = bits // 8
    u = m.reshape(-1).astype(np.int64).view(np.uint64)  # two's complement; high bits dropped below
    shifts = np.arange(nbytes, dtype=np.uint64) * np.uint64(8)
    return ((u[:, None] >> shifts) & np.uint64(0xFF)).astype(np.uint8).reshape(-1)


def _from_bytes(buf: np.ndarray, bits: int, signed: bool) -> np.ndarray:
    nbytes = bits // 8
    b = buf.reshape(-1, nbytes).astype(np.uint64)
    u = np.zeros(len(b), dtype=np.uint64)
    for k in range(nbytes):  # little-endian: byte k holds bits 8k..8k+7
        u |= b[:, k] << np.uint64(8 * k)
    if bits == 64:
        return u.view(np.int64) if signed else u.astype(np.int64)
    v = u.astype(np.int64)
    if signed:
        v = np.where(v >= (1 << (bits - 1)), v - (1 << bits), v)
    return v
