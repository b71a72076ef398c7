"""Issue 9: the guarantee on users' own models. Each test builds a tiny Brevitas model the way a user
would, exports it with `export_qonnx` (defaults: torch's dynamo exporter), runs `fpgadl hls` and compares
real outputs with torch by exact equality. The probe (fpgadl.hls.probe), the precision audit
(fpgadl.hls.audit), host-side pre-processing (fpgadl.hls.hostops) and the preflight are exercised here."""

from __future__ import annotations

import json
import re
import time
import warnings

import numpy as np
import pytest
import torch

from fpgadl import api
from tests.helpers import assert_one_line_error, run_cli

qnn = pytest.importorskip("brevitas.nn")


def _quants():
    from brevitas.quant import Int8ActPerTensorFixedPoint, Int8WeightPerTensorFixedPoint, Uint8ActPerTensorFixedPoint

    return Int8ActPerTensorFixedPoint, Int8WeightPerTensorFixedPoint, Uint8ActPerTensorFixedPoint


def _mlp(bias: bool, tail: torch.nn.Module | None = None) -> torch.nn.Module:
    a8, w8, u8 = _quants()
    torch.manual_seed(0)
    layers = [
        qnn.QuantIdentity(act_quant=a8, return_quant_tensor=True),
        qnn.QuantLinear(16, 8, weight_quant=w8, bias=bias, return_quant_tensor=True),
        qnn.QuantReLU(act_quant=u8, return_quant_tensor=True),
        qnn.QuantLinear(8, 4, weight_quant=w8, bias=bias),
    ]
    net = torch.nn.Sequential(*layers, *([tail] if tail is not None else []))
    net.train()
    with torch.no_grad():
        for _ in range(4):  # calibrate the power-of-two activation scales
            net(torch.randn(32, 16) * 2)
    return net.eval()


class TensorNorm(torch.nn.Module):
    """bnn_pynq's TensorNorm in eval mode: float Sub/Div/Mul/Add."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.tensor([0.7]))
        self.bias = torch.nn.Parameter(torch.tensor([0.3]))
        self.register_buffer("running_mean", torch.tensor([0.1]))
        self.register_buffer("running_var", torch.tensor([1.7]))

    def forward(self, x):
        return ((x - self.running_mean) / (self.running_var + 1e-4).pow(0.5)) * self.weight + self.bias


class TwoXMinusOne(torch.nn.Module):
    """bnn_pynq's pre-processing `2x - 1` before the input quantizer."""

    def __init__(self):
        super().__init__()
        a8, w8, _ = _quants()
        self.inp = qnn.QuantIdentity(act_quant=a8, return_quant_tensor=True)
        self.fc = qnn.QuantLinear(16, 4, weight_quant=w8, bias=False)

    def forward(self, x):
        return self.fc(self.inp(2.0 * x - 1.0))


def _export(net, shape, path, **kw):
    from brevitas.export import export_qonnx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_qonnx(net, torch.randn(1, *shape), export_path=str(path), **kw)


