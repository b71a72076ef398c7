"""QONNX clean-up rewrites, each alone: what they change in the graph and that hls4ml then parses it.

The product path (export -> hls4ml -> csim == fast == torch) of a 1-D max-pooling net is tested by the
`lenet1d-mnist1d` recipe in tests/test_zoo.py."""

from __future__ import annotations

import numpy as np
import torch
from onnx import helper

from fpgadl.core.options import HlsOptions
from fpgadl.hls.convert import build_hls_config, clean, load_onnx
from fpgadl.hls.export import export_qonnx_file
from fpgadl.hls.project import quiet
from fpgadl.hls.rewrites import MaxPool1dAs2d
from fpgadl.ml.recipes import QuantConfig
from fpgadl.zoo.layers import dense_head, quant_activation, quant_conv, quant_input


def _maxpool_net(tmp_path, kernel: int = 3, stride: int = 2, padding: int = 1):
    """input quantizer -> stride-2 conv (24 -> 12) -> ReLU -> MaxPool1d(kernel, stride, padding) -> dense."""
    quant = QuantConfig()
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        quant_input(quant),
        quant_conv(1, 1, 4, 3, quant, padding=1, stride=2),
        quant_activation("relu", quant),
        torch.nn.MaxPool1d(kernel, stride=stride, padding=padding),
        *dense_head(4 * 6, [], 5, quant, 0.0),
    ).eval()
    with torch.no_grad():
        model(torch.randn(32, 1, 24))
    export_qonnx_file(model, (1, 24), tmp_path / "m.onnx")
    return load_onnx(tmp_path / "m.onnx")


def _attrs(node) -> dict:
    return {a.name: list(helper.get_attribute_value(a)) for a in node.attribute if a.ints}


def test_maxpool1d_becomes_2d_pooling_over_length_by_one(tmp_path):
    mw = clean(_maxpool_net(tmp_path), "m.onnx")  # clean() runs the rewrite
    pools = [n for n in mw.graph.node if n.op_type == "MaxPool"]
    assert len(pools) == 1
    pool = pools[0]
    assert _attrs(pool) == {"kernel_shape": [3, 1], "strides": [2, 1], "pads": [1, 0, 1, 0], "dilations": [1, 1]}
    # conv stride 2: 24 -> 12 (channels-last N, L, C); pool k3 s2 p1: 12 -> 6, unchanged by the rewrite
    assert mw.get_tensor_shape(pool.input[0]) == [1, 12, 1, 4]
    assert mw.get_tensor_shape(pool.output[0]) == [1, 6, 1, 4]
    reshape_out = mw.find_consumer(pool.output[0])
    assert reshape_out.op_type == "Reshape" and mw.get_tensor_shape(reshape_out.output[0]) == [1, 6, 4]
    # a graph without 1-D pooling is left alone
    _, changed = MaxPool1dAs2d().apply(mw)
    assert changed is False


def test_hls4ml_parses_the_rewritten_pooling(tmp_path):
    import hls4ml

    mw = clean(_maxpool_net(tmp_path), "m.onnx")
    config = build_hls_config(mw, HlsOptions(), "global_in", None)
    with quiet():
        hls_model = hls4ml.converters.convert_from_onnx_model(
            mw, output_dir=str(tmp_path / "prj"), hls_config=config, backend="Vitis", io_type="io_parallel"
        )
    pool = next(layer for layer in hls_model.get_layers() if "Pooling" in layer.class_name)
    assert pool.class_name == "Pooling2D" and pool.get_attr("pool_op") == "Max"
    geometry = [pool.get_attr(k) for k in ("in_height", "in_width", "n_filt", "pool_height", "stride_height")]
    assert geometry == [12, 1, 4, 3, 2]
    assert [pool.get_attr(k) for k in ("pad_top", "pad_bottom", "out_height")] == [1, 1, 6]
    assert np.prod(hls_model.get_output_variables()[0].shape) == 5


def _execute(model, x: np.ndarray) -> np.ndarray:
    from qonnx.core.onnx_exec import execute_onnx

    return execute_onnx(model, {model.graph.input[0].name: x})[model.graph.output[0].name]


def test_average_pools_become_depthwise_convs_that_compute_the_same_means():
    from onnx import TensorProto, numpy_helper
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    from fpgadl.hls.rewrites import AvgPoolAsDepthwiseConv, ReduceMeanAsGlobalAveragePool

    nodes = [
        helper.make_node("AveragePool", ["x"], ["a"], kernel_shape=[2, 4], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["x"], ["g"]),
        helper.make_node("ReduceMean", ["x", "axes"], ["r"], keepdims=1),
        helper.make_node("Add", ["g", "r"], ["gr"]),
        helper.make_node("Flatten", ["a"], ["af"]),
        helper.make_node("Flatten", ["gr"], ["grf"]),
        helper.make_node("Concat", ["af", "grf"], ["y"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "pools",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array([2, 3], np.int64), "axes")],
    )
    model = cleanup_model(ModelWrapper(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])))
    x = np.round(np.random.default_rng(0).standard_normal((1, 3, 4, 8)) * 64).astype(np.float32) / 64
    before = _execute(model, x)
    after = model.transform(ReduceMeanAsGlobalAveragePool()).transform(AvgPoolAsDepthwiseConv())
    assert sorted(n.op_type for n in after.graph.node if n.op_type in ("Conv", "AveragePool", "ReduceMean")) == [
        "Conv",
        "Conv",
        "Conv",
    ]
    assert np.array_equal(_execute(after, x), before)  # on-grid values: every mean is exact in float32
