"""The deployed system seen from the host: the bundle `fpgadl package` writes, and `Device`, which drives
it (emulated bit for bit, or on the board through PYNQ)."""

from fpgadl.runtime.device import BACKENDS, Device

__all__ = ["BACKENDS", "Device"]
