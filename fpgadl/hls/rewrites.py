"""QONNX graph rewrites hls4ml's ONNX front end needs after qonnx's clean-up (run by `fpgadl.hls.convert.clean`
after `ConvertToChannelsLastAndClean`; on graphs without Resize or 1-D pooling they change nothing).

qonnx's channels-last conversion does not know Resize: it leaves it channels-first, wrapped in
Transposes, with the RoI input empty (''). hls4ml 1.3.0 then cannot find the shape of input '' and its
Resize expects channels-last data. `ResizeToChannelsLast` moves the Transpose that follows a Resize above
it (nearest resizing commutes with a permutation of axes, with the scales permuted alike) and names the
RoI; `RemoveInverseTransposes` then drops Transpose pairs that cancel. The GAN generator
(`fpgadl.zoo.gan`) is exact in csim after these two. `MaxPool1dAs2d` deploys 1-D max pooling, which
hls4ml's ONNX front end mis-parses, as the equivalent 2-D pooling.
"""

from __future__ import annotations

import json

import numpy as np
from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation


def node_attributes(node) -> dict:
    """An ONNX node's attributes by name, as Python values."""
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _perm(node) -> list[int]:
    return list(node_attributes(node)["perm"])


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
            attrs = node_attributes(node)
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


ELEMENTWISE = ("Add", "Sub", "Mul", "Div")


