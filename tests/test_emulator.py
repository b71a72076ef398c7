"""The fast engine against hls4ml's C simulation: exact equality on real outputs.

Every model is built here (Brevitas -> QONNX -> hls4ml, or hls4ml's PyTorch front end), compiled
once per module for csim, and both engines run on the same inputs, including values far outside
the input type's range so saturation and wrap-around paths run.  Overrides with narrow
accumulators and result types exercise per-product rounding, step-wise saturation and WRAP.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import tracemalloc
import warnings
from pathlib import Path

import brevitas.nn as qnn
import hls4ml
import numpy as np
import pytest
import torch
from brevitas.export import export_qonnx
from brevitas.quant import (
    Int8ActPerTensorFixedPoint,
    Int8Bias,
    Int8WeightPerTensorFixedPoint,
    Int8WeightPerTensorFloat,
    Uint8ActPerTensorFixedPoint,
)
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
from qonnx.transformation.gemm_to_matmul import GemmToMatMul
from qonnx.util.cleanup import cleanup_model

from fpgadl.emulator.kernels import UnsupportedLayerError, build_kernel
from fpgadl.emulator.runner import emulate, plan
from fpgadl.hls.csim_build import use_shared_header

N_SAMPLES = 10_000
HAVE_COMPILER = shutil.which("g++") is not None
needs_csim = pytest.mark.skipif(not HAVE_COMPILER, reason="csim needs g++")


# ---- model builders ----------------------------------------------------------------------------


class QuantMLP(torch.nn.Module):
    def __init__(self, n_in=64, n_hidden=32, n_out=10):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, return_quant_tensor=True)
        self.fc1 = qnn.QuantLinear(
            n_in,
            n_hidden,
            bias=True,
            weight_quant=Int8WeightPerTensorFixedPoint,
            bias_quant=Int8Bias,
            return_quant_tensor=True,
        )
        self.relu = qnn.QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, return_quant_tensor=True)
        self.fc2 = qnn.QuantLinear(
            n_hidden,
            n_out,
            bias=True,
            weight_quant=Int8WeightPerTensorFixedPoint,
            bias_quant=Int8Bias,
            return_quant_tensor=False,
        )

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(self.inp(x))))


class QuantCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, return_quant_tensor=True)
        self.conv = qnn.QuantConv2d(
            1,
            4,
            3,
            bias=True,
            weight_quant=Int8WeightPerTensorFixedPoint,
            bias_quant=Int8Bias,
            return_quant_tensor=True,
        )
        self.relu = qnn.QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, return_quant_tensor=True)
        self.pool = torch.nn.MaxPool2d(2)
        self.fc = qnn.QuantLinear(
            4 * 3 * 3,
            10,
            bias=True,
            weight_quant=Int8WeightPerTensorFixedPoint,
            bias_quant=Int8Bias,
            return_quant_tensor=False,
        )

    def forward(self, x):
        return self.fc(self.pool(self.relu(self.conv(self.inp(x)))).flatten(1))


def _calibrated(module, shape, seed=0):
    torch.manual_seed(seed)
    module.train()
    with torch.no_grad():
        for _ in range(4):
            module(torch.randn(32, *shape) * 2)
    return module.eval()


def _input_precision(module, shape) -> str:
    """The input quantizer's type: hls4ml's Input then equals it and csim == torch exactly."""
    with torch.no_grad():
        q = module.inp(torch.zeros(1, *shape))
    frac = -int(np.log2(float(q.scale)))
    width = int(q.bit_width)
    assert float(q.scale) == 2.0**-frac  # power-of-two (FixedPoint) quantizer
    return f"fixed<{width},{width - frac},RND_CONV,SAT>"


def _clean_qonnx(module, shape, out_dir: Path) -> ModelWrapper:
    out_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_qonnx(module, torch.randn(1, *shape), export_path=str(out_dir / "model.onnx"))
        model = cleanup_model(ModelWrapper(str(out_dir / "model.onnx")))
        model = model.transform(ConvertToChannelsLastAndClean())
        model = model.transform(GemmToMatMul())
        model = cleanup_model(model)
    model.save(str(out_dir / "clean.onnx"))
    return model


def _qonnx_config(model, input_precision=None, overrides=None):
    config = hls4ml.utils.config.config_from_onnx_model(
        model, granularity="name", backend="Vitis", default_precision="fixed<16,6>"
    )
    if input_precision:
        config["LayerName"]["global_in"]["Precision"]["result"] = input_precision
    for layer, prec in (overrides or {}).items():
        config["LayerName"].setdefault(layer, {}).setdefault("Precision", {}).update(prec)
    return config


def _qonnx_to_hls(model, out_dir: Path, config):
    return hls4ml.converters.convert_from_onnx_model(
        model, output_dir=str(out_dir / "prj"), io_type="io_parallel", backend="Vitis", hls_config=config
    )


def _compiled(hls_model):
    use_shared_header(hls_model).compile()
    return hls_model


def _pytorch_to_hls(module, shapes, out_dir: Path, layer_config=None, default="fixed<16,6>", io_type="io_parallel"):
    config = hls4ml.utils.config_from_pytorch_model(
        module, shapes, granularity="name", backend="Vitis", default_precision=default
    )
    for layer_cfg in config["LayerName"].values():
        prec = layer_cfg.get("Precision")
        if isinstance(prec, dict):  # inferred types grow past 64 bits; pin them
            for key, value in prec.items():
                if value == "auto":
                    prec[key] = "fixed<24,10>"
    for layer, extra in (layer_config or {}).items():
        config["LayerName"][layer].update(extra)
    return hls4ml.converters.convert_from_pytorch_model(
        module, output_dir=str(out_dir), backend="Vitis", io_type=io_type, hls_config=config
    )


def _inputs(shape, n=N_SAMPLES, scale=8.0, seed=0):
    """Gaussian inputs, ties on a fine grid, and values far outside any input type's range."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, *shape)) * scale
    x[: n // 10] = np.round(x[: n // 10] * 16) / 16 + 1 / 32  # exact ties of finer grids
    x[n // 10 : n // 5] *= 100.0  # saturate / wrap
    x.reshape(n, -1)[n // 5 : n // 5 + 20, 0] = [
        1e6,
        -1e6,
        1e30,
        -1e30,
        0.0,
        -0.0,
        2.0**-40,
        127.99,
        -128.0,
        255.5,
    ] * 2
    return x.astype(np.float32)


def _layer(hls_model, class_name, index=0):
    return [layer for layer in hls_model.get_layers() if layer.class_name == class_name][index]


def _prec(layer, key):
    return str(layer.get_attr(key).precision)


# ---- QONNX MLP ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    out = tmp_path_factory.mktemp("mlp")
    module = _calibrated(QuantMLP(), (64,))
    model = _clean_qonnx(module, (64,), out)
    config = _qonnx_config(model, input_precision=_input_precision(module, (64,)))
    return module, model, out, _compiled(_qonnx_to_hls(model, out, config))


@needs_csim
def test_mlp_fast_equals_csim_and_torch(mlp):
    module, _, _, hm = mlp
    x = _inputs((64,))
    csim = hm.predict(x)
    fast = emulate(hm, x)
    assert fast.dtype == csim.dtype == np.float32
    assert fast.shape == csim.shape == (N_SAMPLES, 10)
    assert np.array_equal(fast, csim)
    with torch.no_grad():
        ref = module(torch.from_numpy(x)).numpy()
    assert np.array_equal(fast, ref)


@needs_csim
def test_mlp_double_input_and_single_sample(mlp):
    hm = mlp[3]
    x = _inputs((64,), n=2000).astype(np.float64) * 1.01  # off the float32 grid
    csim = hm.predict(x)
    fast = emulate(hm, x, batch_size=333)
    assert fast.dtype == csim.dtype == np.float64
    assert np.array_equal(fast, csim)
    one = np.ascontiguousarray(x[:1].astype(np.float32))
    assert emulate(hm, one).shape == hm.predict(one).shape == (10,)
    assert np.array_equal(emulate(hm, one), hm.predict(one))


@needs_csim
def test_mlp_trace_matches_hls4ml_trace(mlp):
    hm = mlp[3]
    x = _inputs((64,), n=300)
    for layer in hm.get_layers():
        layer.set_attr("trace", True)
    csim_out, csim_trace = hm.trace(x)
    fast_out, fast_trace = emulate(hm, x, trace=True)
    assert np.array_equal(fast_out, csim_out)
    assert csim_trace and set(csim_trace) <= set(fast_trace)
    for name, values in csim_trace.items():
        assert fast_trace[name].shape == values.shape, name
        assert np.array_equal(fast_trace[name], values), name


def test_mlp_fused_dense_relu_equals_unfused(mlp):
    """Dense + ReLU pairs run as one float kernel unless traced; both give the same mantissas."""
    p = plan(mlp[3])
    assert p.fused and p.batch_size >= 64
    assert all(k.prescale for k in p.fused.values())  # the ReLU's 2**-shift rides in the weights
    x = _inputs((64,), n=1000)
    fused = emulate(p, x)
    traced, _ = emulate(p, x, trace=True)
    assert np.array_equal(fused, traced)


def test_mlp_memory_stays_bounded(mlp):
    hm = mlp[3]
    x = np.random.default_rng(1).standard_normal((200_000, 64)).astype(np.float32)
    tracemalloc.start()
    try:
        y = emulate(hm, x, batch_size=4096)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert y.shape == (200_000, 10)
    # output (8 MB) plus one batch's working set; the 51 MB input is never copied whole
    assert peak < 40 * 2**20, peak


@needs_csim
def test_fast_engine_runs_without_a_compiler(mlp, tmp_path):
    module, _, out, hm = mlp
    input_precision = _input_precision(module, (64,))
    x = _inputs((64,), n=3000)
    np.save(tmp_path / "x.npy", x)
    script = textwrap.dedent(
        f"""
        import shutil, sys, numpy as np, hls4ml
        from qonnx.core.modelwrapper import ModelWrapper
        assert shutil.which("g++") is None and shutil.which("cc") is None and shutil.which("c++") is None
        model = ModelWrapper({str(out / "clean.onnx")!r})
        config = hls4ml.utils.config.config_from_onnx_model(
            model, granularity="name", backend="Vitis", default_precision="fixed<16,6>")
        config["LayerName"]["global_in"]["Precision"]["result"] = {input_precision!r}
        hm = hls4ml.converters.convert_from_onnx_model(
            model, output_dir={str(tmp_path / "prj")!r}, io_type="io_parallel", backend="Vitis", hls_config=config)
        from fpgadl.emulator.runner import emulate
        np.save({str(tmp_path / "y.npy")!r}, emulate(hm, np.load({str(tmp_path / "x.npy")!r})))
        """
    )
    env = {
        "PATH": str(Path(sys.executable).parent),
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert np.array_equal(np.load(tmp_path / "y.npy"), hm.predict(x))


@pytest.fixture(scope="module")
def mlp_default_and_narrow(mlp, tmp_path_factory):
    _, model, _, _ = mlp
    out = tmp_path_factory.mktemp("mlp_variants")
    default = _compiled(_qonnx_to_hls(model, out / "default", _qonnx_config(model)))
    narrow_cfg = _qonnx_config(
        model,
        overrides={
            # SAT accumulator with fewer fractional bits than the products: per-product rounding
            # and step-wise saturation; WRAP result on the first layer, narrow WRAP accum on the second
            "MatMul_0": {"accum": "fixed<10,4,RND,SAT>", "result": "fixed<8,3,TRN,WRAP>"},
            "MatMul_1": {"accum": "fixed<12,3,RND_CONV,WRAP>", "result": "fixed<10,4,RND_ZERO,SAT_SYM>"},
        },
    )
    narrow = _compiled(_qonnx_to_hls(model, out / "narrow", narrow_cfg))
    return default, narrow


@needs_csim
def test_mlp_default_precision_and_narrow_overrides(mlp_default_and_narrow):
    default, narrow = mlp_default_and_narrow
    d0, d1 = _layer(narrow, "Dense", 0), _layer(narrow, "Dense", 1)
    assert _prec(d0, "accum_t") == "fixed<10,4,RND,SAT,0>"
    assert _prec(d1, "accum_t") == "fixed<12,3,RND_CONV,WRAP,0>"
    assert _layer(default, "Activation").get_attr("activation") == "linear"  # the input Quant
    x = _inputs((64,))
    y_default, y_narrow = emulate(default, x), emulate(narrow, x)
    assert np.array_equal(y_default, default.predict(x))
    assert np.array_equal(y_narrow, narrow.predict(x))
    # the narrow types really act (otherwise this test would not cover the overflow paths)
    assert (y_default != y_narrow).mean() > 0.5


# ---- QONNX CNN ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    out = tmp_path_factory.mktemp("cnn")
    module = _calibrated(QuantCNN(), (1, 8, 8))
    model = _clean_qonnx(module, (1, 8, 8), out)
    typed_cfg = _qonnx_config(model, _input_precision(module, (1, 8, 8)))
    typed = _compiled(_qonnx_to_hls(model, out / "typed", typed_cfg))
    narrow_cfg = _qonnx_config(
        model, overrides={"Conv_0": {"accum": "fixed<9,3,RND,SAT>", "result": "fixed<7,2,RND_CONV,WRAP>"}}
    )
    narrow = _compiled(_qonnx_to_hls(model, out / "narrow", narrow_cfg))
    return module, typed, narrow


@needs_csim
def test_cnn_fast_equals_csim_and_torch(cnn):
    module, typed, _ = cnn
    x = _inputs((8, 8, 1), scale=4.0)
    fast = emulate(typed, x)
    assert np.array_equal(fast, typed.predict(x))
    with torch.no_grad():
        ref = module(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))).numpy()
    assert np.array_equal(fast, ref)


@needs_csim
def test_cnn_narrow_accumulator(cnn):
    _, typed, narrow = cnn
    assert _prec(_layer(narrow, "Conv2D"), "accum_t") == "fixed<9,3,RND,SAT,0>"
    x = _inputs((8, 8, 1), scale=4.0)
    y = emulate(narrow, x)
    assert np.array_equal(y, narrow.predict(x))
    assert (y != emulate(typed, x)).mean() > 0.5
    for layer in narrow.get_layers():
        layer.set_attr("trace", True)
    _, csim_trace = narrow.trace(x[:200])
    _, fast_trace = emulate(narrow, x[:200], trace=True)
    for name, values in csim_trace.items():
        assert np.array_equal(fast_trace[name], values), name


def _resource_config(model, module, accum=None):
    config = _qonnx_config(model, _input_precision(module, (1, 8, 8)))
    for name, reuse in (("Conv_0", 4), ("MatMul_0", 6)):
        config["LayerName"][name].update(Strategy="Resource", ReuseFactor=reuse)
        if accum:
            config["LayerName"][name]["Precision"]["accum"] = accum
    return config


@needs_csim
def test_cnn_resource_strategy(tmp_path):
    """Resource kernels read transposed weights and add in another order (fine for WRAP accumulators)."""
    module = _calibrated(QuantCNN(), (1, 8, 8), seed=3)
    model = _clean_qonnx(module, (1, 8, 8), tmp_path)
    hm = _compiled(_qonnx_to_hls(model, tmp_path / "wrap", _resource_config(model, module)))
    assert {layer.get_attr("strategy") for layer in hm.get_layers()} >= {"resource"}
    x = _inputs((8, 8, 1), scale=4.0)
    assert np.array_equal(emulate(hm, x), hm.predict(x))
    # a saturating accumulator would make the order matter: refused, not guessed
    sat = _qonnx_to_hls(model, tmp_path / "sat", _resource_config(model, module, "fixed<12,4,RND,SAT>"))
    with pytest.raises(UnsupportedLayerError, match="resource strategy"):
        emulate(sat, x[:10])


# ---- PyTorch front end: merges, normalisation, parametrised activations, conv variants -------


class MergeNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = torch.nn.Linear(8, 12), torch.nn.Linear(8, 12)
        self.bn = torch.nn.BatchNorm1d(12)
        self.leaky = torch.nn.LeakyReLU(0.125)
        self.thresh = torch.nn.Threshold(0.5, 0.0)
        self.elu = torch.nn.ELU()
        self.relu = torch.nn.ReLU()
        self.prelu = torch.nn.PReLU(12)
        self.fc3 = torch.nn.Linear(36, 6)

    def forward(self, x):
        a, b = self.fc1(x), self.fc2(x)
        t = self.leaky(self.bn(a + b))
        v = torch.maximum(self.relu(a), self.thresh(b))
        w = torch.minimum(self.elu(a - b), self.prelu(a))
        c = torch.cat([torch.cat([t, a * b], dim=1), v], dim=1)
        return self.fc3(c), w


class ConvNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv1d(2, 4, 3, padding=1)
        self.p1 = torch.nn.AvgPool1d(2)
        self.c2 = torch.nn.Conv2d(1, 3, 3, padding=1, stride=2)
        self.p2 = torch.nn.MaxPool2d(2, padding=1)
        self.bn = torch.nn.BatchNorm2d(3)
        self.up = torch.nn.Upsample(scale_factor=2)

    def forward(self, x, y):
        a = self.p1(torch.relu(self.c1(x)))
        b = self.bn(self.p2(self.c2(y)))
        return a.flatten(1), self.up(b)


def _randomise_batchnorm(module):
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    return module.eval()


@pytest.fixture(scope="module")
def torch_models(tmp_path_factory):
    torch.manual_seed(1)
    out = tmp_path_factory.mktemp("torch")
    merge = _compiled(_pytorch_to_hls(_randomise_batchnorm(MergeNet()), [(8,)], out / "merge"))
    conv = _compiled(_pytorch_to_hls(_randomise_batchnorm(ConvNet()), [(2, 16), (1, 10, 10)], out / "conv"))
    return merge, conv


def _assert_trace_equal(hm, x):
    for layer in hm.get_layers():
        layer.set_attr("trace", True)
    _, csim_trace = hm.trace(x)
    _, fast_trace = emulate(hm, x, trace=True)
    assert csim_trace
    for name, values in csim_trace.items():
        assert np.array_equal(fast_trace[name], values), name


@needs_csim
def test_merge_batchnorm_and_parametrised_activations(torch_models):
    hm = torch_models[0]
    functions = {(layer.get_attr("function_cpp") or "").split("<")[0] for layer in hm.get_layers()}
    for fn in (
        "nnet::add",
        "nnet::subtract",
        "nnet::multiply",
        "nnet::maximum",
        "nnet::minimum",
        "nnet::normalize",
        "nnet::leaky_relu",
        "nnet::thresholded_relu",
        "nnet::elu",
        "nnet::concatenate1d",
    ):
        assert fn in functions
    x = _inputs((8,), scale=6.0)
    csim, fast = hm.predict(x), emulate(hm, x)
    assert len(csim) == len(fast) == 2
    for c, f in zip(csim, fast):
        assert f.dtype == c.dtype and np.array_equal(f, c)
    _assert_trace_equal(hm, x[:300])


@needs_csim
def test_conv1d_avgpool_padding_stride_resize_two_inputs(torch_models):
    hm = torch_models[1]
    classes = {layer.class_name for layer in hm.get_layers()}
    assert {
        "Conv1D",
        "Conv2D",
        "Pooling1D",
        "Pooling2D",
        "BatchNormalization",
        "Resize",
        "Transpose",
    } <= classes
    xs = [_inputs((16, 2), scale=4.0, seed=2), _inputs((10, 10, 1), scale=4.0, seed=3)]
    csim, fast = hm.predict(xs), emulate(hm, xs)
    for c, f in zip(csim, fast):
        assert np.array_equal(f, c)
    _assert_trace_equal(hm, [a[:300] for a in xs])


class Pointwise(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c2 = torch.nn.Conv2d(3, 5, 1)
        self.c1 = torch.nn.Conv1d(3, 4, 1)

    def forward(self, x, y):
        return self.c2(x).flatten(1), self.c1(y).flatten(1)


@needs_csim
@pytest.mark.parametrize("io_type", ["io_parallel", pytest.param("io_stream", marks=pytest.mark.slow)])
def test_pointwise_convolutions_narrow_accumulator(tmp_path, io_type):
    torch.manual_seed(7)
    narrow = {"Precision": {"accum": "fixed<10,4,RND,SAT>", "result": "fixed<10,4,RND,SAT>"}}
    hm = _compiled(
        _pytorch_to_hls(
            Pointwise().eval(), [(3, 6, 6), (3, 10)], tmp_path, {"c1": narrow, "c2": narrow}, io_type=io_type
        )
    )
    classes = [layer.class_name for layer in hm.get_layers()]
    assert "PointwiseConv1D" in classes and "PointwiseConv2D" in classes
    assert _prec(_layer(hm, "PointwiseConv2D"), "accum_t") == "fixed<10,4,RND,SAT,0>"
    xs = [_inputs((6, 6, 3), scale=4.0), _inputs((10, 3), scale=4.0, seed=1)]
    for c, f in zip(hm.predict(xs), emulate(hm, xs)):
        assert np.array_equal(f, c)


class LayerNormNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.ln = torch.nn.LayerNorm(8)

    def forward(self, x):
        return self.ln(x)


@needs_csim
def test_layer_normalization(tmp_path):
    torch.manual_seed(8)
    module = LayerNormNet().eval()
    with torch.no_grad():
        module.ln.weight.uniform_(0.5, 1.5)
        module.ln.bias.uniform_(-0.5, 0.5)
    hm = _compiled(_pytorch_to_hls(module, [(4, 8)], tmp_path))
    layer = _layer(hm, "LayerNormalization")
    assert _prec(layer, "accum_t") == "fixed<14,4,RND_CONV,SAT,0>"  # hls4ml's rounding, saturating default
    x = _inputs((4, 8), scale=2.0)
    assert np.array_equal(emulate(hm, x), hm.predict(x))


# ---- lookup-table activations ------------------------------------------------------------------


class LutNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = (
            torch.nn.Linear(8, 16),
            torch.nn.Linear(16, 16),
            torch.nn.Linear(16, 10),
        )
        self.sigmoid, self.tanh, self.softmax = torch.nn.Sigmoid(), torch.nn.Tanh(), torch.nn.Softmax(dim=1)

    def forward(self, x):
        return self.softmax(self.fc3(self.tanh(self.fc2(self.sigmoid(self.fc1(x))))))


class SoftmaxVariants(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(8, 12)
        self.sm_latency, self.sm_legacy, self.sm_argmax = (torch.nn.Softmax(dim=1) for _ in range(3))

    def forward(self, x):
        h = self.fc(x)
        return self.sm_latency(h), self.sm_legacy(h), self.sm_argmax(h)


@pytest.fixture(scope="module")
def lut_net(tmp_path_factory):
    torch.manual_seed(2)
    out = tmp_path_factory.mktemp("lut")
    return _compiled(_pytorch_to_hls(LutNet().eval(), [(8,)], out))


@needs_csim
def test_sigmoid_tanh_softmax_tables(lut_net):
    acts = {layer.get_attr("activation") for layer in lut_net.get_layers()}
    assert {"sigmoid", "tanh", "softmax"} <= {str(a).lower() for a in acts}
    x = _inputs((8,), scale=3.0)
    assert np.array_equal(emulate(lut_net, x), lut_net.predict(x))
    _assert_trace_equal(lut_net, x[:300])


@needs_csim
@pytest.mark.slow
def test_softmax_latency_legacy_argmax(tmp_path):
    torch.manual_seed(3)
    layer_config = {
        "sm_latency": {"Implementation": "latency"},
        "sm_legacy": {"Implementation": "legacy"},
        "sm_argmax": {"Implementation": "argmax"},
    }
    hm = _compiled(_pytorch_to_hls(SoftmaxVariants().eval(), [(8,)], tmp_path / "prj", layer_config))
    impls = {layer.name: layer.get_attr("implementation") for layer in hm.get_layers() if layer.class_name == "Softmax"}
    assert impls == {"sm_latency": "latency", "sm_legacy": "legacy", "sm_argmax": "argmax"}
    x = _inputs((8,), scale=2.0)
    for c, f in zip(hm.predict(x), emulate(hm, x)):
        assert np.array_equal(f, c)


@needs_csim
def test_onnx_softplus_softsign_selu_elu(tmp_path):
    """Activations only hls4ml's ONNX front end produces, from a hand-written ONNX graph."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(4)
    inits = [
        numpy_helper.from_array(rng.standard_normal((8, 12)).astype(np.float32), "W"),
        numpy_helper.from_array(rng.standard_normal(12).astype(np.float32), "B"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h0"]),
        helper.make_node("Add", ["h0", "B"], ["h"]),
        helper.make_node("Softplus", ["h"], ["a"]),
        helper.make_node("Softsign", ["h"], ["b"]),
        helper.make_node("Selu", ["h"], ["c"]),
        helper.make_node("Elu", ["h"], ["d"], alpha=0.5),
        helper.make_node("Concat", ["a", "b"], ["ab"], axis=-1),
        helper.make_node("Concat", ["c", "d"], ["cd"], axis=-1),
        helper.make_node("Concat", ["ab", "cd"], ["y"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "acts",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 48])],
        inits,
    )
    model = cleanup_model(ModelWrapper(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])))
    hm = _compiled(_qonnx_to_hls(model, tmp_path, _qonnx_config(model)))
    acts = [str(layer.get_attr("activation")).lower() for layer in hm.get_layers()]
    assert {"softplus", "softsign", "selu", "elu"} <= set(acts)
    x = _inputs((8,), scale=2.0)
    assert np.array_equal(emulate(hm, x), hm.predict(x))


@needs_csim
def test_global_pooling_narrow_accumulator(tmp_path):
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["a"]),
        helper.make_node("GlobalMaxPool", ["x"], ["b"]),
        helper.make_node("Sub", ["a", "b"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "gp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 1, 1])],
    )
    model = cleanup_model(ModelWrapper(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])))
    config = _qonnx_config(model)
    for name, layer_cfg in config["LayerName"].items():
        if "Pool" in name:
            layer_cfg.setdefault("Precision", {})["accum"] = "fixed<12,5,RND,SAT>"
    hm = _compiled(_qonnx_to_hls(model, tmp_path, config))
    assert [layer.class_name for layer in hm.get_layers()].count("GlobalPooling2D") == 2
    x = _inputs((4, 6, 6), scale=4.0)
    assert np.array_equal(emulate(hm, x), hm.predict(x))


@needs_csim
def test_depthwise_conv_padding_stride_narrow_accumulator(tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(5)
    weight = numpy_helper.from_array((np.round(rng.standard_normal((3, 1, 3, 3)) * 8) / 8).astype(np.float32), "w")
    bias = numpy_helper.from_array((np.round(rng.standard_normal(3) * 64) / 64).astype(np.float32), "b")
    geometry = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "strides": [2, 1], "dilations": [1, 1]}
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], group=3, **geometry)
    graph = helper.make_graph(
        [node],
        "dw",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 3, 5])],
        [weight, bias],
    )
    model = cleanup_model(ModelWrapper(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])))
    model = cleanup_model(model.transform(ConvertToChannelsLastAndClean(make_input_channels_last=True)))
    # an accumulator that saturates and rounds: the per-product casts and the order of the sums show
    narrow = {"accum": "fixed<12,4,RND,SAT>", "result": "fixed<10,3,RND,SAT>"}
    config = _qonnx_config(model, overrides={"Conv_0": narrow})
    hm = _compiled(_qonnx_to_hls(model, tmp_path, config))
    assert [layer.class_name for layer in hm.get_layers()].count("DepthwiseConv2D") == 1
    x = _inputs((6, 5, 3), scale=4.0)
    assert np.array_equal(emulate(hm, x), hm.predict(x))


class FloatScaleMLP(torch.nn.Module):
    """Weights with float (non power-of-two) scales: hls4ml rescales with ApplyAlpha layers."""

    def __init__(self):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, return_quant_tensor=True)
        self.fc1 = qnn.QuantLinear(16, 8, bias=True, weight_quant=Int8WeightPerTensorFloat, return_quant_tensor=True)
        self.relu = qnn.QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, return_quant_tensor=True)
        self.fc2 = qnn.QuantLinear(8, 4, bias=True, weight_quant=Int8WeightPerTensorFloat, return_quant_tensor=False)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(self.inp(x))))


@needs_csim
def test_apply_alpha_from_float_scales(tmp_path):
    module = _calibrated(FloatScaleMLP(), (16,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = _clean_qonnx(module, (16,), tmp_path)
        hm = _compiled(_qonnx_to_hls(model, tmp_path, _qonnx_config(model, _input_precision(module, (16,)))))
    assert [layer.class_name for layer in hm.get_layers()].count("ApplyAlpha") == 2
    x = _inputs((16,), scale=3.0)
    assert np.array_equal(emulate(hm, x), hm.predict(x))


# ---- io_stream -----------------------------------------------------------------------------------


class StreamConvNet(torch.nn.Module):
    """Convolutions with padding (hls4ml inserts ZeroPadding layers in io_stream), stream pooling."""

    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv1d(2, 4, 3, padding=1)
        self.p1 = torch.nn.AvgPool1d(2)
        self.c2 = torch.nn.Conv2d(1, 3, 3, padding=1)
        self.p2 = torch.nn.MaxPool2d(2)
        self.p3 = torch.nn.AvgPool2d(2)
        self.bn = torch.nn.BatchNorm2d(3)

    def forward(self, x, y):
        a = self.p1(torch.relu(self.c1(x)))
        b = self.bn(self.p3(self.p2(self.c2(y))))
        return a.flatten(1), b


class StreamLutNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = torch.nn.Linear(8, 16), torch.nn.Linear(16, 10)
        self.sigmoid, self.softmax = torch.nn.Sigmoid(), torch.nn.Softmax(dim=-1)

    def forward(self, x):
        return self.softmax(self.fc2(self.sigmoid(self.fc1(x))))


@pytest.fixture(scope="module")
def stream_models(tmp_path_factory):
    torch.manual_seed(6)
    out = tmp_path_factory.mktemp("stream")
    conv = _pytorch_to_hls(
        _randomise_batchnorm(StreamConvNet()), [(2, 16), (1, 8, 8)], out / "conv", io_type="io_stream"
    )
    merge = _pytorch_to_hls(_randomise_batchnorm(MergeNet()), [(8,)], out / "merge", io_type="io_stream")
    lut = _pytorch_to_hls(StreamLutNet().eval(), [(8,)], out / "lut", io_type="io_stream")
    return {name: _compiled(hm) for name, hm in (("conv", conv), ("merge", merge), ("lut", lut))}


@needs_csim
@pytest.mark.slow
@pytest.mark.parametrize("name", ["conv", "merge", "lut"])
def test_io_stream(stream_models, name):
    hm = stream_models[name]
    assert hm.config.get_config_value("IOType") == "io_stream"
    classes = {layer.class_name for layer in hm.get_layers()}
    expected = {
        "conv": {"ZeroPadding1D", "ZeroPadding2D", "Pooling1D", "Pooling2D", "Repack"},
        "merge": {"Clone", "Merge", "Concatenate"},
        "lut": {"Softmax", "Activation"},
    }[name]
    assert expected <= classes
    if name == "conv":
        x = [_inputs((16, 2), scale=4.0, seed=7), _inputs((8, 8, 1), scale=4.0, seed=8)]
    else:
        x = _inputs((8,), scale=4.0, seed=9)
    csim, fast = hm.predict(x), emulate(hm, x)
    for c, f in zip(csim if isinstance(csim, list) else [csim], fast if isinstance(fast, list) else [fast]):
        assert np.array_equal(f, c)


# ---- recurrent ---------------------------------------------------------------------------------


class Recurrent(torch.nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.rnn = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[kind](4, 8, batch_first=True)

    def forward(self, x):
        return self.rnn(x)[0]


def _recurrent_to_hls(kind, out_dir: Path, precision: str):
    torch.manual_seed(5)
    module = Recurrent(kind).eval()
    config = hls4ml.utils.config.config_from_pytorch_model(
        module,
        (10, 4),
        granularity="name",
        backend="Vitis",
        default_precision=precision,
        channels_last_conversion="off",
        transpose_outputs=False,
    )
    for layer_cfg in config["LayerName"].values():
        prec = layer_cfg.get("Precision")
        if isinstance(prec, dict):
            for key, value in prec.items():
                if value == "auto":
                    prec[key] = precision
    return hls4ml.converters.convert_from_pytorch_model(
        module, output_dir=str(out_dir), backend="Vitis", io_type="io_parallel", hls_config=config
    )


@pytest.fixture(scope="module")
def recurrent(tmp_path_factory):
    out = tmp_path_factory.mktemp("rnn")
    # GRU with hls4ml's usual types, LSTM with a narrow saturating accumulator and rounding state
    gru = _compiled(_recurrent_to_hls("gru", out / "gru", "fixed<16,6>"))
    lstm = _compiled(_recurrent_to_hls("lstm", out / "lstm", "fixed<12,4,RND,SAT>"))
    return gru, lstm


@needs_csim
@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_gru_lstm(recurrent, kind):
    hm = recurrent[0 if kind == "gru" else 1]
    assert _layer(hm, kind.upper()).class_name == kind.upper()
    x = _inputs((10, 4), n=3000, scale=3.0)
    csim, fast = hm.predict(x), emulate(hm, x)
    assert fast.shape == csim.shape == (3000, 8)
    assert np.array_equal(fast, csim)


# ---- errors ------------------------------------------------------------------------------------


class _FakeLayer:
    name = "mystery_0"
    class_name = "GarNet"


def test_unknown_layer_class_is_a_clear_error():
    with pytest.raises(UnsupportedLayerError, match=r"'mystery_0' \(GarNet\)"):
        build_kernel(_FakeLayer())


def test_rejects_integer_input_dtype(mlp):
    with pytest.raises(TypeError, match="float32 or float64"):
        emulate(mlp[3], np.zeros((4, 64), dtype=np.int32))
