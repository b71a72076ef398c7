"""Markdown table of an estimate, for the report stage."""

from __future__ import annotations

from fpgadl.core.boards import RESOURCE_NAMES, Board
from fpgadl.estimate.core import Estimate

_HEADERS = {"lut": "LUT", "ff": "FF", "dsp": "DSP", "bram18k": "BRAM18K", "uram": "URAM"}


def format_table(estimate: Estimate, board: Board) -> str:
    """Per-layer rows, a total row, and the board's availability and utilization rows."""
    head = [
        "layer",
        "class",
        "strategy",
        "RF",
        "mults",
        *(_HEADERS[r] for r in RESOURCE_NAMES),
        "latency",
        "II",
    ]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for layer in estimate.layers:
        cells = [
            layer.name,
            layer.class_name or layer.kind,
            layer.strategy if layer.multipliers else "",
            str(layer.reuse_factor) if layer.multipliers else "",
            str(layer.multipliers) if layer.multipliers else "",
            *(str(getattr(layer, r)) for r in RESOURCE_NAMES),
            str(layer.latency_cycles),
            str(layer.ii_cycles),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    util = estimate.utilization(board)
    avail = board.resources.as_dict()
    total = [
        "**total**",
        "",
        "",
        "",
        "",
        *(f"**{estimate.total[r]}**" for r in RESOURCE_NAMES),
        f"**{estimate.latency_cycles}**",
        f"**{estimate.ii_cycles}**",
    ]
    rows.append("| " + " | ".join(total) + " |")
    rows.append(
        "| "
        + " | ".join(
            [f"available ({board.name})", "", "", "", "", *(str(avail[r]) for r in RESOURCE_NAMES), "", ""]
        )
        + " |"
    )
    rows.append(
        "| "
        + " | ".join(
            [
                "utilization",
                "",
                "",
                "",
                "",
                *(f"{100 * util[r]:.1f}%" for r in RESOURCE_NAMES),
                f"{estimate.latency_ns:.0f} ns",
                "",
            ]
        )
        + " |"
    )
    return "\n".join(rows) + "\n"