class SinkTransposes(Transformation):
    """Transpose(p) -> op  ==>  op -> Transpose(p), for ops that commute with a permutation of axes.

    qonnx's channels-last conversion stops at a Resize: a model whose input quantizer feeds an upsampling
    keeps the input Transpose in front of the quantizer (hls4ml then finds no input quantizer and no shape
    for the Resize's RoI). Per-tensor quantizers and ReLU are elementwise, and nearest resizing commutes
    with a permutation of axes when its scales are permuted alike, so the Transpose moves below them, to
    the output or to a Transpose that cancels it (RemoveInverseTransposes). Per-channel float constants
    (mean/std normalisation, (1, C, 1, 1)) left channels-first by qonnx move the same way (hls4ml cannot
    broadcast a 4-D constant against its 3-D tensors); scalar ones are left to qonnx."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        g = model.graph
        for transpose in g.node:
            if transpose.op_type != "Transpose":
                continue
            consumers = model.find_consumers(transpose.output[0]) or []
            if len(consumers) != 1 or not self._commutes(model, consumers[0], transpose.output[0]):
                continue
            node, perm = consumers[0], _perm(transpose)
            if node.op_type == "Resize":
                scales = np.asarray(model.get_initializer(node.input[2]))[np.argsort(perm)].astype(np.float32)
                scales_name, roi_name = model.make_new_valueinfo_name(), model.make_new_valueinfo_name()
                model.set_initializer(scales_name, scales)
                model.set_initializer(roi_name, np.zeros(1, np.float32))  # hls4ml tests the RoI with `if value:`
                node.input[1], node.input[2] = roi_name, scales_name
            if node.op_type in ELEMENTWISE:
                # op(T_p(x), c) = T_p(op(x, c')): c' is c with the inverse permutation, leading 1s dropped
                # (hls4ml broadcasts a constant against the tensor without its batch axis)
                c = np.asarray(model.get_initializer(node.input[1]))
                c = c.reshape([1] * (len(perm) - c.ndim) + list(c.shape)).transpose(np.argsort(perm))
                const_name = model.make_new_valueinfo_name()
                model.set_initializer(const_name, c.reshape(c.shape[next(i for i, d in enumerate(c.shape) if d > 1) :]))
                node.input[1] = const_name
            moved = model.make_new_valueinfo_name()
            shape = model.get_tensor_shape(transpose.input[0])
            if shape is not None:  # qonnx's channels-last ops infer their shapes from their inputs' recorded ones
                factors = scales if node.op_type == "Resize" else np.ones(len(shape))
                model.set_tensor_shape(moved, [int(d * f) for d, f in zip(shape, factors)])
            node.input[0], out = transpose.input[0], node.output[0]
            node.output[0], transpose.input[0], transpose.output[0] = moved, moved, out
            g.node.remove(transpose)
            g.node.insert(list(g.node).index(node) + 1, transpose)
            return model, True
        return model, False

    @staticmethod
    def _commutes(model: ModelWrapper, node, data: str) -> bool:
        if not node.input or node.input[0] != data:
            return False
        perm = _perm(model.find_producer(data))
        if node.op_type in ("Relu", "BipolarQuant") and len(node.input) <= 2:
            return node.op_type == "Relu" or np.size(model.get_initializer(node.input[1])) == 1
        if node.op_type in ELEMENTWISE:
            c = model.get_initializer(node.input[1]) if len(node.input) == 2 else None
            return c is not None and np.size(c) > 1 and np.ndim(c) <= len(perm)
        if node.op_type == "Quant":
            params = [model.get_initializer(i) for i in node.input[1:]]
            return all(p is not None and np.size(p) == 1 for p in params)
        if node.op_type == "Resize" and len(node.input) == 3:
            if perm != [0, len(perm) - 1, *range(1, len(perm) - 1)]:
                return False  # only a Resize fed channels-first moves (ResizeToChannelsLast moves the others up)
            mode = node_attributes(node).get("mode", b"nearest")
            roi = model.get_initializer(node.input[1]) if node.input[1] else None
            return (
                mode == b"nearest"
                and model.get_initializer(node.input[2]) is not None
                and (roi is None or not np.any(roi))
            )
        return False


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


class MaxPool1dAs2d(Transformation):
    """A 1-D channels-last MaxPool (N, L, C) becomes Reshape -> 2-D MaxPool over (L, 1) -> Reshape.

    hls4ml 1.3.0's ONNX pooling handler reads a 3-D input as (N, C, L) although the graph is channels-last
    (N, L, C), and never sets the 1-D layer's pad_left/pad_right ("Attribute pad_left of layer MaxPool_0
    (Pooling1D) not set"); its 2-D path is correct. A 1-D window over L is the 2-D window (k, 1) over
    (L, 1), so the same maxima are taken: the arithmetic does not change, only the layer kind.
    """

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        g = model.graph
        for index, node in enumerate(g.node):
            shape = model.get_tensor_shape(node.input[0]) if node.op_type == "MaxPool" else None
            if shape is None or len(shape) != 3 or node.domain != "qonnx.custom_op.channels_last":
                continue
            out_shape = model.get_tensor_shape(node.output[0])
            attrs = node_attributes(node)
            (k,), (s,) = attrs["kernel_shape"], attrs.get("strides", [1])
            pad_begin, pad_end = attrs.get("pads", [0, 0])
            attrs.update(
                kernel_shape=[k, 1],
                strides=[s, 1],
                pads=[pad_begin, 0, pad_end, 0],
                dilations=[*attrs.get("dilations", [1]), 1],
            )
            names = [model.make_new_valueinfo_name() for _ in range(4)]
            in_4d, out_4d, shape_in, shape_out = names
            shape_4d = [shape[0], shape[1], 1, shape[2]]
            model.set_initializer(shape_in, np.array(shape_4d, np.int64))
            model.set_initializer(shape_out, np.array(out_shape, np.int64))
            # qonnx infers a channels-last MaxPool's shape from its input's recorded one
            model.set_tensor_shape(in_4d, shape_4d)
            model.set_tensor_shape(out_4d, [out_shape[0], out_shape[1], 1, out_shape[2]])
            new_nodes = [
                helper.make_node("Reshape", [node.input[0], shape_in], [in_4d], name=f"{node.name}_to_2d"),
                helper.make_node("MaxPool", [in_4d], [out_4d], name=node.name, domain=node.domain, **attrs),
                helper.make_node("Reshape", [out_4d, shape_out], [node.output[0]], name=f"{node.name}_to_1d"),
            ]
            g.node.remove(node)
            for offset, new in enumerate(new_nodes):
                g.node.insert(index + offset, new)
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
            trans_b = node_attributes(node).get("transB", 0)
            bias = model.make_new_valueinfo_name()
            model.set_initializer(bias, np.zeros(b_shape[0] if trans_b else b_shape[1], np.float32))
            node.input.append(bias)
            changed = True
        return model, changed


def _pot(values: np.ndarray) -> bool:
    lg = np.log2(np.abs(np.asarray(values, dtype=np.float64)))
    return bool(np.all(np.isfinite(lg)) and np.all(lg == np.round(lg)))


CHANNEL_SCALES_KEY = "fpgadl_channel_scales"


class FactorChannelScales(Transformation):
    """A constant weight Quant with per-output-channel, non-power-of-two scales s (FINN's LOG_FP weights):
    MatMul/Conv(x, Quant(W, s)) + b  ==>  MatMul/Conv(x, Quant(q, 1)) * s + b, with q the integer weights.

    hls4ml 1.3.0 turns such a Quant into an ApplyAlpha on the weight path that it cannot move below the
    MatMul/Conv (a per-element scale), and crashes later (IndexError in layers.py). q * s is what the
    Quant computes, so the product is the model's; only where float32 rounds the sums differs (the Mul is
    a float constant op: never claimed exact, measured by the probe). Runs on the channels-last graph, where
    the output channel is the last axis of the MatMul/Conv output."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        from qonnx.custom_op.general.intquant import int_quant

        g = model.graph
        for quant in g.node:
            consumer = self._weight_consumer(model, quant)
            if consumer is None:
                continue
            w, s, zero, bits = (model.get_initializer(i) for i in quant.input)
            attrs = node_attributes(quant)
            rounding = attrs.get("rounding_mode", "ROUND")
            rounding = rounding.decode() if isinstance(rounding, bytes) else rounding
            wq = int_quant(w, s, zero, bits, attrs.get("signed", 1), attrs.get("narrow", 0), rounding)
            q = np.rint(wq / s).astype(np.float32)  # exact: wq is s * an integer of at most `bits` bits
            q_name, one_name, scale_name = (model.make_new_valueinfo_name() for _ in range(3))
            model.set_initializer(q_name, q)
            model.set_initializer(one_name, np.array(1.0, np.float32))
            model.set_initializer(scale_name, np.asarray(s, np.float32).reshape(-1))
            quant.input[0], quant.input[1] = q_name, one_name
            out = consumer.output[0]
            product = model.make_new_valueinfo_name()
            consumer.output[0] = product
            tail = [helper.make_node("Mul", [product, scale_name], [out], name=f"{consumer.name}_channel_scale")]
            if consumer.op_type == "Conv" and len(consumer.input) == 3 and consumer.input[2]:
                # conv(x, q) * s + b: the bias is added after the scale, as the Quant's product had it
                scaled = model.make_new_valueinfo_name()
                tail[0].output[0] = scaled
                tail.append(helper.make_node("Add", [scaled, consumer.input[2]], [out], name=f"{consumer.name}_bias"))
                del consumer.input[2]
            index = list(g.node).index(consumer)
            for offset, node in enumerate(tail):
                g.node.insert(index + 1 + offset, node)
            # the converter still names the layer: its scales are not powers of two
            factored = json.loads(model.get_metadata_prop(CHANNEL_SCALES_KEY) or "[]")
            model.set_metadata_prop(CHANNEL_SCALES_KEY, json.dumps([*factored, consumer.name]))
            return model, True
        return model, False

    @staticmethod
    def _weight_consumer(model: ModelWrapper, quant):
        """The MatMul/Conv whose weight the Quant makes, if its scales vary per channel and are not 2^k."""
        if quant.op_type != "Quant" or any(model.get_initializer(i) is None for i in quant.input):
            return None
        s, zero = model.get_initializer(quant.input[1]), model.get_initializer(quant.input[2])
        if np.all(s == np.ravel(s)[0]) or _pot(s) or np.any(zero != 0):
            return None
        if np.count_nonzero(np.asarray(s).shape != np.ones(np.ndim(s))) > 1:
            return None  # more than one axis of scales: not per output channel
        consumers = model.find_consumers(quant.output[0]) or []
        if len(consumers) != 1 or consumers[0].op_type not in ("MatMul", "Conv"):
            return None
        consumer = consumers[0]
        if consumer.input[1] != quant.output[0]:
            return None
        shape = np.shape(s)
        # MatMul's weight is (in, out): scales (1, out); a Conv's is (out, ...): scales (out, 1, ...)
        axis = len(shape) - 1 if consumer.op_type == "MatMul" else 0
        if shape[axis] != np.size(s):
            return None
        return consumer


