"""Zoo accuracy table: every recipe trained full length, its test metric at ~float and on the emulated FPGA
at 8 and 4 bits, each emulated model also run in hls4ml's C simulation. Writes docs/zoo.md.

The 8-bit and 4-bit columns are the emulated firmware's metric: the recipe runs through `fpgadl.api.run`
(train, export, hls4ml conversion, then both engines) and the value is the `fast` engine's metric. Every
such run also compiles the project and runs csim on the test split and on 10,000 stress inputs; the
"fast == csim" column is that verdict (exact equality of every output), so the table's numbers are the
C simulation's too. 4-bit quantizes weights and activations to 4 bits and keeps the recipe's input port.
The reference column is the same architecture trained with 16-bit power-of-two quantizers (32-bit
biases), scored in torch. MNIST-1D recipes run 3 seeds (mean ± sample std); the seed sets the weight
initialisation, the data order and the train/validation/test split. The MNIST-1D column quotes the float
results published with the dataset (Greydanus 2020) for the matching model kind.

Each finished run is stored in docs/zoo.json at once (recipe, column, seed, epochs), so an interrupted or
partial run (`--recipes`) keeps its results and the table is rendered from everything stored; `--fresh`
re-measures.

    .venv/bin/python benchmarks/zoo.py [--recipes a,b] [--epochs N] [--seeds 3] [--jobs 2] [--fresh] [--render-only]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

from fpgadl.core.artifacts import write_json, write_text
from fpgadl.ml.recipes import available_recipes, load_recipe

DOCS = Path(__file__).resolve().parent.parent / "docs"
PUBLISHED_MNIST1D = {
    "softmax-mnist1d": 0.32,
    "mlp-mnist1d": 0.68,
    "conv1d-mnist1d": 0.94,
    "lenet1d-mnist1d": 0.94,
    "gru-mnist1d": 0.91,
}
# Issue goal: emulated accuracy within this many points of the published float result.
GOAL_POINTS = {"8-bit": 2.0, "4-bit": 5.0}
REFERENCE = "16-bit torch"
REFERENCE_BITS = {"quant.input_bits": 16, "quant.weight_bits": 16, "quant.act_bits": 16, "quant.bias_bits": 32}
EMULATED = {"8-bit": {}, "4-bit": {"quant.weight_bits": 4, "quant.act_bits": 4}}
COLUMNS = (REFERENCE, *EMULATED)
MULTI_SEED_DATASETS = ("mnist1d",)  # rows compared with published numbers: error bars needed
# DeepLearnToolbox's example tests (tests/test_example_*.m): MNIST error thresholds, and our scaled recipe.
# (Ported from the zoo branch's --merge version: rows appear once those recipes exist and have stored runs.)
DLT_THRESHOLDS = {
    "dlt-nn-digits": ("test_example_NN: 784-100-10 tanh, 1 epoch", 0.08),
    "dlt-sae-digits": ("test_example_SAE: SDAE-initialised 784-100-10 sigmoid", 0.16),
    "stacked-ae-digits": ("SAE-initialised, two hidden layers (784-100-100-10)", 0.10),
    "dlt-dbn-digits": ("test_example_DBN: DBN-initialised 784-100-100-10", 0.10),
    "dlt-cnn-digits": ("test_example_CNN: 6c5-s2-12c5-s2", 0.12),
}


def seeds_for(name: str, n_seeds: int) -> list[int]:
    """The recipe's own seed, and the next ones for the rows that need error bars."""
    recipe = load_recipe(name)
    first = recipe.train.seed
    return list(range(first, first + n_seeds)) if recipe.dataset.name in MULTI_SEED_DATASETS else [first]


def reference(name: str, epochs: int | None, seed: int) -> dict:
    """Train at 16 bits and score the torch model (the recipe's metric, as every pipeline stage measures it)."""
    from fpgadl.ml.datasets import load_dataset
    from fpgadl.ml.metrics import evaluate
    from fpgadl.ml.train import seed_everything, torch_predict, train
    from fpgadl.zoo import build_model

    recipe = load_recipe(name, **{**REFERENCE_BITS, "train.epochs": epochs, "train.seed": seed})
    d = recipe.dataset
    data = load_dataset(
        d.name,
        val_fraction=d.val_fraction,
        test_fraction=d.test_fraction,
        subset=d.subset,
        seed=recipe.train.seed,
        params=d.params,
    )
    seed_everything(recipe.train.seed)
    model = build_model(recipe.model.arch, recipe.model.params, recipe.quant, data.input_shape, data.n_out)
    train(model, data, recipe)
    return {"value": evaluate(recipe, data.x_test, data.y_test, lambda x: torch_predict(model, x))}


