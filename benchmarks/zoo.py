"""Zoo accuracy table: every recipe trained full length at ~float (16-bit), 8-bit and 4-bit, on the test split.

Writes docs/zoo.md. "float" is 16-bit power-of-two quantization of inputs, weights and activations
(indistinguishable from float32 at these sizes, and the same code path); 4-bit quantizes weights and
activations to 4 bits and keeps the 8-bit input port. The MNIST-1D column quotes the float results
published with the dataset (Greydanus 2020) for the matching model kind.

    .venv/bin/python benchmarks/zoo.py [--recipes a,b] [--epochs N] [--out docs/zoo.md]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from fpgadl.data import load_dataset
from fpgadl.recipes import available_recipes, load_recipe
from fpgadl.train import torch_predict, train
from fpgadl.zoo import build_model

PUBLISHED_MNIST1D = {
    "softmax-mnist1d": 0.32,
    "mlp-mnist1d": 0.68,
    "conv1d-mnist1d": 0.94,
    "gru-mnist1d": 0.91,
}
PRECISIONS = {
    "float (16-bit)": {
        "quant.input_bits": 16,
        "quant.weight_bits": 16,
        "quant.act_bits": 16,
        "quant.bias_bits": 32,
    },
    "8-bit": {},
    "4-bit": {"quant.weight_bits": 4, "quant.act_bits": 4},
}


def score(recipe, data, model) -> float:
    if recipe.metric == "reward":
        from fpgadl.zoo.cartpole import greedy_reward

        return greedy_reward(lambda s: torch_predict(model, s), episodes=50, seed=123)
    y = torch_predict(model, data.x_test)
    if recipe.metric == "fidelity":
        from fpgadl.zoo.gan import fidelity

        return fidelity(y)
    if recipe.metric == "mse":
        return float(np.mean((y - data.y_test.reshape(y.shape)) ** 2))
    return float((y.argmax(1) == data.y_test).mean())


def run(name: str, overrides: dict) -> tuple[float, float]:
    recipe = load_recipe(name, **overrides)
    data = load_dataset(
        recipe.dataset.name,
        val_fraction=recipe.dataset.val_fraction,
        test_fraction=recipe.dataset.test_fraction,
        subset=recipe.dataset.subset,
        seed=recipe.train.seed,
        params=recipe.dataset.params,
    )
    torch.manual_seed(recipe.train.seed)
    model = build_model(recipe.model.arch, recipe.model.params, recipe.quant, data.input_shape, data.n_out)
    t = time.time()
    train(model, data, recipe)
    return score(recipe, data, model), time.time() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipes", default=",".join(available_recipes()))
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "docs" / "zoo.md"))
    args = ap.parse_args()
    rows = []
    for name in args.recipes.split(","):
        recipe = load_recipe(name)
        cells, seconds = [], 0.0
        for label, over in PRECISIONS.items():
            value, dt = run(name, {**over, "train.epochs": args.epochs})
            cells.append(value)
            seconds += dt
            print(f"{name:22s} {label:15s} {recipe.metric} {value:.4f} ({dt:.0f} s)", flush=True)
        published = PUBLISHED_MNIST1D.get(name)
        rows.append((name, recipe.family, recipe.metric, cells, published, recipe.floor, seconds))
    lines = [
        "# Zoo results",
        "",
        (
            "Test-split metric of the QAT torch model per recipe, trained by `benchmarks/zoo.py` "
            f"({'recipe epochs' if args.epochs is None else f'{args.epochs} epochs'}, seed 0). "
            "Accuracy and fidelity: higher is better; mse: lower is better; reward: greedy mean episode reward "
            "on CartPole (max 200). Float is 16-bit power-of-two quantization; 4-bit keeps the 8-bit input port."
        ),
        "",
        "| recipe | family | metric | float (16-bit) | 8-bit | 4-bit | MNIST-1D published (float) | floor | train s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, family, metric, cells, published, floor, seconds in rows:
        pub = f"{published:.2f}" if published is not None else ""
        fl = "" if floor is None else f"{floor:g}"
        vals = " | ".join(f"{v:.4f}" if metric != "reward" else f"{v:.1f}" for v in cells)
        lines.append(f"| {name} | {family} | {metric} | {vals} | {pub} | {fl} | {seconds:.0f} |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
