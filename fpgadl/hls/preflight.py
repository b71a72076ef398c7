"""Preflight: refuse a model in seconds, before qonnx's clean-up and hls4ml's passes (minutes on a MobileNet).

Every node of the user's graph must be an op the converter takes (hls4ml's ONNX front end, qonnx's Quant
family) or one qonnx's clean-up folds away because all its inputs are constants (the Shape/Gather/Concat
arithmetic exporters write around Reshape). Anything else is a one-line exit-2 error naming the op, the
node as the user's file names it, and what is supported.
"""

from __future__ import annotations

import onnx

from fpgadl.core.errors import UsageError

# Ops the clean-up removes or rewrites into supported ones (Gemm -> MatMul, Flatten -> Reshape, ...).
CLEANED_OPS = ("Gemm", "Flatten", "Identity", "Dropout", "Shape", "Gather", "Unsqueeze", "Squeeze", "Cast")


def supported_ops() -> set[str]:
    from hls4ml.converters.onnx_to_hls import get_supported_onnx_layers

    return set(get_supported_onnx_layers()) | set(CLEANED_OPS)


def preflight(model: onnx.ModelProto, source: str) -> None:
    """Raise UsageError for the first node no later stage can take (constant sub-graphs are folded)."""
    supported = supported_ops()
    _check_not_only_a_quantizer(model, source)
    constant = {i.name for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" or (node.input and all(not i or i in constant for i in node.input)):
            constant.update(node.output)  # qonnx's FoldConstants evaluates it away
            continue
        if node.op_type == "AveragePool":
            _check_average_pool(node, source)
        if node.op_type not in supported:
            raise UsageError(
                f"{source}: node '{node.name or node.output[0]}' has op {node.op_type}, which fpgadl cannot convert "
                f"(supported: {', '.join(sorted(supported))})"
            )


def _check_not_only_a_quantizer(model: onnx.ModelProto, source: str) -> None:
    """A graph that is nothing but its input quantizer: hls4ml folds the Quant into the input port, the
    output is the input, and `myproject(...)` gets two parameters of the same name (it cannot compile)."""
    data_nodes = [n for n in model.graph.node if n.op_type not in ("Constant", "Identity")]
    if data_nodes and all(n.op_type in ("Quant", "BipolarQuant") for n in data_nodes):
        if any(n.input and n.input[0] == model.graph.input[0].name for n in data_nodes) and len(data_nodes) == 1:
            raise UsageError(
                f"{source}: the model is only its input quantizer (node '{data_nodes[0].name}'): the FPGA would "
                "compute nothing; valid: a model with at least one layer after the input quantizer"
            )


def _check_average_pool(node, source: str) -> None:
    """An AveragePool converts as a depthwise conv by 1/n (fpgadl.hls.rewrites.AvgPoolAsDepthwiseConv):
    only where n is a power of two (1/n exact) and the same for every output (qonnx 1.0 has no other)."""
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    n = 1
    for k in attrs.get("kernel_shape", []):
        n *= k
    uncounted = any(attrs.get("pads", [0])) and not attrs.get("count_include_pad", 0)
    odd = attrs.get("ceil_mode", 0) or any(d != 1 for d in attrs.get("dilations", [1]))
    if n & (n - 1) or uncounted or odd:
        raise UsageError(
            f"{source}: node '{node.name or node.output[0]}' is an AveragePool over {attrs.get('kernel_shape')}"
            f"{' with uncounted padding' if uncounted else ''}{' with ceil_mode/dilation' if odd else ''}; "
            "supported: a power-of-two window (2x2, 4x4, 2x4, ...) without padding, or MaxPool"
        )
