"""QONNX graph rewrites hls4ml's ONNX front end needs after qonnx's clean-up (run by `fpgadl.hls.convert.clean`
after `ConvertToChannelsLastAndClean`; on graphs without Resize they change nothing).

qonnx's channels-last conversion does not know Resize: it leaves it channels-first, wrapped in
Transposes, with the RoI input empty (''). hls4ml 1.3.0 then cannot find the shape of input '' and its
Resize expects channels-last data. `ResizeToChannelsLast` moves the Transpose that follows a Resize above
it (nearest resizing commutes with a permutation of axes, with the scales permuted alike) and names the
RoI; `RemoveInverseTransposes` then drops Transpose pairs that cancel. The GAN generator
(`fpgadl.zoo.gan`) is exact in csim after these two.
"""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation


def _perm(node) -> list[int]:
    return list(helper.get_attribute_value(next(a for a in node.attribute if a.name == "perm")))


class ResizeToChannelsLast(Transformation):
    """Resize(x) -> Transpose(perm)  ==>  Transpose(perm)(x) -> Resize(scales[perm])."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        g = model.graph
        for index, node in enumerate(g.node):
            if node.op_type != "Resize":
                continue
            consumers = model.find_consumers(node.output[0]) or []
            if len(consumers) != 1 or consumers[0].op_type != "Transpose":
                continue
            transpose = consumers[0]
            perm = _perm(transpose)
            scales = model.get_initializer(node.input[2])
            if scales is None:
                continue
            scales_name = model.make_new_valueinfo_name()
            model.set_initializer(scales_name, np.asarray(scales)[perm].astype(np.float32))
            # hls4ml tests the RoI with `if value:`, so it must be a one-element array (zero: no RoI).
            roi_name = model.make_new_valueinfo_name()
            model.set_initializer(roi_name, np.zeros(1, np.float32))
            moved = model.make_new_valueinfo_name()
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            new_t = helper.make_node("Transpose", [node.input[0]], [moved], perm=perm, name=transpose.name)
            new_r = helper.make_node(
                "Resize", [moved, roi_name, scales_name], [transpose.output[0]], name=node.name, **attrs
            )
            g.node.remove(transpose)
            g.node.remove(node)
            g.node.insert(index, new_r)
            g.node.insert(index, new_t)
            return model, True
        return model, False


class RemoveInverseTransposes(Transformation):
    """Transpose(p) -> Transpose(q) with q o p = identity, and the first feeding only the second: removed."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        g = model.graph
        for first in g.node:
            if first.op_type != "Transpose":
                continue
            consumers = model.find_consumers(first.output[0]) or []
            if len(consumers) != 1 or consumers[0].op_type != "Transpose":
                continue
            second = consumers[0]
            p, q = _perm(first), _perm(second)
            if [p[i] for i in q] != list(range(len(p))):
                continue
            if second.output[0] in [o.name for o in g.output]:
                continue
            for n in g.node:
                for i, name in enumerate(n.input):
                    if name == second.output[0]:
                        n.input[i] = first.input[0]
            g.node.remove(first)
            g.node.remove(second)
            return model, True
        return model, False


class GemmZeroBias(Transformation):
    """Gemm(A, B) without C (torch's dynamo exporter writes bias-free Linear layers so) gets C = 0.

    qonnx's GemmToMatMul reads `input[2]` unconditionally (IndexError on a two-input Gemm); a zero bias
    is what ONNX defines a missing C to be, and hls4ml folds it into the Dense layer's bias."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        changed = False
        for node in model.graph.node:
            if node.op_type != "Gemm" or len(node.input) >= 3:
                continue
            b_shape = model.get_tensor_shape(node.input[1])
            if b_shape is None:
                continue
            trans_b = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "transB"), 0)
            bias = model.make_new_valueinfo_name()
            model.set_initializer(bias, np.zeros(b_shape[0] if trans_b else b_shape[1], np.float32))
            node.input.append(bias)
            changed = True
        return model, changed
