"""Constants the exporter computed, which torch computes again every time the model runs.

torch's dynamo exporter (the default of `export_qonnx` under torch 2.13) runs onnxscript's optimizer, which
folds constant sub-graphs into one initializer and records what it folded in the value's metadata
(`pkg.onnxscript.optimizer.folded_from`, the FX names of the folded values). TensorNorm's
`(running_var + eps).pow(0.5)` becomes one float `pow_1`. The optimizer's pow is correctly rounded;
torch's own float32 pow/sqrt on this CPU build is not (measured: 11.384745597839355 folded, 11.384746551513672
in torch for the same float32 input; about one value in five differs). The file then holds a constant the
model never divides by, and nothing in the file can tell which value torch uses.

Folds that only move data or use correctly rounded arithmetic (add, mul, div, slicing, reshapes) give
torch's value exactly; a folded transcendental op, reduction or matmul (different rounding or summation
order) makes the project exact against the file only: fpgadl says so ("exact-vs-export") until
the user's own torch outputs (`--sample` with `--expect`) show which constant torch uses.
"""

from __future__ import annotations

import ast
import re

import onnx

FOLDED_KEY = "pkg.onnxscript.optimizer.folded_from"
# aten ops whose float32 result depends on the implementation: transcendental functions (torch's CPU
# kernels are not correctly rounded; the folder's are) and sums (a different order rounds differently).
# Names outside this list are exact arithmetic (add, mul, div), data movement (slice, view, clone) or data
# (parameters: `weight`, `features.15.running_var`; constants: `lifted_tensor_0`, `val_12`).
INEXACT_OPS = frozenset(
    "pow sqrt rsqrt exp exp2 expm1 log log2 log10 log1p sin cos tan asin acos atan atan2 sinh cosh tanh asinh "
    "acosh atanh sigmoid logit erf erfc erfinv reciprocal softplus gelu silu mish elu selu celu hardswish "
    "softmax log_softmax logsumexp sum mean var std var_mean std_mean prod cumsum cumprod norm linalg_vector_norm "
    "mm bmm matmul addmm addmv baddbmm linear convolution conv1d conv2d conv3d dot vdot mv einsum".split()
)


def _op_of(fx_name: str) -> str:
    """The aten op an FX value name was made from (`pow_1` -> pow, `linear_3` -> linear)."""
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
        if {_op_of(name) for name in [value.name, *sources]} & INEXACT_OPS:
            found.append(f"{value.name} (from {', '.join(sources) or 'constants'})")
    return sorted(set(found))
