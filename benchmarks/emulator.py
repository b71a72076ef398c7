"""Fast engine vs hls4ml csim vs onnxruntime: throughput and time to first prediction.

One run, same inputs for every engine: an MLP (64-32-10 on 8x8 digits) and a small CNN
(conv 3x3x4 - relu - maxpool - dense), Brevitas power-of-two quantizers, exported to QONNX (for
hls4ml) and QCDQ (for onnxruntime), converted by `fpgadl hls`, run by fpgadl's two engines.
Throughput is measured at batch 20,000 (median of repeats); "first prediction" is the time from the
exported QONNX file to the first output: `fpgadl hls` + emulate for the fast engine, `fpgadl hls` +
compile + predict for csim.  Every fast output is also checked to
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
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
from brevitas.quant import (  # noqa: E402
    Int8ActPerTensorFixedPoint,
    Int8Bias,
    Int8WeightPerTensorFixedPoint,
    Uint8ActPerTensorFixedPoint,
)
from sklearn.datasets import load_digits  # noqa: E402

from fpgadl import api  # noqa: E402
from fpgadl.hls.engines import CsimEngine, FastEngine  # noqa: E402
from fpgadl.hls.export import INPUT_NAME, export_qcdq_file, export_qonnx_file  # noqa: E402


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


def _median_time(fn, repeats):
    times = []
    result = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def bench(name, module, shape, x_onnx_layout, work: Path, repeats: int):
    """The product's own path: fpgadl's exports, `fpgadl hls` conversion, and its two engines."""
    out = work / name
    export_qonnx_file(module, shape, out / "model.qonnx.onnx")
    export_qcdq_file(module, shape, out / "model.qcdq.onnx")
    sample = x_onnx_layout[:1]

    t0 = time.perf_counter()  # ONNX file -> first prediction, fast engine: convert + emulate
    api.hls(out / "model.qonnx.onnx", out=out / "fast", warn=lambda m: None)
    fast = FastEngine(out / "fast")
    first_fast_out = fast.predict(sample)
    first_fast = time.perf_counter() - t0

    t0 = time.perf_counter()  # ONNX file -> first prediction, csim: convert + compile + predict
    api.hls(out / "model.qonnx.onnx", out=out / "csim", warn=lambda m: None)
    csim = CsimEngine(out / "csim")
    first_csim_out = csim.predict(sample)
    first_csim = time.perf_counter() - t0
    assert np.array_equal(first_fast_out, first_csim_out)

    t_fast, y_fast = _median_time(lambda: fast.predict(x_onnx_layout), repeats)
    t_csim, y_csim = _median_time(lambda: csim.predict(x_onnx_layout), max(1, repeats // 2))
    sess = ort.InferenceSession(str(out / "model.qcdq.onnx"), providers=["CPUExecutionProvider"])
    t_ort, y_ort = _median_time(lambda: sess.run(None, {INPUT_NAME: x_onnx_layout})[0], repeats)
    csim.close()
    assert np.array_equal(y_fast, y_csim), "fast engine is not bit-exact against csim"
    return {
        "model": name,
        "n": len(x_onnx_layout),
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
        rows.append(bench("mlp-64-32-10", mlp, (64,), x_flat, work, args.repeats))
        x_nchw = np.ascontiguousarray(x_flat.reshape(-1, 1, 8, 8))
        rows.append(bench("cnn-conv4-pool-dense", cnn, (1, 8, 8), x_nchw, work, args.repeats))

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
