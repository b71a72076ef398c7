"""The six stages of a run: train, export, verify, convert, emulate, report (see docs/design.md).

Each reads its inputs from the run directory and writes its outputs there atomically; predictions on the
test split go to `predictions/<engine>.npy` and each engine's metric to `metrics/<engine>.json`, so the
report only aggregates files.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from fpgadl.core.artifacts import atomic_path, write_json, write_npy, write_text
from fpgadl.core.options import BOTH, STRESS_SAMPLES, HlsOptions
from fpgadl.flow.frontends import Frontend, frontend
from fpgadl.flow.pipeline import RunConfig, RunDir, Stage
from fpgadl.hls.project import CLEAN_MODEL
from fpgadl.ml.catalog import facts
from fpgadl.ml.models import build_model

X_TEST, Y_TEST, MODEL = RunDir.X_TEST, RunDir.Y_TEST, RunDir.MODEL


def frontend_of(cfg: RunConfig) -> Frontend:
    """The front end of the recipe's architecture (fpgadl.ml.catalog)."""
    return frontend(facts(cfg.recipe.model.arch).frontend)


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
    r = cfg.recipe
    return build_model(r.model.arch, r.model.params, r.quant, input_shape, n_out)


def load_trained(run: RunDir, cfg: RunConfig) -> torch.nn.Module:
    info = run.read_json(RunDir.TRAIN_INFO)
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
    write_npy(run / RunDir.predictions(engine), y_pred)
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
    write_json(run / RunDir.metrics(engine), entry)
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
        run / RunDir.TRAIN_INFO,
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
    shape = tuple(run.read_json(RunDir.TRAIN_INFO)["input_shape"])
    frontend_of(cfg).export(load_trained(run, cfg), shape, run)


# ---------------------------------------------------------------- verify
def verify_stage(run: RunDir, cfg: RunConfig) -> None:
    predict = frontend_of(cfg).reference(lambda: load_trained(run, cfg), run)
    predict_and_record(run, cfg, "onnxruntime", predict, np.load(run / X_TEST))


# ---------------------------------------------------------------- convert
def convert_options(cfg: RunConfig) -> HlsOptions:
    t = cfg.recipe.target
    return HlsOptions(
        **cfg.recipe.hls.model_dump(),
        board=cfg.board_name,
        fit=cfg.fit or t is not None,
        **({"ceiling": t.ceiling, "target_latency_cycles": t.latency_cycles, "target_ii": t.ii} if t else {}),
    )


def convert_stage(run: RunDir, cfg: RunConfig) -> None:
    warnings: list[str] = []

    def warn(msg: str) -> None:
        warnings.append(msg)
        cfg.warn(msg)

    meta = frontend_of(cfg).convert(lambda: load_trained(run, cfg), run, convert_options(cfg), warn)
    write_json(
        run / RunDir.CONVERT_INFO,
        {
            "warnings": warnings,
            "exact": meta.exact,
            "inexact_layers": meta.inexact_layers,
            "input_type": meta.input_type,
        },
    )


# ---------------------------------------------------------------- emulate
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
    from fpgadl.hls.testbench import TB_STRESS_SAMPLES, write_tb_data

    x = np.load(run / X_TEST)
    stress = stress_inputs(x, cfg.stress)
    tb_x = np.concatenate([x, stress[:TB_STRESS_SAMPLES]])  # the vendor bench's expectations, from the twin
    stress_out = {}
    for name in cfg.engines:
        t0 = time.perf_counter()
        engine = open_engine(run / RunDir.HLS, name)
        setup = time.perf_counter() - t0
        try:
            xs = check_input(x, engine.meta, "test split")
            predict_and_record(run, cfg, name, engine.predict, xs, setup_seconds=round(setup, 3))
            if cfg.stress_compared:
                stress_out[name] = engine.predict(check_input(stress, engine.meta, "stress inputs"))
            if name == "fast":  # the twin already open (building one converts the project again)
                write_tb_data(run / RunDir.HLS, tb_x, engine)
        finally:
            engine.close()
    if "fast" not in cfg.engines:
        write_tb_data(run / RunDir.HLS, tb_x)
    if len(stress_out) == 2:  # fast and the engine checked against it (csim or verilator)
        from fpgadl.flow.report import compare

        (other,) = set(stress_out) - {"fast"}
        result = compare(stress_out[other], stress_out["fast"])
        write_json(run / RunDir.STRESS, {"n": len(stress), "engines": [other, "fast"], **result})


