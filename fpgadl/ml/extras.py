"""Family-specific report sections, registered by the zoo so the report never imports it.

A family whose course point is more than one metric (a truth table, a sparsity target, a comparison with
and without pre-training, a picture of reconstructions) registers `extra(run_dir, recipe) -> ReportExtra`
under its family name. It reads the run directory (the recipe's data, the engines' predictions, the
trained model) and may write a picture there; the report stage puts `data` in report.json and
`markdown` in report.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fpgadl.ml.recipes import Recipe


@dataclass
class ReportExtra:
    title: str
    markdown: list[str]
    data: dict = field(default_factory=dict)


REPORT_EXTRAS: dict[str, Callable[[Path, Recipe], ReportExtra]] = {}
# The engine whose outputs a section shows: the emulated FPGA first, torch only when nothing was emulated.
ENGINE_PREFERENCE = ("csim", "fast", "onnxruntime", "torch")


def register_report_extra(family: str):
    def wrap(fn):
        if family in REPORT_EXTRAS:
            raise ValueError(f"report extra for family {family!r} registered twice")
        REPORT_EXTRAS[family] = fn
        return fn

    return wrap


def report_extra(run_dir: Path, recipe: Recipe) -> ReportExtra | None:
    fn = REPORT_EXTRAS.get(recipe.family)
    return fn(run_dir, recipe) if fn else None


def emulated_predictions(run_dir: Path) -> tuple[str, np.ndarray]:
    """(engine, test-split outputs) of the most FPGA-like engine that ran."""
    for engine in ENGINE_PREFERENCE:
        path = run_dir / f"predictions/{engine}.npy"
        if path.is_file():
            return engine, np.load(path)
    raise FileNotFoundError(f"{run_dir}: no predictions/<engine>.npy")


def markdown_table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