def emulated(name: str, overrides: dict, epochs: int | None, seed: int) -> dict:
    """The firmware's metric (fast engine) and the verdict fast == csim on the test split and stress inputs."""
    from fpgadl import api

    with tempfile.TemporaryDirectory(prefix=f"zoo-{name}-") as out:
        report = api.run(
            name,
            out=Path(out) / name,
            epochs=epochs,
            seed=seed,
            engine="both",
            overrides=overrides,
            warn=lambda m: None,
        )
    metrics, pairs, stress = report["metrics"], report["comparisons"], report["stress"]
    torch_csim = pairs["torch|csim"]
    return {
        "value": float(metrics["fast"]["value"]),
        "csim_value": float(metrics["csim"]["value"]),
        "fast_eq_csim": pairs["csim|fast"]["identical_values"] == 1.0 and stress["identical_values"] == 1.0,
        "n_test": int(metrics["csim"]["n"]),
        "n_stress": int(stress["n"]),
        "exact_expected": bool(report["exact_expected"]),
        "torch_eq_csim": torch_csim["identical_values"] == 1.0,
        "torch_csim_max_abs_diff": torch_csim["max_abs_diff"],
        "torch_csim_argmax_agreement": torch_csim["argmax_agreement"],
    }


def measure(name: str, column: str, epochs: int | None, seed: int) -> dict:
    warnings.simplefilter("ignore")  # Brevitas/torch export chatter would bury the progress lines
    t0 = time.perf_counter()
    if column == REFERENCE:
        result = reference(name, epochs, seed)
    else:
        result = emulated(name, EMULATED[column], epochs, seed)
    return {
        "recipe": name,
        "column": column,
        "seed": seed,
        "epochs": epochs,
        **result,
        "seconds": time.perf_counter() - t0,
    }


def key(name: str, column: str, seed: int, epochs: int | None) -> str:
    return f"{name}|{column}|{seed}|{'recipe' if epochs is None else epochs}"


# ---------------------------------------------------------------- the table, from stored results
def fmt(metric: str, value: float) -> str:
    return f"{value:.1f}" if metric == "reward" else f"{value:.4f}"


def cell(metric: str, values: list[float], planned: int) -> str:
    if not values:
        return "not run"
    if len(values) == 1:  # no spread from one run
        return fmt(metric, values[0]) + ("" if planned == 1 else f" (1 of {planned} seeds)")
    text = f"{fmt(metric, statistics.mean(values))} ± {fmt(metric, statistics.stdev(values))}"
    return text if len(values) == planned else f"{text} ({len(values)} of {planned} seeds)"


def csim_cell(runs: list[dict]) -> str:
    if not runs:
        return "not run"
    bad = [r for r in runs if not r["fast_eq_csim"]]
    samples = sum(r["n_test"] + r["n_stress"] for r in runs)
    if bad:
        return f"**NO** ({len(bad)} of {len(runs)} runs differ)"
    return f"yes ({len(runs)} run{'s' if len(runs) > 1 else ''}, {samples:,} inputs)"


def goal_cell(name: str, means: dict) -> str:
    published = PUBLISHED_MNIST1D.get(name)
    if published is None or any(means.get(c) is None for c in GOAL_POINTS):
        return ""
    marks = []
    for column, points in GOAL_POINTS.items():
        gap = 100 * (published - means[column])
        marks.append(f"{column[0]}b {'met' if gap <= points else f'missed by {gap - points:.1f}'}")
    return ", ".join(marks)


