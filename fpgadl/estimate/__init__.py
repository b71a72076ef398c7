"""Analytical resource and latency estimates of hls4ml designs, and fitting a design to its board.

``estimate(hls_model, board)`` reads a converted (not compiled) hls4ml ModelGraph and returns per-layer
and total LUT, FF, DSP, BRAM18K, URAM, latency and initiation interval; ``fit`` picks reuse factors
and strategies that keep the design under a utilization ceiling. The rules, their sources and their
measured error against published synthesis results are in ``rules.py`` and docs/estimates.md.
"""

from __future__ import annotations

from fpgadl.core.boards import Board
from fpgadl.estimate.core import Estimate, estimate_specs
from fpgadl.estimate.fit import FitError, closest_reuse_factor, fit, fit_specs, valid_reuse_factors
from fpgadl.estimate.hls import EstimateError, specs_from_hls_model
from fpgadl.estimate.rules import LayerEstimate, LayerSpec, dsp_per_product, estimate_layer
from fpgadl.estimate.table import format_table


def estimate(hls_model, board: Board, clock_period_ns: float | None = None) -> Estimate:
    """Estimate a converted hls4ml ModelGraph on ``board`` (clock: the model's, else the board's)."""
    if clock_period_ns is None:
        clock_period_ns = hls_model.config.get_config_value("ClockPeriod") or None
    return estimate_specs(
        specs_from_hls_model(hls_model), board, float(clock_period_ns) if clock_period_ns else None
    )


__all__ = [
    "Estimate",
    "EstimateError",
    "FitError",
    "LayerEstimate",
    "LayerSpec",
    "closest_reuse_factor",
    "dsp_per_product",
    "estimate",
    "estimate_layer",
    "estimate_specs",
    "fit",
    "fit_specs",
    "format_table",
    "specs_from_hls_model",
    "valid_reuse_factors",
]
