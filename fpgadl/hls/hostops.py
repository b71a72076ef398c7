"""Host-side pre-processing: elementwise float ops between the graph input and the input quantizer.

Models such as bnn_pynq's TFC/CNV compute `2x - 1` (or `x / 255`, mean/std normalisation) in float before
their first quantizer. In the firmware those ops would run in hls4ml's default ap_fixed<16,6> (truncating
and wrapping) and the port could not take the quantizer's type. `SplitHostOps` cuts them out of the QONNX
graph so the input port is the quantizer's own type; `apply_host_ops` runs them on the host in float32, in
the graph's order, which is what torch computes (IEEE float32, one rounding per op). The ops are recorded
in the cleaned model's metadata and in `fpgadl.json` (`host_ops`), and named in the summary.
"""

from __future__ import annotations

import json

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation

HOST_OPS = ("Mul", "Add", "Sub", "Div")
METADATA_KEY = "fpgadl_host_ops"


def _constant_operand(model: ModelWrapper, node, data: str) -> tuple[np.ndarray | None, bool]:
    """The node's constant operand and whether it comes first (`c - x`, `c / x`)."""
    if len(node.input) != 2 or data not in node.input:
        return None, False
    first = node.input[0] != data
    other = node.input[0] if first else node.input[1]
    value = model.get_initializer(other)
    return (None, False) if value is None else (np.asarray(value, dtype=np.float32), first)