def pool_window(model: ModelWrapper, node) -> list[int] | None:
    """The (height, width, ...) window an AveragePool/GlobalAveragePool node averages, or None when the
    divisor is not the same for every output (padding that is not counted)."""
    if node.op_type == "GlobalAveragePool":
        shape = model.get_tensor_shape(node.input[0])
        return None if shape is None else list(shape[2:])
    attrs = node_attributes(node)
    if any(attrs.get("pads", [0])) and not attrs.get("count_include_pad", 0):
        return None
    if attrs.get("ceil_mode", 0) or any(d != 1 for d in attrs.get("dilations", [1])):
        return None
    return list(attrs["kernel_shape"])


class AvgPoolAsDepthwiseConv(Transformation):
    """AveragePool / GlobalAveragePool over a power-of-two window of n pixels ==> a depthwise Conv whose
    weights are all 1/n, given by a Quant (scale 1/n, integer 1) so hls4ml types them exactly.

    qonnx 1.0's channels-last conversion has no AveragePool, and hls4ml's pooling divides its sum in a
    type that rounds; the sum of n products by 2^-k is exact in fixed point (the precision audit sizes
    the accumulator), which is the mean torch computes wherever float32 holds it. Runs before the
    channels-last conversion, which knows Conv."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        g = model.graph
        for index, node in enumerate(g.node):
            if node.op_type not in ("AveragePool", "GlobalAveragePool"):
                continue
            window, shape = pool_window(model, node), model.get_tensor_shape(node.input[0])
            n = int(np.prod(window)) if window else 0
            if not window or shape is None or n & (n - 1):
                continue
            attrs = node_attributes(node)
            channels = shape[1]
            names = [model.make_new_valueinfo_name() for _ in range(6)]
            weight, scale, zero, bits, quantized, out = names
            model.set_initializer(weight, np.full([channels, 1, *window], 1.0 / n, np.float32))
            model.set_initializer(scale, np.array(1.0 / n, np.float32))
            model.set_initializer(zero, np.array(0.0, np.float32))
            model.set_initializer(bits, np.array(2.0, np.float32))
            model.set_tensor_shape(quantized, [channels, 1, *window])  # the channels-last pass needs every shape
            quant = helper.make_node(
                "Quant",
                [weight, scale, zero, bits],
                [quantized],
                domain="qonnx.custom_op.general",
                signed=0,
                narrow=0,
                rounding_mode="ROUND",
                name=f"{node.name}_window",
            )
            conv = helper.make_node(
                "Conv",
                [node.input[0], quantized],
                [node.output[0]],
                name=node.name,
                group=channels,
                kernel_shape=window,
                strides=attrs.get("strides", [1] * len(window)),
                pads=attrs.get("pads", [0] * 2 * len(window)),
                dilations=[1] * len(window),
            )
            g.node.remove(node)
            g.node.insert(index, conv)
            g.node.insert(index, quant)
            return model, True
        return model, False


def reduce_mean_axes(graph, node) -> list[int] | None:
    """The axes a ReduceMean averages (attribute before opset 18, a constant input since), or None."""
    attrs = node_attributes(node)
    if "axes" in attrs:
        return list(attrs["axes"])
    if len(node.input) < 2 or not node.input[1]:
        return None
    from onnx import numpy_helper

    for init in graph.initializer:
        if init.name == node.input[1]:
            return [int(a) for a in numpy_helper.to_array(init).ravel()]
    for const in graph.node:
        if const.op_type == "Constant" and const.output[0] == node.input[1]:
            value = next(a for a in const.attribute if a.name == "value")
            return [int(a) for a in numpy_helper.to_array(value.t).ravel()]
    return None


def is_global_mean(graph, node, rank: int) -> bool:
    """ReduceMean over every spatial axis of an (N, C, ...) tensor, keeping them: a GlobalAveragePool."""
    axes = reduce_mean_axes(graph, node)
    keep = node_attributes(node).get("keepdims", 1)
    return axes is not None and keep == 1 and rank > 2 and sorted(a % rank for a in axes) == list(range(2, rank))


class ReduceMeanAsGlobalAveragePool(Transformation):
    """torch's dynamo exporter writes AdaptiveAvgPool2d(1) as ReduceMean over (H, W): the same mean."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        g = model.graph
        for index, node in enumerate(g.node):
            shape = model.get_tensor_shape(node.input[0]) if node.op_type == "ReduceMean" else None
            if shape is None or not is_global_mean(g, node, len(shape)):
                continue
            pool = helper.make_node("GlobalAveragePool", [node.input[0]], [node.output[0]], name=node.name)
            g.node.remove(node)
            g.node.insert(index, pool)
            return model, True
        return model, False
