"""Fast engine vs hls4ml csim vs onnxruntime: throughput and time to first prediction.

One run, same inputs for every engine: an MLP (64-32-10 on 8x8 digits) and a small CNN
(conv 3x3x4 - relu - maxpool - dense), Brevitas power-of-two quantizers, exported to QONNX (for
hls4ml) and QCDQ (for onnxruntime), converted by `fpgadl hls`, run by fpgadl's two engines.
Zoo recipes (Conv1D, GRU, LSTM, VGG) add rows through `fpgadl run`'s own stages.  Throughput is
measured at batch 20,000 for fast and onnxruntime (medians of repeats in which they take turns, so
both sides of a ratio see the same machine load), all single-threaded by default (the fast engine
pins BLAS to one thread).  onnxruntime runs at its *basic* optimisation level (fpgadl's reference) and
at *all* (its default, with integer QDQ fusions), each output checked against the fast engine's;
"first prediction" is the time from the exported QONNX file to the first output: `fpgadl hls` +
emulate for the fast engine, `fpgadl hls` + compile + predict for csim (medians too).  Every csim
output is checked to equal the fast engine's exactly.

    .venv/bin/python benchmarks/emulator.py [--repeats 5] [--batch 20000] [--recipes a,b]
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
from fpgadl.hls.export import export_qcdq_file, export_qonnx_file  # noqa: E402


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


def _median_times_interleaved(fns, repeats):
    """Medians of each fn's wall time, the fns run in turn within every repeat: on a machine whose load
    changes over seconds, both sides of a ratio then see the same conditions."""
    times = [[] for _ in fns]
    results = [None] * len(fns)
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            t0 = time.perf_counter()
            results[k] = fn()
            times[k].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times], results


ORT_LEVELS = {"basic": "ORT_ENABLE_BASIC", "all": "ORT_ENABLE_ALL"}


def _ort_session(path: Path, threads: int, level: str):
    """onnxruntime at an optimisation level: "basic" is the one fpgadl's verify stage uses as its reference
    (fpgadl.hls.export.onnxruntime_predict); "all", onnxruntime's default, fuses QDQ nodes into integer
    kernels that need not compute the same numbers."""
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, ORT_LEVELS[level])
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def measure(name, hls_dir: Path, onnx_path: Path, x, x_ort, args) -> dict:
    """Throughput of the fast engine, onnxruntime and csim on the same inputs, medians of args.repeats.

    csim runs the first args.csim_n inputs (it is ~100x slower); its outputs must equal the fast
    engine's exactly.  x_ort is x as the ONNX file wants it (the recurrent twins take inputs
    already through the input quantizer, which the engines apply themselves).
    """
    fast = FastEngine(hls_dir)
    fast.predict(x[:1])  # builds the kernels once, as a user's session would
    fns = [lambda: fast.predict(x)]
    for level in ORT_LEVELS:
        sess = _ort_session(onnx_path, args.ort_threads, level)
        in_name = sess.get_inputs()[0].name
        sess.run(None, {in_name: x_ort[:1]})
        fns.append(lambda sess=sess, in_name=in_name: sess.run(None, {in_name: x_ort})[0])
    times, outs = _median_times_interleaved(fns, args.repeats)
    y_fast = outs[0]
    row = {"model": name, "n": len(x), "fast_s": times[0]}
    for level, t, y in zip(ORT_LEVELS, times[1:], outs[1:]):
        row[f"ort_{level}_s"] = t
        row[f"fast_eq_ort_{level}"] = bool(np.array_equal(y_fast, np.asarray(y).reshape(y_fast.shape)))
    if args.csim_n and (args.csim_rows is None or name in args.csim_rows.split(",")):
        csim = CsimEngine(hls_dir)
        xc = x[: args.csim_n]
        t_csim, y_csim = _median_time(lambda: csim.predict(xc), args.repeats)
        csim.close()
        assert np.array_equal(y_fast[: len(xc)], y_csim), f"{name}: fast engine is not bit-exact against csim"
        row.update(csim_n=len(xc), csim_s=t_csim, fast_eq_csim=True)
    return row


def first_prediction(name, qonnx: Path, sample, work: Path, repeats: int) -> dict:
    """QONNX file -> first output, medians: `fpgadl hls` + emulate vs `fpgadl hls` + compile + predict."""
    fast_t, csim_t = [], []
    for i in range(repeats):
        t0 = time.perf_counter()
        api.hls(qonnx, out=work / f"{name}-fast{i}", warn=lambda m: None)
        y_fast = FastEngine(work / f"{name}-fast{i}").predict(sample)
        fast_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        api.hls(qonnx, out=work / f"{name}-csim{i}", warn=lambda m: None)
        csim = CsimEngine(work / f"{name}-csim{i}")
        y_csim = csim.predict(sample)
        csim_t.append(time.perf_counter() - t0)
        csim.close()
        assert np.array_equal(y_fast, y_csim)
    return {"first_fast_s": statistics.median(fast_t), "first_csim_s": statistics.median(csim_t)}


def bench_module(name, module, shape, x_onnx_layout, work: Path, args) -> dict:
    """The product's own path: fpgadl's exports, `fpgadl hls` conversion, and its two engines."""
    out = work / name
    export_qonnx_file(module, shape, out / "model.qonnx.onnx")
    export_qcdq_file(module, shape, out / "model.qcdq.onnx")
    api.hls(out / "model.qonnx.onnx", out=out / "hls", warn=lambda m: None)
    row = measure(name, out / "hls", out / "model.qcdq.onnx", x_onnx_layout, x_onnx_layout, args)
    if args.first_repeats:
        row.update(first_prediction(name, out / "model.qonnx.onnx", x_onnx_layout[:1], work, args.first_repeats))
    return row


def bench_recipe(recipe: str, work: Path, args) -> dict:
    """A zoo recipe through `fpgadl run` (train briefly, export, convert), then the engines on stress inputs."""
    from fpgadl.flow.pipeline import RunDir
    from fpgadl.flow.stages import stress_inputs
    from fpgadl.hls.engines import prequantize

    out = work / recipe
    api.run(
        recipe, out=out, epochs=args.epochs, engine="fast", stages=("train", "export", "convert"), warn=lambda m: None
    )
    x = stress_inputs(np.load(out / RunDir.X_TEST), args.batch, seed=1)
    fast = FastEngine(out / "hls")
    onnx_path, x_ort = out / RunDir.QCDQ, x
    if (out / RunDir.TWIN_ONNX).is_file():  # recurrent: the float twin, fed the input quantizer's output
        onnx_path = out / RunDir.TWIN_ONNX
        x_ort = np.ascontiguousarray(prequantize(x, fast.meta.input_prequant)) if fast.meta.input_prequant else x
    return measure(recipe, out / "hls", onnx_path, x, x_ort, args)


RECIPES = ("conv1d-mnist1d", "gru-mnist1d", "lstm-mnist1d", "vgg-digits")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per timed figure (median)")
    parser.add_argument("--batch", type=int, default=20_000, help="inputs per throughput run")
    parser.add_argument("--csim-n", type=int, default=2000, help="inputs csim runs (0: skip csim)")
    parser.add_argument("--csim-rows", default=None, help="comma-separated rows csim runs on (default: all)")
    parser.add_argument("--first-repeats", type=int, default=5, help="QONNX -> first prediction runs (0: skip)")
    parser.add_argument("--ort-threads", type=int, default=1, help="onnxruntime intra-op threads")
    parser.add_argument("--epochs", type=int, default=1, help="training epochs for the recipe rows")
    parser.add_argument("--recipes", default=",".join(RECIPES), help="comma-separated zoo recipes ('' for none)")
    return parser.parse_args(argv)


def run_all(args) -> list[dict]:
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
        rows.append(bench_module("mlp-64-32-10", mlp, (64,), x_flat, work, args))
        x_nchw = np.ascontiguousarray(x_flat.reshape(-1, 1, 8, 8))
        rows.append(bench_module("cnn-conv4-pool-dense", cnn, (1, 8, 8), x_nchw, work, args))
        for recipe in filter(None, args.recipes.split(",")):
            rows.append(bench_recipe(recipe, work, args))
    return rows


def table(rows: list[dict], args) -> str:
    """Markdown table: throughputs (samples/s) and the ratios measured in this run."""
    lines = [
        "| model | fast samples/s | onnxruntime samples/s, basic / all | **fast/ort basic** | fast/ort all "
        "| identical to fast: ort basic / all | csim samples/s | **csim time/fast** | fast == csim "
        "| QONNX to first prediction, fast vs csim |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        fast_tp = r["n"] / r["fast_s"]
        basic_tp, all_tp = r["n"] / r["ort_basic_s"], r["n"] / r["ort_all_s"]
        same = " / ".join("yes" if r[f"fast_eq_ort_{level}"] else "no" for level in ORT_LEVELS)
        csim = "-"
        ratio = "-"
        if "csim_s" in r:
            csim_tp = r["csim_n"] / r["csim_s"]
            csim, ratio = f"{csim_tp:,.0f}", f"{fast_tp / csim_tp:.0f}x"
        first = "-"
        if "first_fast_s" in r:
            f, c = r["first_fast_s"], r["first_csim_s"]
            first = f"{f:.2f} s vs {c:.2f} s ({c / f:.0f}x)"
        lines.append(
            f"| {r['model']} | {fast_tp:,.0f} | {basic_tp:,.0f} / {all_tp:,.0f} | **{fast_tp / basic_tp:.2f}** "
            f"| {fast_tp / all_tp:.2f} | {same} | {csim} | {ratio} | {r.get('fast_eq_csim', '-')} | {first} |"
        )
    lines.append("")
    lines.append(
        f"Medians of {args.repeats} runs in one process; throughput at {args.batch:,} inputs per run "
        f"(csim: the first {args.csim_n:,}, compared with the fast engine's outputs exactly"
        f"{'' if args.csim_rows is None else '; csim rows: ' + args.csim_rows}); "
        f"the fast engine and onnxruntime single-threaded (intra-op threads {args.ort_threads}), "
        "taking turns within each repeat. onnxruntime runs at two optimisation levels: *basic*, the level "
        "fpgadl's verify stage uses as its reference, and *all*, onnxruntime's default, whose QDQ fusions run "
        "integer kernels that need not compute the same numbers (the identical column says whether every "
        "output equalled the fast engine's). Recipe rows: zoo recipes trained for "
        f"{args.epochs} epoch(s), on the pipeline's stress inputs; GRU/LSTM: onnxruntime runs the float twin "
        "(not the firmware's arithmetic, so not identical)."
    )
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    rows = run_all(args)
    print(table(rows, args))


if __name__ == "__main__":
    main()