class SplitHostOps(Transformation):
    """Remove the chain of elementwise constant ops that starts at the graph input and ends at a Quant."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        inp = model.graph.input[0].name
        shape = model.get_tensor_shape(inp)
        ops, chain, tensor, reshaped = [], [], inp, False
        while True:
            consumers = model.find_consumers(tensor) or []
            scalars = all(np.asarray(op["value"]).size == 1 for op in ops)
            if len(consumers) == 1 and consumers[0].op_type in ("Reshape", "Flatten") and scalars:
                # bnn_pynq flattens before `2x - 1` (a user's model may flatten after it): scalar ops commute
                # with the reshape, which stays in the graph
                tensor, shape = consumers[0].output[0], model.get_tensor_shape(consumers[0].output[0])
                reshaped = True
                continue
            if len(consumers) != 1 or consumers[0].op_type not in HOST_OPS:
                break
            node = consumers[0]
            value, const_first = _constant_operand(model, node, tensor)
            out_shape = model.get_tensor_shape(node.output[0])
            if value is None or (shape is not None and out_shape is not None and list(out_shape) != list(shape)):
                break
            if reshaped and value.size != 1:
                break  # after a reshape only scalar constants keep their meaning on the host's layout
            ops.append(
                {"op": node.op_type, "value": value.tolist(), "shape": list(value.shape), "const_first": const_first}
            )
            chain.append(node)
            tensor = node.output[0]
        consumers = model.find_consumers(tensor) or []
        if not chain or not consumers or any(c.op_type not in ("Quant", "BipolarQuant") for c in consumers):
            return model, False
        for node in chain:  # what read an op's output reads its data input (a reshape may sit in between)
            data = next(i for i in node.input if model.get_initializer(i) is None)
            for c in model.find_consumers(node.output[0]) or []:
                c.input[list(c.input).index(node.output[0])] = data
            model.graph.node.remove(node)
        previous = host_ops_of(model)
        model.set_metadata_prop(METADATA_KEY, json.dumps(previous + ops))
        return model, False


def host_ops_of(model: ModelWrapper, key: str = METADATA_KEY) -> list[dict]:
    text = model.get_metadata_prop(key)
    return json.loads(text) if text else []


POST_METADATA_KEY = "fpgadl_host_post_ops"


class SplitHostPostOps(Transformation):
    """Remove the chain of elementwise constant ops that ends at the graph output (bnn_pynq's final
    TensorNorm: Sub, Div, Mul, Add). hls4ml would fold the chain into one rounded scale and bias; on the
    host it runs in float32 in the graph's order, which is what torch computes, on the exact accumulator the
    firmware outputs. A lone Add is a float bias and stays (fpgadl.hls.audit's float32 rule covers it)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        out = model.graph.output[0]
        shape = model.get_tensor_shape(out.name)
        ops, chain, tensor = [], [], out.name
        while True:
            node = model.find_producer(tensor)
            if node is None or node.op_type not in HOST_OPS or len(model.find_consumers(tensor) or []) > 1:
                break
            data = next((i for i in node.input if model.get_initializer(i) is None), None)
            value, const_first = _constant_operand(model, node, data) if data else (None, False)
            if value is None or model.get_tensor_shape(data) != shape or model.find_producer(data) is None:
                break
            ops.insert(
                0, {"op": node.op_type, "value": value.tolist(), "shape": list(value.shape), "const_first": const_first}
            )
            chain.append(node)
            tensor = data
        if not chain or (len(ops) == 1 and ops[0]["op"] == "Add"):
            return model, False
        for node in chain:
            model.graph.node.remove(node)
        producer = model.find_producer(tensor)
        producer.output[list(producer.output).index(tensor)] = out.name
        model.set_metadata_prop(POST_METADATA_KEY, json.dumps(ops))
        return model, False


def describe(ops: list[dict]) -> str:
    """`2*x - 1` style: Mul(2), Sub(1)."""
    parts = []
    for op in ops:
        v = np.asarray(op["value"], dtype=np.float32)
        shown = f"{float(v.ravel()[0]):g}" if v.size == 1 else f"per-channel{list(v.shape)}"
        parts.append(f"{op['op']}({shown}{', constant first' if op['const_first'] else ''})")
    return ", ".join(parts)


def apply_host_ops(x: np.ndarray, ops: list[dict] | None) -> np.ndarray:
    """Run the recorded ops on a batch in the ONNX layout, in float32 as torch does."""
    if not ops:
        return x
    x = np.asarray(x, dtype=np.float32)
    for op in ops:
        c = np.asarray(op["value"], dtype=np.float32).reshape(op["shape"])
        a, b = (c, x) if op["const_first"] else (x, c)
        x = {"Mul": np.multiply, "Add": np.add, "Sub": np.subtract, "Div": np.divide}[op["op"]](a, b)
        x = x.astype(np.float32, copy=False)
    return x


def invert_host_ops(y: np.ndarray, ops: list[dict] | None) -> np.ndarray:
    """Approximate pre-image of port values (for generating probe inputs near the quantizer's ties)."""
    y = np.asarray(y, dtype=np.float64)
    for op in reversed(ops or []):
        c = np.asarray(op["value"], dtype=np.float64).reshape(op["shape"])
        first = op["const_first"]
        if op["op"] == "Mul":
            y = y / c
        elif op["op"] == "Add":
            y = y - c
        elif op["op"] == "Sub":
            y = c - y if first else y + c
        else:
            y = c / y if first else y * c
    return y.astype(np.float32)


class FoldConstantPowLikeTorch(Transformation):
    """Constant Pow/Sqrt nodes (TensorNorm's `(running_var + eps).pow(0.5)`, which the TorchScript exporter
    leaves unfolded) folded by torch itself, before qonnx's clean-up folds them with numpy: torch's float32
    sqrt/pow of a one-element tensor is not numpy's (measured: 3.3848307 vs 3.3848305 for 11.457078), and the
    host then divides by the value torch divides by."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        import torch

        for node in model.graph.node:
            if node.op_type not in ("Pow", "Sqrt"):
                continue
            values = [model.get_initializer(i) for i in node.input]
            if any(v is None or np.asarray(v).dtype != np.float32 for v in values):
                continue
            base = torch.from_numpy(np.array(values[0], dtype=np.float32))
            exponent = values[1] if node.op_type == "Pow" else None
            if exponent is not None and np.asarray(exponent).size != 1:
                continue  # torch's `.pow(0.5)` takes a Python scalar (its sqrt path); a tensor exponent is not it
            with torch.no_grad():
                out = torch.sqrt(base) if exponent is None else torch.pow(base, float(np.asarray(exponent).ravel()[0]))
            model.set_initializer(node.output[0], out.numpy().astype(np.float32))
            model.graph.node.remove(node)
            return model, True
        return model, False
