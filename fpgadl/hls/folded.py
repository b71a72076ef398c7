"""Constants the exporter computed, which torch computes again every time the model runs.

torch's dynamo exporter (the default of `export_qonnx` under torch 2.13) runs onnxscript's optimizer, which
folds constant sub-graphs into one initializer and records what it folded in the value's metadata
(`pkg.onnxscript.optimizer.folded_from`, the FX names of the folded values). TensorNorm's
`(running_var + eps).pow(0.5)` becomes one float `pow_1`. The optimizer's pow is correctly rounded;
torch's own float32 pow/sqrt on this CPU build is not (measured: 11.384745597839355 folded, 11.384746551513672
in torch for the same float32 input; about one value in five differs). The file then holds a constant the
model never divides by, and nothing in the file can tell which value torch uses.

Folds that only move data or use correctly rounded arithmetic (add, mul, div, slicing, reshapes) give
torch's value exactly; any other folded op (pow, sqrt, exp, reductions, matmuls: different rounding or
summation order) makes the project exact against the file only: fpgadl says so ("exact-vs-export") until
the user's own torch outputs (`--sample` with `--expect`) show which constant torch uses.
"""

from __future__ import annotations

import ast
import re

import onnx

FOLDED_KEY = "pkg.onnxscript.optimizer.folded_from"
# aten ops whose float32 result is the correctly rounded one in torch and in any folder, or moves data only
EXACT_OPS = frozenset(
    "add sub mul div neg abs view reshape permute transpose t slice select cat stack unsqueeze squeeze expand "
    "clone contiguous getitem flatten repeat index to copy _to_copy clamp max min maximum minimum where floor "
    "ceil round trunc sign lift_fresh_copy zeros ones full arange split chunk narrow unbind detach alias "
    "alias_copy view_copy expand_copy permute_copy slice_copy select_copy unsqueeze_copy squeeze_copy".split()
)


def _op_of(fx_name: str) -> str | None:
    """The aten op an FX value name was made from (`pow_1` -> pow); None for names that are not ops
    (parameters and buffers keep dotted state-dict names, lifted constants are `lifted_tensor_N` or
    `_tensor_constantN`; `val_N` are ONNX values of one decomposed op)."""
    if "." in fx_name or re.fullmatch(r"(val_|lifted_tensor_|_tensor_constant|_param_constant)\d+", fx_name):
        return None
    return re.sub(r"_\d+$", "", fx_name)


def inexact_folds(model: onnx.ModelProto) -> list[str]:
    """Folded constants whose folding may not be torch's arithmetic, each as 'name (from a, b, ...)'.

    Reads the raw export: the metadata sits on the graph-input entries dynamo writes for initializers."""
    used = {i for n in model.graph.node for i in n.input}
    found = []
    for value in [*model.graph.input, *model.graph.value_info, *model.graph.initializer]:
        props = {p.key: p.value for p in value.metadata_props}
        if FOLDED_KEY not in props or value.name not in used:
            continue
        try:
            sources = [str(s) for s in ast.literal_eval(props[FOLDED_KEY])]
        except (ValueError, SyntaxError):
            sources = []
        ops = {_op_of(name) for name in [value.name, *sources]} - {None}
        if ops - EXACT_OPS:
            found.append(f"{value.name} (from {', '.join(sources) or 'constants'})")
    return sorted(set(found))