def _inputs(n: int = 2000, width: int = 16) -> np.ndarray:
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((n, width)) * 3).astype(np.float32)  # off-grid
    x[: n // 4] = np.round(x[: n // 4] * 32) / 32 + 1 / 64  # ties of a 2**-5 grid (and others)
    x[n // 4 : n // 3] *= 1000  # far out of range
    return x


def _torch(net, x):
    with torch.no_grad():
        return net(torch.from_numpy(x)).numpy()


def _hls(d, name, net, shape=(16,), *extra, **export_kw):
    _export(net, shape, d / f"{name}.onnx", **export_kw)
    proc = run_cli("hls", d / f"{name}.onnx", "--out", d / name, "--json", *extra)
    return proc


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    return tmp_path_factory.mktemp("guarantee")


def test_dynamo_export_of_a_bias_free_mlp_is_exact(d):
    net = _mlp(bias=False)
    proc = _hls(d, "nobias", net)  # export_qonnx's defaults: the dynamo exporter
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["exact"] is True and summary["verdict"] == "exact"
    assert summary["probe"]["rows"] >= 2000 and summary["probe"]["identical_rows"] == summary["probe"]["rows"]
    x = _inputs()
    assert np.array_equal(api.emulate(d / "nobias", x), _torch(net, x))


def test_float_bias_is_held_exactly_and_not_claimed_exact(d):
    net = _mlp(bias=True)  # Brevitas' default: a float bias, no bias quantizer
    proc = _hls(d, "fbias", net, (16,), dynamo=False)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["exact"] is False and summary["verdict"] == "exact-except-float32"
    assert "float32" in proc.stderr
    x = _inputs()
    same = np.all(api.emulate(d / "fbias", x) == _torch(net, x), axis=1)
    assert same.mean() >= 0.999  # was 0% with hls4ml's ap_fixed<16,6> bias
    defines = (d / "fbias" / "firmware" / "defines.h").read_text()
    assert not re.search(r"ap_fixed<16,6> \w*bias", defines)


def test_tensornorm_runs_on_the_host_in_float32_and_is_exact(d):
    net = _mlp(bias=False, tail=TensorNorm())
    proc = _hls(d, "tnorm", net, (16,), "--strict", dynamo=False)
    assert proc.returncode == 0, proc.stderr  # --strict: the probe found every row identical
    assert "post-processing after the last layer runs on the host" in proc.stderr
    meta = json.loads((d / "tnorm" / "fpgadl.json").read_text())
    assert [op["op"] for op in meta["host_post_ops"]] == ["Sub", "Div", "Mul", "Add"]
    assert meta["exact"] is True and meta["verdict"] == "exact"
    x = _inputs()
    assert np.array_equal(api.emulate(d / "tnorm", x), _torch(net, x))  # hls4ml's folded scale/bias: ~1e-6 off


def test_two_x_minus_one_runs_on_the_host_and_the_port_is_the_quantizer(d):
    torch.manual_seed(0)
    net = TwoXMinusOne()
    net.train()
    with torch.no_grad():
        net(torch.rand(64, 16))
    net.eval()
    proc = _hls(d, "pre", net)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert [op["op"] for op in summary["host_ops"]] == ["Mul", "Sub"]
    assert summary["input_type"].endswith("RND_CONV,SAT>") and summary["exact"] is True
    x = np.random.default_rng(0).uniform(0, 1, (2000, 16)).astype(np.float32)  # ordinary pixel-like inputs
    x[:500] = np.round(x[:500] * 255) / 255
    assert np.array_equal(api.emulate(d / "pre", x), _torch(net, x))


class MeanStdCnn(torch.nn.Module):
    """CIFAR-style per-channel mean/std before the input quantizer, then a small CNN; `bias`: Brevitas'
    default float biases on the conv and the linear layer (else bias-free: every sum power-of-two exact)."""

    def __init__(self, bias: bool):
        super().__init__()
        a8, w8, u8 = _quants()
        self.register_buffer("mean", torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1))
        self.inp = qnn.QuantIdentity(act_quant=a8, return_quant_tensor=True)
        self.conv = qnn.QuantConv2d(3, 4, 3, padding=1, bias=bias, weight_quant=w8, return_quant_tensor=True)
        self.relu = qnn.QuantReLU(act_quant=u8, return_quant_tensor=True)
        self.fc = qnn.QuantLinear(4 * 3 * 3, 5, bias=bias, weight_quant=w8)

    def forward(self, x):
        x = self.relu(self.conv(self.inp((x - self.mean) / self.std)))
        return self.fc(torch.flatten(torch.nn.functional.max_pool2d(x, 2), 1))


def _mean_std_cnn(bias: bool) -> torch.nn.Module:
    torch.manual_seed(8)
    net = MeanStdCnn(bias)
    net.train()
    with torch.no_grad():
        for _ in range(4):
            net(torch.rand(64, 3, 6, 6))
    return net.eval()


def test_per_channel_mean_std_runs_on_the_host_and_is_exact(d):
    net = _mean_std_cnn(bias=False)
    _export(net, (3, 6, 6), d / "meanstd.onnx")  # in-process (the CLI's path is tested above): seconds saved
    meta = api.hls(d / "meanstd.onnx", out=d / "meanstd", strict=True, warn=lambda m: None)
    assert [(op["op"], op["shape"]) for op in meta.host_ops] == [("Sub", [1, 3, 1, 1]), ("Div", [1, 3, 1, 1])]
    assert meta.input_type.endswith("RND_CONV,SAT>") and meta.exact is True
    x = np.random.default_rng(1).uniform(-0.2, 1.2, (2000, 3, 6, 6)).astype(np.float32)
    x[:500] = np.round(x[:500] * 255) / 255  # pixels
    assert np.array_equal(api.emulate(d / "meanstd", x), _torch(net, x))


def test_the_probe_measures_torchs_float32_sums_of_a_float_bias_cnn(d):
    """torch's batched conv accumulates onto a float bias and rounds differently from onnxruntime's Conv;
    the probe's reference (fpgadl.hls.torchref) computes it as torch does, so the rows the probe counts
    as identical are exactly the rows where the firmware equals torch."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    from fpgadl.hls.engines import from_firmware_layout, to_firmware_layout
    from fpgadl.hls.probe import probe_inputs, reference_outputs

    net = _mean_std_cnn(bias=True)
    _export(net, (3, 6, 6), d / "meanstd-bias.onnx", dynamo=False)
    prj = d / "meanstd-bias"
    meta = api.hls(d / "meanstd-bias.onnx", out=prj, warn=lambda m: None)
    x = np.concatenate(list(probe_inputs(meta).values()))
    y_torch, y_fast = _torch(net, x), api.emulate(prj, x)
    assert meta.probe["identical_rows"] == int(np.all(y_fast == y_torch, axis=1).sum()) < len(x)
    assert meta.verdict == "twin-only" and "float32 rounding in torch: Conv_0" in meta.verdict_reason
    pre = to_firmware_layout(x, meta)  # the host's mean/std, then the firmware's layout
    ref = from_firmware_layout(reference_outputs(prj / meta.clean_model, pre), meta)
    assert np.array_equal(ref.reshape(y_torch.shape), y_torch)  # the reference is torch, bit for bit
    # qonnx alone (onnxruntime's Conv rounds the biased sum once) would have seen the firmware's values
    mw = ModelWrapper(str(prj / meta.clean_model))
    bad = np.flatnonzero(~np.all(y_fast == y_torch, axis=1))
    ort = [execute_onnx(mw, {mw.graph.input[0].name: pre[i : i + 1]})[mw.graph.output[0].name] for i in bad]
    assert any(np.array_equal(o.ravel(), y_fast[i].ravel()) for o, i in zip(ort, bad))


def test_bipolar_784_fan_in_accumulator_holds_784(d):
    from brevitas_examples.bnn_pynq.models.common import CommonActQuant, CommonWeightQuant

    torch.manual_seed(0)
    net = torch.nn.Sequential(  # bnn_pynq TFC's 1W1A quantizers (BipolarQuant, scale 1)
        qnn.QuantIdentity(act_quant=CommonActQuant, bit_width=1, return_quant_tensor=True),
        qnn.QuantLinear(784, 16, weight_quant=CommonWeightQuant, weight_bit_width=1, bias=False),
        qnn.QuantIdentity(act_quant=CommonActQuant, bit_width=1, return_quant_tensor=True),
        qnn.QuantLinear(16, 10, weight_quant=CommonWeightQuant, weight_bit_width=1, bias=False),
    ).eval()
    proc = _hls(d, "bin", net, (784,), dynamo=False)
    assert proc.returncode == 0, proc.stderr
    defines = (d / "bin" / "firmware" / "defines.h").read_text()
    accum = re.search(r"typedef ap_(?:u?fixed<(\d+),(\d+)>|u?int<(\d+)>) dense_matmul_0\w*_accum_t", defines, re.I)
    assert accum, defines
    integer = int(accum.group(2) or accum.group(3))
    assert 2 ** (integer - 1) > 784  # +-784 fits: hls4ml's default ap_fixed<16,6> held +-32
    assert json.loads(proc.stdout)["exact"] is True
    x = _inputs(1000, 784)
    assert np.array_equal(api.emulate(d / "bin", x), _torch(net, x))


def test_audit_widens_a_deliberately_undersized_accumulator(d):
    from fpgadl.core.options import HlsOptions
    from fpgadl.hls.convert import convert

    net = _mlp(bias=False)
    _export(net, (16,), d / "small.onnx", dynamo=False)
    opts = HlsOptions(layer_overrides={"MatMul_0": {"Precision": {"accum": "fixed<6,2>", "result": "fixed<6,2>"}}})
    meta = convert(d / "small.onnx", d / "small", opts, warn=lambda m: None)
    widened = {(f["layer"], f["type"]) for f in meta.audit if "layer" in f}
    assert ("Dense_MatMul_0", "accum_t") in widened and ("Dense_MatMul_0", "result_t") in widened
    defines = (d / "small" / "firmware" / "defines.h").read_text()
    assert "ap_fixed<6,2>" not in defines
    x = _inputs()
    assert np.array_equal(api.emulate(d / "small", x), _torch(net, x))


def test_unsupported_op_is_refused_fast_with_one_line(d):
    import onnx
    from onnx import TensorProto, helper

    _export(_mlp(bias=False), (16,), d / "ok.onnx", dynamo=False)
    model = onnx.load(str(d / "ok.onnx"))
    last = model.graph.output[0].name
    model.graph.node.append(helper.make_node("Trunc", [last], ["truncated"], name="my_trunc"))
    model.graph.output[0].name = "truncated"
    model.graph.output[0].type.tensor_type.elem_type = TensorProto.FLOAT
    onnx.save(model, str(d / "trunc.onnx"))
    start = time.perf_counter()
    proc = run_cli("hls", d / "trunc.onnx", "--out", d / "trunc")
    assert_one_line_error(proc, "my_trunc", "Trunc", "supported:")
    assert time.perf_counter() - start < 30  # before the clean-up and hls4ml's passes
    assert not (d / "trunc").exists()


def test_activation_only_model_compiles_and_equals_torch(d):
    a8, _, u8 = _quants()
    net = torch.nn.Sequential(qnn.QuantIdentity(act_quant=a8, return_quant_tensor=True), qnn.QuantReLU(act_quant=u8))
    net.train()
    with torch.no_grad():
        net(torch.randn(64, 16) * 2)
    net.eval()
    proc = _hls(d, "act", net, (16,), dynamo=False)
    assert proc.returncode == 0, proc.stderr
    x = _inputs(300)
    ref = _torch(net, x)
    assert np.array_equal(api.emulate(d / "act", x, engine="csim"), ref)
    assert np.array_equal(api.emulate(d / "act", x), ref)


def test_a_model_that_is_only_its_input_quantizer_compiles_and_computes_it(d):
    # FINN's QuantHardTanh test model: the port keeps the quantizer's rounding, its layer the clamping
    a8, _, _ = _quants()
    net = torch.nn.Sequential(qnn.QuantIdentity(act_quant=a8)).eval()
    proc = _hls(d, "qonly", net, (16,), dynamo=False)
    assert proc.returncode == 0, proc.stderr
    x = _inputs(300)
    ref = _torch(net, x)
    assert np.array_equal(api.emulate(d / "qonly", x), ref)
    assert np.array_equal(api.emulate(d / "qonly", x, engine="csim"), ref)  # it compiles


def test_average_pool_outside_a_power_of_two_window_is_refused_in_the_preflight():
    # power-of-two windows convert exactly (tests/external: avgpool-float, global-avgpool); 1/9 cannot be exact
    from onnx import TensorProto, helper

    from fpgadl.core.errors import UsageError
    from fpgadl.hls.preflight import preflight

    def pool(kernel):
        node = helper.make_node("AveragePool", ["x"], ["y"], name="my_pool", kernel_shape=kernel, strides=kernel)
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 6])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
        return helper.make_model(helper.make_graph([node], "g", [x], [y]))

    preflight(pool([2, 2]), "m.onnx")
    with pytest.raises(UsageError, match=r"m\.onnx: node 'my_pool' is an AveragePool over \[3, 3\].*power-of-two"):
        preflight(pool([3, 3]), "m.onnx")


def test_the_probes_reference_runs_a_batch_1_reshape_as_one_batch(tmp_path, monkeypatch):
    """bnn_pynq's `x.view(x.shape[0], -1)` exports as Reshape to the constant [1, -1]; the reference must run
    all probe rows at once (row by row, a TFC's 2,000 rows took 220 s, and silently: the results agree)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from fpgadl.hls import probe, torchref

    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])],
        "view",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6])],
        [numpy_helper.from_array(np.array([1, -1], dtype=np.int64), "shape")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(tmp_path / "view.onnx"))
    calls = []
    real = torchref.execute_like_torch
    monkeypatch.setattr(torchref, "execute_like_torch", lambda *a, **k: calls.append(1) or real(*a, **k))
    x = np.arange(5 * 6, dtype=np.float32).reshape(5, 2, 3)
    assert np.array_equal(probe.reference_outputs(tmp_path / "view.onnx", x), x.reshape(5, 6))
    assert len(calls) == 1