def row(name: str, stored: dict, epochs: int | None, n_seeds: int) -> tuple[str, list[dict]]:
    recipe = load_recipe(name)
    seeds = seeds_for(name, n_seeds)
    runs = {c: [stored[k] for s in seeds if (k := key(name, c, s, epochs)) in stored] for c in COLUMNS}
    cells = [cell(recipe.metric, [r["value"] for r in runs[c]], len(seeds)) for c in COLUMNS]
    means = {c: statistics.mean(r["value"] for r in runs[c]) if runs[c] else None for c in COLUMNS}
    emulated_runs = [r for c in EMULATED for r in runs[c]]
    published = PUBLISHED_MNIST1D.get(name)
    seconds = sum(r["seconds"] for c in COLUMNS for r in runs[c])
    line = (
        f"| {name} | {recipe.family} | {recipe.metric} | {' | '.join(cells)} | {csim_cell(emulated_runs)} "
        f"| {'' if published is None else f'{published:.2f}'} | {goal_cell(name, means)} "
        f"| {'' if recipe.floor is None else f'{recipe.floor:g}'} | {len(seeds)} | {seconds:.0f} |"
    )
    return line, runs["8-bit"]


def deviation_line(name: str, runs: list[dict]) -> str | None:
    """8-bit csim against the QAT torch model: the measured deviation of the inexact families."""
    if not runs or runs[0]["exact_expected"]:
        return None
    worst = max(r["torch_csim_max_abs_diff"] for r in runs)
    agree = [r["torch_csim_argmax_agreement"] for r in runs if r["torch_csim_argmax_agreement"] is not None]
    agreement = f"{100 * min(agree):.1f}%" if agree else ""
    return f"| {name} | {sum(r['torch_eq_csim'] for r in runs)} of {len(runs)} | {worst:.4g} | {agreement} |"


INTRO = """\
Test-split metric per recipe, written by `benchmarks/zoo.py` from the runs it stored in `docs/zoo.json`
({epochs}, early stopping on validation). **8-bit and 4-bit are the emulated FPGA**: the recipe through
`fpgadl run` (train, export, hls4ml conversion) scored with the `fast` engine; every one of those runs also
compiled the project and ran hls4ml's C simulation on the test split and on 10,000 stress inputs (up to 8x
outside the input range): `fast == csim` says whether every output of every run was identical. 4-bit
quantizes weights and activations to 4 bits and keeps the 8-bit input port. `{reference}` is the reference:
the same architecture trained with 16-bit power-of-two quantizers (32-bit biases), scored in torch.
MNIST-1D rows are the mean ± sample standard deviation over {n_seeds} seeds (the seed sets the
initialisation, the data order and the train/validation/test split); other rows are the recipe's seed.
The published column is the float result of the matching model kind in Greydanus 2020, *Scaling down deep
learning* (MNIST-1D: 4000 train / 1000 test; its CNN for both Conv1D rows); the goal is the 8-bit mean
within 2 points of it and the 4-bit mean within 5. Accuracy and fidelity: higher is better; mse: lower is
better; reward: greedy mean episode reward on CartPole (max 200). `s` is the wall time of the row's runs,
summed (on a shared machine: compare within a run, not across)."""


def dlt_section(runs_8bit: dict[str, list[dict]]) -> list[str]:
    """The emulated FPGA's test error beside DeepLearnToolbox's MNIST thresholds (different data set)."""
    rows = []
    for name, (test, threshold) in DLT_THRESHOLDS.items():
        if runs_8bit.get(name):
            err = 1 - statistics.mean(r["value"] for r in runs_8bit[name])
            rows.append(f"| {name} | {test} | {threshold:.2f} | {err:.4f} | {'yes' if err < threshold else 'no'} |")
    return [
        "",
        "## DeepLearnToolbox parity",
        "",
        "DeepLearnToolbox's example tests train on MNIST (28x28, 60,000 images) and assert a test error below a "
        "threshold. **The data set here differs**: sklearn's 8x8 digits (1,797 images, 360 in the test split), so "
        "the input layer is 64 wide instead of 784, epochs are scaled to about one MNIST epoch's weight updates, "
        "and training uses Adam rather than the toolbox's plain SGD. The thresholds are a yardstick, not a "
        "replication. Error = 1 - accuracy of the emulated FPGA (8-bit, fast engine, equal to csim).",
        "",
        "| recipe | DeepLearnToolbox test | MNIST threshold | 8-bit emulated error (digits) | below threshold |",
        "|---|---|---|---|---|",
        *rows,
    ]