# ---------------------------------------------------------------- report
def report_stage(run: RunDir, cfg: RunConfig) -> None:
    from fpgadl.flow.report import build_report, render_markdown
    from fpgadl.ml.metrics import PICTURES

    picture = PICTURES.get(cfg.recipe.metric)
    if picture:  # e.g. a generator: show what the emulated firmware draws from the test latents
        engine = next(e for e in (*BOTH, "torch") if (run / RunDir.predictions(e)).is_file())
        with atomic_path(run / RunDir.SAMPLES, ".png") as tmp:
            picture(np.load(run / RunDir.predictions(engine))[:64], str(tmp))
    report = build_report(run, cfg)
    write_json(run / RunDir.REPORT_JSON, report)
    write_text(run / RunDir.REPORT_MD, render_markdown(report))
    from fpgadl.flow.report_html import write_run_html

    write_run_html(report, run.path)


def _pred(cfg: RunConfig) -> list[str]:
    return [RunDir.predictions(e) for e in ("torch", "onnxruntime", *cfg.engines)]


def _stress(c: RunConfig) -> list[str]:
    return [RunDir.STRESS] if c.stress_compared else []


STAGE_LIST = [
    Stage(
        "train",
        train_stage,
        inputs=lambda c: [],
        outputs=lambda c: [
            MODEL,
            X_TEST,
            Y_TEST,
            RunDir.TRAIN_INFO,
            RunDir.predictions("torch"),
            RunDir.metrics("torch"),
        ],
        options=lambda c: {"recipe": c.recipe.model_dump(mode="json", exclude={"board", "hls", "target"})},
        sources=("fpgadl.ml", "fpgadl.zoo"),
    ),
    Stage(
        "export",
        export_stage,
        inputs=lambda c: [MODEL, RunDir.TRAIN_INFO],
        outputs=lambda c: list(frontend_of(c).exported),
        sources=("fpgadl.flow.frontends", "fpgadl.hls.export", "fpgadl.hls.pytorch_twin", "fpgadl.zoo"),
    ),
    Stage(
        "verify",
        verify_stage,
        inputs=lambda c: [*frontend_of(c).exported, X_TEST, Y_TEST],
        outputs=lambda c: [RunDir.predictions("onnxruntime"), RunDir.metrics("onnxruntime")],
        options=lambda c: {"metric": c.recipe.metric},
        sources=("fpgadl.flow.frontends", "fpgadl.hls.export", "fpgadl.ml", "fpgadl.zoo"),
    ),
    Stage(
        "convert",
        convert_stage,
        inputs=lambda c: [frontend_of(c).convert_source],
        outputs=lambda c: [RunDir.HLS_META, RunDir.CONVERT_INFO],
        options=lambda c: {
            "hls": c.recipe.hls.model_dump(),
            "board": c.board_name,
            "fit": c.fit,
            "target": c.recipe.target.model_dump() if c.recipe.target else None,
        },
        sources=("fpgadl.flow.frontends", "fpgadl.hls", "fpgadl.estimate", "fpgadl.zoo"),
    ),
    Stage(
        "emulate",
        emulate_stage,
        inputs=lambda c: [RunDir.HLS_META, f"{RunDir.HLS}/{CLEAN_MODEL}", X_TEST, Y_TEST],
        outputs=lambda c: (
            [RunDir.predictions(e) for e in c.engines] + _stress(c)
        ),
        options=lambda c: {"engines": c.engines, "metric": c.recipe.metric, "stress": c.stress},
        sources=("fpgadl.hls", "fpgadl.emulator", "fpgadl.rtl", "fpgadl.ml", "fpgadl.zoo"),
    ),
    Stage(
        "report",
        report_stage,
        inputs=lambda c: [
            *_pred(c),
            *[RunDir.metrics(e) for e in ("torch", "onnxruntime", *c.engines)],
            *_stress(c),
            RunDir.TRAIN_INFO,
            RunDir.CONVERT_INFO,
            RunDir.HLS_META,
            RunDir.RTL_META,  # optional: its Yosys counts, when `fpgadl rtl --synth` ran, judge the fit
        ],
        outputs=lambda c: [RunDir.REPORT_MD, RunDir.REPORT_JSON, RunDir.REPORT_HTML],
        options=lambda c: c.options(),
        sources=("fpgadl.flow", "fpgadl.estimate", "fpgadl.ml", "fpgadl.zoo"),
    ),
]
STAGES = tuple(s.name for s in STAGE_LIST)
