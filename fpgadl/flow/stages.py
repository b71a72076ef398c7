"""The six stages of a run: train, export, verify, convert, emulate, report (see DESIGN.md).

Each reads its inputs from the run directory and writes its outputs there atomically; predictions on the
test split go to `predictions/<engine>.npy` and each engine's metric to `metrics/<engine>.json`, so the
report only aggregates files.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from fpgadl.core.artifacts import atomic_path, write_json, write_npy, write_text
from fpgadl.flow.pipeline import RunConfig, RunDir, Stage

X_TEST, Y_TEST = "data/x_test.npy", "data/y_test.npy"
MODEL, QONNX, QCDQ = "model.pt", "model.qonnx.onnx", "model.qcdq.onnx"
# Recurrent nets go through hls4ml's PyTorch front end: their ONNX is the float twin, for onnxruntime.
TWIN_ONNX = "model.twin.onnx"
RECURRENT_ARCHS = ("gru", "lstm", "rnn")


def is_recurrent(cfg: RunConfig) -> bool:
    return cfg.recipe.model.arch in RECURRENT_ARCHS


def load_data(cfg: RunConfig):
    from fpgadl.ml.datasets import load_dataset

    d = cfg.recipe.dataset
    return load_dataset(
        d.name,
        val_fraction=d.val_fraction,
        test_fraction=d.test_fraction,
        subset=d.subset,
        seed=cfg.recipe.train.seed,
        params=d.params,
    )


def build(cfg: RunConfig, input_shape: tuple, n_out: int) -> torch.nn.Module:
    from fpgadl.zoo import build_model

    r = cfg.recipe
    return build_model(r.model.arch, r.model.params, r.quant, input_shape, n_out)


def load_trained(run: RunDir, cfg: RunConfig) -> torch.nn.Module:
    info = run.read_json("train.json")
    model = build(cfg, tuple(info["input_shape"]), info["n_out"])
    model.load_state_dict(torch.load(run / MODEL, weights_only=True))
    return model.eval()


def predict_and_record(run: RunDir, cfg: RunConfig, engine: str, predict, x: np.ndarray, **extra) -> np.ndarray:
    """One engine on the test split: timed predictions to predictions/<engine>.npy, its metric to
    metrics/<engine>.json. The metric reuses those predictions; it calls `predict` only for other inputs
    (a control task's episodes)."""
    from fpgadl.ml.metrics import evaluate

    t0 = time.perf_counter()
    y_pred = predict(x)
    seconds = time.perf_counter() - t0
    write_npy(run / f"predictions/{engine}.npy", y_pred)
    value = evaluate(cfg.recipe, x, np.load(run / Y_TEST), lambda a: y_pred if a is x else predict(a))
    entry = {
        "engine": engine,
        "metric": cfg.recipe.metric,
        "value": value,
        "n": len(x),
        "predict_seconds": round(seconds, 4),
        "samples_per_second": round(len(x) / seconds, 1) if seconds > 0 else None,
        **extra,
    }
    write_json(run / f"metrics/{engine}.json", entry)
    return y_pred


# ---------------------------------------------------------------- train
def train_stage(run: RunDir, cfg: RunConfig) -> None:
    from fpgadl.ml.train import seed_everything, torch_predict, train

    data = load_data(cfg)
    seed_everything(cfg.recipe.train.seed)
    model = build(cfg, data.input_shape, data.n_out)
    result = train(model, data, cfg.recipe, cfg.progress)
    with atomic_path(run / MODEL, ".pt") as tmp:
        torch.save(model.state_dict(), tmp)
    write_npy(run / X_TEST, data.x_test)
    write_npy(run / Y_TEST, data.y_test)
    write_json(
        run / "train.json",
        {
            "input_shape": list(data.input_shape),
            "n_out": data.n_out,
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch,
            "best_val": result.best_val,
            "history": result.history,
            "n_train": len(data.x_train),
            "n_val": len(data.x_val),
            "n_test": len(data.x_test),
        },
    )
    predict_and_record(run, cfg, "torch", lambda x: torch_predict(model, x), data.x_test)


# ---------------------------------------------------------------- export
def export_stage(run: RunDir, cfg: RunConfig) -> None:
    from fpgadl.hls.export import export_qcdq_file, export_qonnx_file

    model = load_trained(run, cfg)
    shape = tuple(run.read_json("train.json")["input_shape"])
    if is_recurrent(cfg):
        from fpgadl.hls.export import export_float_file

        export_float_file(model.float_twin(), shape, run / TWIN_ONNX)
        return
    export_qonnx_file(model, shape, run / QONNX)
    export_qcdq_file(model, shape, run / QCDQ)


# ---------------------------------------------------------------- verify
def verify_stage(run: RunDir, cfg: RunConfig) -> None:
    from fpgadl.hls.export import onnxruntime_predict

    x = np.load(run / X_TEST)
    path, prepare = run / QCDQ, (lambda a: a)
    if is_recurrent(cfg):  # the float twin has no input quantizer: apply the trained one first
        model = load_trained(run, cfg)

        def prepare(a):
            with torch.no_grad():
                return model.inp(torch.from_numpy(a)).value.numpy()

        path = run / TWIN_ONNX

    def predict(a):
        return onnxruntime_predict(path, prepare(a))

    predict_and_record(run, cfg, "onnxruntime", predict, x)


# ---------------------------------------------------------------- convert
def convert_options(cfg: RunConfig):
    from fpgadl.hls.convert import ConvertOptions

    h, t = cfg.recipe.hls, cfg.recipe.target
    fit = cfg.fit or t is not None
    return ConvertOptions(
        board=cfg.board_name,
        io_type=h.io_type,
        strategy=h.strategy,
        reuse_factor=h.reuse_factor,
        backend=h.backend,
        fit=fit,
        ceiling=t.ceiling if t else 0.8,
        target_latency_cycles=t.latency_cycles if t else None,
        target_ii=t.ii if t else None,
    )


def convert_stage(run: RunDir, cfg: RunConfig) -> None:
    from fpgadl.hls.convert import convert

    warnings: list[str] = []

    def warn(msg: str) -> None:
        warnings.append(msg)
        cfg.warn(msg)

    if is_recurrent(cfg):
        from fpgadl.hls.convert import convert_recurrent

        meta = convert_recurrent(load_trained(run, cfg), run / "hls", convert_options(cfg), warn=warn)
    else:
        meta = convert(run / QONNX, run / "hls", convert_options(cfg), warn=warn)
    write_json(
        run / "convert.json",
        {
            "warnings": warnings,
            "exact": meta.exact,
            "inexact_layers": meta.inexact_layers,
            "input_type": meta.input_type,
        },
    )


# ---------------------------------------------------------------- emulate
# Beyond the test split, fast and csim are compared on this many inputs drawn around it and far outside
# the input port's range, so saturation and wrap paths run too.
STRESS_SAMPLES = 10_000


def stress_inputs(x: np.ndarray, n: int = STRESS_SAMPLES, seed: int = 0) -> np.ndarray:
    """Test-split samples scaled by up to +-8x plus noise: in range, on the edges and far outside it."""
    rng = np.random.default_rng(seed)
    base = x[rng.integers(0, len(x), n)].astype(np.float64)
    scale = rng.choice([1.0, -1.0, 2.0, 8.0, 0.5], size=(n,) + (1,) * (x.ndim - 1))
    spread = max(float(np.abs(x).max()), 1e-3)
    noise = rng.normal(0.0, 0.1 * spread, size=base.shape)
    return (base * scale + noise).astype(np.float32)


def emulate_stage(run: RunDir, cfg: RunConfig) -> None:
    from fpgadl.hls.engines import check_input, open_engine

    x = np.load(run / X_TEST)
    stress = stress_inputs(x)
    stress_out = {}
    for name in cfg.engines:
        t0 = time.perf_counter()
        engine = open_engine(run / "hls", name)
        setup = time.perf_counter() - t0
        try:
            xs = check_input(x, engine.meta, "test split")
            predict_and_record(run, cfg, name, engine.predict, xs, setup_seconds=round(setup, 3))
            if len(cfg.engines) > 1:
                stress_out[name] = engine.predict(check_input(stress, engine.meta, "stress inputs"))
        finally:
            engine.close()
    if len(stress_out) == 2:
        from fpgadl.flow.report import compare

        result = compare(stress_out["csim"], stress_out["fast"])
        write_json(run / "metrics/stress.json", {"n": len(stress), "engines": ["csim", "fast"], **result})


# ---------------------------------------------------------------- report
def report_stage(run: RunDir, cfg: RunConfig) -> None:
    from fpgadl.flow.report import build_report, render_markdown

    if cfg.recipe.metric == "fidelity":  # a generator: show what each engine draws from the test latents
        from fpgadl.zoo.gan import sample_grid

        engine = next(e for e in ("fast", "csim", "torch") if (run / f"predictions/{e}.npy").is_file())
        with atomic_path(run / "samples.png", ".png") as tmp:
            sample_grid(np.load(run / f"predictions/{engine}.npy")[:64], str(tmp))
    report = build_report(run, cfg)
    write_json(run / "report.json", report)
    write_text(run / "report.md", render_markdown(report))


def _pred(cfg: RunConfig) -> list[str]:
    return [f"predictions/{e}.npy" for e in ("torch", "onnxruntime", *cfg.engines)]


STAGE_LIST = [
    Stage(
        "train",
        train_stage,
        inputs=lambda c: [],
        outputs=lambda c: [
            MODEL,
            X_TEST,
            Y_TEST,
            "train.json",
            "predictions/torch.npy",
            "metrics/torch.json",
        ],
        options=lambda c: {"recipe": c.recipe.model_dump(mode="json", exclude={"board", "hls", "target"})},
    ),
    Stage(
        "export",
        export_stage,
        inputs=lambda c: [MODEL, "train.json"],
        outputs=lambda c: [TWIN_ONNX] if is_recurrent(c) else [QONNX, QCDQ],
    ),
    Stage(
        "verify",
        verify_stage,
        inputs=lambda c: [TWIN_ONNX if is_recurrent(c) else QCDQ, X_TEST, Y_TEST],
        outputs=lambda c: ["predictions/onnxruntime.npy", "metrics/onnxruntime.json"],
        options=lambda c: {"metric": c.recipe.metric},
    ),
    Stage(
        "convert",
        convert_stage,
        inputs=lambda c: [MODEL if is_recurrent(c) else QONNX],
        outputs=lambda c: ["hls/fpgadl.json", "convert.json"],
        options=lambda c: {
            "hls": c.recipe.hls.model_dump(),
            "board": c.board_name,
            "fit": c.fit,
            "target": c.recipe.target.model_dump() if c.recipe.target else None,
        },
    ),
    Stage(
        "emulate",
        emulate_stage,
        inputs=lambda c: ["hls/fpgadl.json", "hls/model.clean.onnx", X_TEST, Y_TEST],
        outputs=lambda c: (
            [f"predictions/{e}.npy" for e in c.engines] + (["metrics/stress.json"] if len(c.engines) > 1 else [])
        ),
        options=lambda c: {"engines": c.engines, "metric": c.recipe.metric},
    ),
    Stage(
        "report",
        report_stage,
        inputs=lambda c: [
            *_pred(c),
            *[f"metrics/{e}.json" for e in ("torch", "onnxruntime", *c.engines)],
            *(["metrics/stress.json"] if len(c.engines) > 1 else []),
            "train.json",
            "convert.json",
            "hls/fpgadl.json",
        ],
        outputs=lambda c: ["report.md", "report.json"],
        options=lambda c: c.options(),
    ),
]
