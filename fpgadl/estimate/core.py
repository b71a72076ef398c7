"""Whole-network estimate: per-layer costs summed, latency and II composed by io type."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from fpgadl.core.boards import RESOURCE_NAMES, Board
from fpgadl.estimate.rules import IO_CYCLES, LayerEstimate, LayerSpec, estimate_layer


@dataclass(frozen=True)
class Estimate:
    layers: tuple[LayerEstimate, ...]
    total: dict[str, int]  # lut, ff, dsp, bram18k, uram
    latency_cycles: int
    ii_cycles: int
    clock_period_ns: float
    io_type: str

    @property
    def latency_ns(self) -> float:
        return self.latency_cycles * self.clock_period_ns

    def utilization(self, board: Board) -> dict[str, float]:
        """Fraction of the board's resources used, per resource (inf if the board has none of it)."""
        avail = board.resources.as_dict()
        out = {}
        for name in RESOURCE_NAMES:
            used = self.total[name]
            out[name] = used / avail[name] if avail[name] else (0.0 if used == 0 else float("inf"))
        return out

    def to_dict(self) -> dict:
        return {
            "layers": [asdict(layer) for layer in self.layers],
            "total": dict(self.total),
            "latency_cycles": self.latency_cycles,
            "ii_cycles": self.ii_cycles,
            "latency_ns": self.latency_ns,
            "clock_period_ns": self.clock_period_ns,
            "io_type": self.io_type,
        }


def estimate_specs(
    specs: Sequence[LayerSpec], board: Board, clock_period_ns: float | None = None
) -> Estimate:
    """Estimate a network given as layer descriptions, in order from input to output."""
    period = clock_period_ns or board.clock_period_ns
    layers = tuple(estimate_layer(s, board.dsp_widths, period, board.family) for s in specs)
    total = {name: sum(getattr(layer, name) for layer in layers) for name in RESOURCE_NAMES}
    io_type = specs[0].io_type if specs else "io_parallel"
    ii = max((layer.ii_cycles for layer in layers), default=1)
    if io_type == "io_stream":
        # Dataflow: layers overlap, the slowest sets the pace; the others add their pipeline depth.
        latency = IO_CYCLES + ii + sum(max(0, layer.latency_cycles - layer.ii_cycles) for layer in layers)
    else:
        latency = IO_CYCLES + sum(layer.latency_cycles for layer in layers)
    return Estimate(layers, total, latency, ii, period, io_type)
