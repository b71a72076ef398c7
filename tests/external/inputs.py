"""Inputs that try the float -> fixed boundary: off the input quantizer's grid, exact rounding ties, far
out of range, on the grid, and the model's typical inputs (pixels for image models).

Values are drawn in the input quantizer's domain (read from the exported QONNX graph: the first Quant or
BipolarQuant reached from the graph input) and mapped back through the model's pre-processing inverse.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

# Ops a model may apply between its input and its input quantizer (pre-processing, reshapes).
PASS_THROUGH = ("Mul", "Add", "Sub", "Div", "Relu", "Reshape", "Flatten", "Transpose", "Identity", "Constant")
SETS = ("off-grid", "ties", "out-of-range", "on-grid", "typical")


@dataclass
class InputQuant:
    scale: float
    qmin: int
    qmax: int
    found: bool


def input_quantizer(path) -> InputQuant:
    """The first quantizer fed (through elementwise/reshape ops only) by the graph input."""
    m = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    for node in m.graph.node:
        if node.op_type == "Constant":
            inits[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    frontier, seen = {m.graph.input[0].name}, set()
    while frontier:
        t = frontier.pop()
        seen.add(t)
        for node in (n for n in m.graph.node if t in n.input):
            if node.op_type in ("Quant", "BipolarQuant"):
                return _quant_of(node, inits)
            if node.op_type in PASS_THROUGH:
                frontier |= set(node.output) - seen
    return InputQuant(2.0**-4, -128, 127, False)


def _quant_of(node, inits) -> InputQuant:
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    scale = float(np.asarray(inits.get(node.input[1], 2.0**-4)).ravel()[0])
    if node.op_type == "BipolarQuant":
        return InputQuant(scale, -1, 1, True)  # grid {-s, +s}; the tie sits at 0
    bits = int(np.asarray(inits.get(node.input[3], 8)).ravel()[0])
    signed, narrow = bool(attrs.get("signed", 1)), bool(attrs.get("narrow", 0))
    if signed:
        lo, hi = -(2 ** (bits - 1)) + int(narrow), 2 ** (bits - 1) - 1
    else:
        lo, hi = 0, 2**bits - 1 - int(narrow)
    return InputQuant(scale, lo, hi, True)


def typical(kind: str, shape, n: int, rng) -> np.ndarray:
    if kind == "pixel":
        return rng.random((n, *shape))
    if kind == "pixel255":
        return rng.integers(0, 256, (n, *shape)).astype(np.float64)
    if kind == "uint4":
        return rng.integers(0, 16, (n, *shape)).astype(np.float64)
    return rng.standard_normal((n, *shape)) * 2


def make_inputs(entry, q: InputQuant, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """n rows split over SETS, float32, in the entry's raw input domain."""
    rng = np.random.default_rng(seed)
    shape, k = entry.input_shape, max(1, n // len(SETS))
    s, lo, hi = q.scale, q.qmin, q.qmax
    dom = {
        "off-grid": rng.uniform(lo - 0.5, hi + 0.5, (k, *shape)) * s,
        "ties": (rng.integers(lo - 2, hi + 2, (k, *shape)) + 0.5) * s,
        "out-of-range": rng.choice([-1.0, 1.0], (k, *shape)) * rng.uniform(2, 50, (k, *shape)) * max(abs(lo), hi) * s,
        "on-grid": rng.integers(lo, hi + 1, (k, *shape)) * s,
    }
    inv = entry.pre_inverse or (lambda v: v)
    sets = {name: inv(v) for name, v in dom.items()}
    sets["typical"] = typical(entry.typical, shape, n - 4 * k, rng)
    return {name: np.asarray(v, dtype=np.float32) for name, v in sets.items()}