def intro(epochs: int | None, n_seeds: int) -> list[str]:
    when = "recipe epochs" if epochs is None else f"{epochs} epochs"
    return [
        "# Zoo results",
        "",
        INTRO.format(epochs=when, reference=REFERENCE, n_seeds=n_seeds).replace("\n", " "),
        "",
        f"| recipe | family | metric | {REFERENCE} | 8-bit emulated | 4-bit emulated | fast == csim "
        "| MNIST-1D published (float) | goal | floor | seeds | s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]


def table(stored: dict, epochs: int | None, n_seeds: int) -> str:
    lines = intro(epochs, n_seeds)
    runs_8bit = {}
    for name in available_recipes():
        line, runs_8bit[name] = row(name, stored, epochs, n_seeds)
        lines.append(line)
    deviations = [deviation_line(name, runs) for name, runs in runs_8bit.items()]
    lines += [
        "",
        "## Deviation from torch of the inexact families (8-bit)",
        "",
        "Families whose firmware cannot equal the QAT model (lookup-table sigmoid/tanh, BatchNorm scales, "
        "recurrent gates; docs/zoo-notes.md says why): csim against the QAT torch model on the test split, "
        "over the runs above. `torch == csim`: runs whose outputs were all identical; max |csim - torch|: "
        "largest output difference; argmax agreement: the lowest over the runs.",
        "",
        "| recipe | torch == csim | max abs(csim - torch) | argmax agreement |",
        "|---|---|---|---|",
        *[d for d in deviations if d is not None],
        *dlt_section(runs_8bit),
    ]
    return "\n".join(lines) + "\n"


def load_stored(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipes", default=",".join(available_recipes()))
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--seeds", type=int, default=3, help="seeds per MNIST-1D recipe (others: seed 0)")
    ap.add_argument("--jobs", type=int, default=1, help="runs in parallel (each trains on one thread)")
    ap.add_argument("--fresh", action="store_true", help="re-measure runs already stored")
    ap.add_argument("--render-only", action="store_true", help="write the table from the stored runs, run nothing")
    ap.add_argument("--results", default=str(DOCS / "zoo.json"))
    ap.add_argument("--out", default=str(DOCS / "zoo.md"))
    args = ap.parse_args()
    names = args.recipes.split(",")
    for name in names:
        load_recipe(name)  # fail before hours of training on a misspelt name
    results_path = Path(args.results)
    stored = load_stored(results_path)
    # every recipe's first seed before the extra seeds: a partial run still fills every row
    tasks = sorted(
        ((n, c, s) for c in COLUMNS for n in names for s in seeds_for(n, args.seeds)),
        key=lambda t: (t[2] - seeds_for(t[0], args.seeds)[0], names.index(t[0]), COLUMNS.index(t[1])),
    )
    tasks = [t for t in tasks if not args.render_only and (args.fresh or key(*t, args.epochs) not in stored)]
    print(f"{len(tasks)} runs to do", flush=True)
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(measure, n, c, args.epochs, s) for n, c, s in tasks]
        failed = []
        for future in as_completed(futures):
            try:
                r = future.result()
            except Exception as e:  # one recipe's failure is reported, the other runs go on (and are stored)
                failed.append(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
                print(f"FAILED: {failed[-1]}", flush=True)
                continue
            stored[key(r["recipe"], r["column"], r["seed"], args.epochs)] = r
            write_json(results_path, stored)  # at once: an interrupted benchmark keeps what it measured
            verdict = "" if "fast_eq_csim" not in r else f" fast==csim {r['fast_eq_csim']}"
            metric = load_recipe(r["recipe"]).metric
            print(
                f"{r['recipe']:22s} {r['column']:13s} seed {r['seed']} {fmt(metric, r['value']):>8s}{verdict} "
                f"({r['seconds']:.0f} s)",
                flush=True,
            )
    if failed:
        raise SystemExit(f"{len(failed)} run(s) failed (the others are stored): " + "; ".join(failed))
    text = table(stored, args.epochs, args.seeds)
    print(text)
    write_text(Path(args.out), text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
