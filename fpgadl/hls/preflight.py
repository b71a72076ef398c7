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
    _check_not_only_a_sign(model, source)
    constant = {i.name for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" or (node.input and all(not i or i in constant for i in node.input)):
            constant.update(node.output)  # qonnx's FoldConstants evaluates it away
            continue
        if node.op_type == "AveragePool":
            _check_average_pool(node, source)
        if node.op_type == "ReduceMean" and _global_mean(model, node):
            continue  # a GlobalAveragePool (fpgadl.hls.rewrites.ReduceMeanAsGlobalAveragePool)
        if node.op_type not in supported:
            raise UsageError(
                f"{source}: node '{node.name or node.output[0]}' has op {node.op_type}, which fpgadl cannot convert "
                f"(supported: {', '.join(sorted(supported))})"
            )


def _check_not_only_a_sign(model: onnx.ModelProto, source: str) -> None:
    """A graph that is nothing but a BipolarQuant of its input: hls4ml folds the sign into the input port
    and the firmware differs (a Quant-only model converts: fpgadl.hls.convert.widen_port_of_quantizer_only_model)."""
    data_nodes = [n for n in model.graph.node if n.op_type not in ("Constant", "Identity")]
    if len(data_nodes) == 1 and data_nodes[0].op_type == "BipolarQuant":
        raise UsageError(
            f"{source}: the model is only a BipolarQuant of its input (node '{data_nodes[0].name}'), which hls4ml "
            "folds into the input port; valid: a model with a layer after the sign, or a multi-bit Quant alone"
        )


def _check_average_pool(node, source: str) -> None:
    """An AveragePool converts as a depthwise conv by 1/n (fpgadl.hls.rewrites.AvgPoolAsDepthwiseConv):
    only where n is a power of two (1/n exact) and the same for every output (qonnx 1.0 has no other)."""
    from fpgadl.hls.rewrites import node_attributes

    attrs = node_attributes(node)
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


def _global_mean(model: onnx.ModelProto, node) -> bool:
    """Axes known and kept: the clean-up makes it a GlobalAveragePool when they are the spatial ones, and
    `check_supported` names the node when they are not."""
    from fpgadl.hls.rewrites import node_attributes, reduce_mean_axes

    keep = node_attributes(node).get("keepdims", 1)
    return keep == 1 and bool(reduce_mean_axes(model.graph, node))
