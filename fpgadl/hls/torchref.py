"""qonnx's execution of a cleaned QONNX graph, with its linear layers computed by torch, as the model does.

The probe's reference must compute what the user's torch model computes. Quant nodes, ReLU, pooling and
reshapes are exact in any library, but a float32 sum is not: a convolution or linear layer whose sum
needs more than float32's 24 bits (a float, unquantized bias makes every biased sum such a one) is
rounded in an order that belongs to the library. onnxruntime's Conv/MatMul-then-Add rounds once where
torch's convolution accumulates onto the bias (measured on a per-channel mean/std CNN: torch's conv
output differs from the once-rounded sum on 41% of values, which moves the next quantizer on 0.5% of
rows). So Conv nodes and MatMul nodes (with the float bias Add that follows them) run through
`torch.nn.functional.conv{1,2}d` / `linear` with the weights in torch's own layout, float32, exactly as
Brevitas' QuantConv/QuantLinear call them; every other node runs in qonnx as before.
"""

from __future__ import annotations

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from fpgadl.hls.rewrites import node_attributes

CHANNELS_LAST = "qonnx.custom_op.channels_last"


def _float_bias(mw: ModelWrapper, node, width: int) -> tuple[object, str] | None:
    """(the Add that adds a constant [width] vector to the node's output, that vector's name), if any."""
    consumers = mw.find_consumers(node.output[0]) or []
    if len(consumers) != 1 or consumers[0].op_type != "Add":
        return None
    add = consumers[0]
    other = next((i for i in add.input if i != node.output[0]), None)
    bias = mw.get_initializer(other) if other else None
    if bias is None or np.asarray(bias).size != width or np.asarray(bias).shape[-1] != width:
        return None
    return add, other


def is_constant(mw: ModelWrapper, name: str) -> bool:
    """A constant, or a Quant of one (the weights of a QuantLinear)."""
    if mw.get_initializer(name) is not None:
        return True
    producer = mw.find_producer(name)
    return producer is not None and producer.op_type == "Quant" and mw.get_initializer(producer.input[0]) is not None


def _linear(mw: ModelWrapper, node, ctx: dict, keep_sum: bool) -> str | None:
    """MatMul(x, W) [+ b] as torch's `F.linear(x, W.T, b)`; returns the last tensor it wrote (None: not a
    linear layer). `keep_sum`: the MatMul's own output (the sum before the bias) is written too, for
    `fpgadl diff` (one more GEMM)."""
    import torch

    if not is_constant(mw, node.input[1]) or is_constant(mw, node.input[0]) or np.ndim(ctx[node.input[1]]) != 2:
        return None
    x = torch.from_numpy(np.asarray(ctx[node.input[0]], dtype=np.float32))
    weight = torch.from_numpy(np.ascontiguousarray(np.asarray(ctx[node.input[1]], dtype=np.float32).T))
    bias = _float_bias(mw, node, weight.shape[0])
    with torch.no_grad():
        if bias is None or keep_sum:
            ctx[node.output[0]] = torch.nn.functional.linear(x, weight).numpy()
        if bias is None:
            return node.output[0]
        b = torch.from_numpy(np.asarray(ctx[bias[1]], dtype=np.float32).reshape(-1))
        ctx[bias[0].output[0]] = torch.nn.functional.linear(x, weight, b).numpy()
    return bias[0].output[0]


def _conv(mw: ModelWrapper, node, ctx: dict) -> str | None:
    """Conv (ONNX or qonnx's channels-last) as torch's `F.conv1d/conv2d` on NC(H)W; None if torch cannot."""
    import torch

    attrs = node_attributes(node)
    kernel = list(attrs.get("kernel_shape", []))
    pads = list(attrs.get("pads", [0] * 2 * len(kernel)))
    half = len(pads) // 2
    if len(kernel) not in (1, 2) or pads[:half] != pads[half:] or attrs.get("auto_pad", b"NOTSET") != b"NOTSET":
        return None
    x, w = np.asarray(ctx[node.input[0]], dtype=np.float32), np.asarray(ctx[node.input[1]], dtype=np.float32)
    last = node.domain == CHANNELS_LAST
    if last:  # qonnx's channels-last Conv holds its input and its weights (O, H, W, I) channels-last
        x, w = np.moveaxis(x, -1, 1), np.moveaxis(w, -1, 1)
    w = torch.from_numpy(np.ascontiguousarray(w))
    b = torch.from_numpy(np.asarray(ctx[node.input[2]], dtype=np.float32)) if len(node.input) > 2 else None
    conv = torch.nn.functional.conv1d if len(kernel) == 1 else torch.nn.functional.conv2d
    # torch computes a batch of one with another kernel (measured, torch 2.13 CPU: conv2d of one row rounds
    # the biased sum once, a batch of two or more accumulates onto the bias in oneDNN and differs on 18% of
    # values); models are run on batches, and `fpgadl diff` runs rows one by one: a lone row goes in twice
    rows = len(x)
    if rows == 1:
        x = np.concatenate([x, x])
    with torch.no_grad():
        y = conv(
            torch.from_numpy(np.ascontiguousarray(x)),
            w,
            b,
            stride=list(attrs.get("strides", [1] * len(kernel))),
            padding=pads[:half],
            dilation=list(attrs.get("dilations", [1] * len(kernel))),
            groups=attrs.get("group", 1),
        ).numpy()[:rows]
    ctx[node.output[0]] = np.ascontiguousarray(np.moveaxis(y, 1, -1)) if last else y
    return node.output[0]


def execute_like_torch(mw: ModelWrapper, inputs: dict, return_full_exec_context: bool = False) -> dict:
    """`qonnx.core.onnx_exec.execute_onnx` with Conv and MatMul(+bias) nodes computed by torch."""
    from qonnx.core.onnx_exec import execute_node
    from qonnx.util.basic import get_preferred_qonnx_opset

    ctx = mw.make_empty_exec_context()
    ctx.update(inputs)
    opsets = mw.get_opset_imports()
    fused: set[str] = set()  # outputs of bias Adds computed with their MatMul
    for node in mw.graph.node:
        if node.output[0] in fused:
            continue
        wrote = None
        if node.op_type == "MatMul":
            wrote = _linear(mw, node, ctx, keep_sum=return_full_exec_context)
        elif node.op_type == "Conv" and node.domain in ("", CHANNELS_LAST):
            wrote = _conv(mw, node, ctx)
        if wrote is None:
            execute_node(node, ctx, mw.graph, opsets.get(node.domain, get_preferred_qonnx_opset()))
        elif wrote != node.output[0]:
            fused.add(wrote)
    if return_full_exec_context:
        return ctx
    return {o.name: ctx[o.name] for o in mw.graph.output}
