"""Fast engine vs hls4ml csim vs onnxruntime: throughput and time to first prediction.

One run, same inputs for every engine: an MLP (64-32-10 on 8x8 digits) and a small CNN
(conv 3x3x4 - relu - maxpool - dense), Brevitas power-of-two quantizers, exported to QONNX (for
hls4ml) and QCDQ (for onnxruntime).  Throughput is measured at batch 20,000 (median of repeats);
"first prediction" is the time from the cleaned ONNX file to the first output: convert + emulate
for the fast engine, convert + compile + predict for csim.  Every fast output is also checked to
equal csim's exactly.

    .venv/bin/python benchmarks/emulator.py [--repeats 5] [--batch 20000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")

import brevitas.nn as qnn  # noqa: E402
import hls4ml  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
from brevitas.export import export_onnx_qcdq, export_qonnx  # noqa: E402
from brevitas.quant import (  # noqa: E402
    Int8ActPerTensorFixedPoint,
    Int8Bias,
    Int8WeightPerTensorFixedPoint,
    Uint8ActPerTensorFixedPoint,
)
from qonnx.core.modelwrapper import ModelWrapper  # noqa: E402
from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean  # noqa: E402
from qonnx.transformation.gemm_to_matmul import GemmToMatMul  # noqa: E402
from qonnx.util.cleanup import cleanup_model  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from fpgadl.emulator.runner import emulate  # noqa: E402


def _linear(n_in, n_out, last=False):
    return qnn.QuantLinear(
        n_in,
        n_out,
        bias=True,
        weight_quant=Int8WeightPerTensorFixedPoint,
        bias_quant=Int8Bias,
        return_quant_tensor=not last,
    )


class MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, return_quant_tensor=True)
        self.fc1, self.fc2 = _linear(64, 32), _linear(32, 10, last=True)
        self.relu = qnn.QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, return_quant_tensor=True)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(self.inp(x))))


class CNN(torch.nn.Module):
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
        self.fc = _linear(4 * 3 * 3, 10, last=True)

    def forward(self, x):
        return self.fc(self.pool(self.relu(self.conv(self.inp(x)))).flatten(1))


def _train(module, x, y, steps=150):
    opt = torch.optim.Adam(module.parameters(), lr=1e-2)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    module.train()
    for _ in range(steps):
        idx = torch.randint(0, len(xt), (128,))
        loss = torch.nn.functional.cross_entropy(module(xt[idx]), yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return module.eval()


def _export(module, shape, out: Path) -> tuple[Path, Path]:
    example = torch.randn(1, *shape)
    export_qonnx(module, example, export_path=str(out / "model.qonnx.onnx"))
    model = cleanup_model(ModelWrapper(str(out / "model.qonnx.onnx")))
    model = model.transform(ConvertToChannelsLastAndClean())
    model = model.transform(GemmToMatMul())
    cleanup_model(model).save(str(out / "clean.onnx"))
    export_onnx_qcdq(
        module,
        example,
        export_path=str(out / "model.qcdq.onnx"),
        dynamo=False,
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
    )
    return out / "clean.onnx", out / "model.qcdq.onnx"


def _input_precision(module, shape) -> str:
    with torch.no_grad():
        q = module.inp(torch.zeros(1, *shape))
    frac = -int(np.log2(float(q.scale)))
    return f"fixed<{int(q.bit_width)},{int(q.bit_width) - frac},RND_CONV,SAT>"


def _convert(clean: Path, out: Path, input_precision: str):
    model = ModelWrapper(str(clean))
    config = hls4ml.utils.config.config_from_onnx_model(
        model, granularity="name", backend="Vitis", default_precision="fixed<16,6>"
    )
    config["LayerName"]["global_in"]["Precision"]["result"] = input_precision
    return hls4ml.converters.convert_from_onnx_model(
        model, output_dir=str(out), io_type="io_parallel", backend="Vitis", hls_config=config
    )


def _median_time(fn, repeats):
    times = []
    result = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def bench(name, module, shape, x_torch_layout, x_hls_layout, work: Path, repeats: int):
    out = work / name
    out.mkdir()
    clean, qcdq = _export(module, shape, out)
    inp = _input_precision(module, shape)
    sample = x_hls_layout[:1]

    t0 = time.perf_counter()
    hm_fast = _convert(clean, out / "fast", inp)
    first_fast_out = emulate(hm_fast, sample)
    first_fast = time.perf_counter() - t0

    t0 = time.perf_counter()
    hm = _convert(clean, out / "csim", inp)
    hm.compile()
    first_csim_out = hm.predict(sample)
    first_csim = time.perf_counter() - t0
    assert np.array_equal(first_fast_out, first_csim_out)

    t_fast, y_fast = _median_time(lambda: emulate(hm_fast, x_hls_layout), repeats)
    t_csim, y_csim = _median_time(lambda: hm.predict(x_hls_layout), max(1, repeats // 2))
    sess = ort.InferenceSession(str(qcdq))
    t_ort, y_ort = _median_time(lambda: sess.run(None, {"x": x_torch_layout})[0], repeats)
    assert np.array_equal(y_fast, y_csim), "fast engine is not bit-exact against csim"
    return {
        "model": name,
        "n": len(x_hls_layout),
        "fast_s": t_fast,
        "csim_s": t_csim,
        "ort_s": t_ort,
        "first_fast_s": first_fast,
        "first_csim_s": first_csim,
        "fast_eq_csim": True,
        "fast_eq_ort": bool(np.array_equal(y_fast, y_ort.reshape(y_fast.shape))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=20_000)
    args = parser.parse_args()
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    digits = load_digits()
    x_all = (digits.data / 16.0 * 4 - 2).astype(np.float32)  # 8x8 digits scaled to about [-2, 2]
    y_all = digits.target.astype(np.int64)
    idx = rng.integers(0, len(x_all), args.batch)
    x_flat = np.ascontiguousarray(x_all[idx] + rng.normal(0, 0.05, (args.batch, 64)).astype(np.float32))

    mlp = _train(MLP(), x_all, y_all)
    cnn = _train(CNN(), x_all.reshape(-1, 1, 8, 8), y_all)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows.append(bench("mlp-64-32-10", mlp, (64,), x_flat, x_flat, work, args.repeats))
        x_nchw = np.ascontiguousarray(x_flat.reshape(-1, 1, 8, 8))
        x_nhwc = np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1))
        rows.append(bench("cnn-conv4-pool-dense", cnn, (1, 8, 8), x_nchw, x_nhwc, work, args.repeats))

    head = (
        f"{'model':<22}{'n':>7}{'fast s':>9}{'csim s':>9}{'ort s':>9}{'csim/fast':>11}{'ort/fast':>10}"
        f"{'1st fast s':>12}{'1st csim s':>12}{'ratio':>7}  exact"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['model']:<22}{r['n']:>7}{r['fast_s']:>9.3f}{r['csim_s']:>9.3f}{r['ort_s']:>9.3f}"
            f"{r['csim_s'] / r['fast_s']:>10.1f}x{r['ort_s'] / r['fast_s']:>9.2f}x"
            f"{r['first_fast_s']:>12.2f}{r['first_csim_s']:>12.2f}{r['first_csim_s'] / r['first_fast_s']:>6.1f}x"
            f"  fast==csim {r['fast_eq_csim']}, fast==ort {r['fast_eq_ort']}"
        )
    print(f"medians of {args.repeats} runs (csim: {max(1, args.repeats // 2)}); inputs: digits 8x8, batch {args.batch}")


if __name__ == "__main__":
    main()
