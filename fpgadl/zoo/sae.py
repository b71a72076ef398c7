"""Stacked autoencoders: greedy layer-wise pre-training, then a fine-tuned classifier (Bengio et al. 2007).

Each hidden layer of the recipe's MLP is first trained as the encoder of a one-hidden-layer autoencoder
on the activations of the layer below (inputs optionally corrupted by zero-masking, as in
DeepLearnToolbox's SDAE); the encoders then initialise the classifier, which is fine-tuned with the usual
QAT trainer. The deployed network is the classifier. For comparison, the same network from the same
initial weights is trained without pre-training for the same epochs; its test accuracy (torch) is kept
in the training history and shown in the report. Pre-training runs in float on the latent weights.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import torch

from fpgadl.ml.datasets import Dataset
from fpgadl.ml.extras import ReportExtra, markdown_table, register_report_extra
from fpgadl.ml.recipes import Recipe
from fpgadl.ml.train import (
    Progress,
    TrainResult,
    minibatches,
    register_trainer,
    seed_everything,
    torch_predict,
    train_supervised,
)

ACTIVATIONS = {"sigmoid": torch.sigmoid, "relu": torch.relu, "tanh": torch.tanh}


def pretrain_autoencoder(
    v: torch.Tensor, encoder: torch.nn.Linear, act, epochs: int, lr: float, mask: float, batch_size: int, gen
) -> float:
    """Train encoder (in place) with a fresh linear decoder to reconstruct v; returns the last epoch's MSE.
    The decoder's output is a sigmoid when v lies in [0, 1] (pixels, sigmoid codes), linear otherwise."""
    w = encoder.weight.detach().clone().requires_grad_(True)
    b = encoder.bias.detach().clone().requires_grad_(True)
    decoder = torch.nn.Linear(w.shape[0], w.shape[1])
    squash = torch.sigmoid if float(v.min()) >= 0 and float(v.max()) <= 1 else (lambda z: z)
    opt = torch.optim.Adam([w, b, *decoder.parameters()], lr=lr)
    err = float("nan")
    for _ in range(epochs):
        total = 0.0
        for idx in minibatches(len(v), batch_size, gen):
            clean = v[idx]
            noisy = clean * (torch.rand(clean.shape, generator=gen) >= mask) if mask > 0 else clean
            loss = torch.mean((squash(decoder(act(noisy @ w.T + b))) - clean) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * len(clean)
        err = total / len(v)
    with torch.no_grad():
        encoder.weight.copy_(w)
        encoder.bias.copy_(b)
    return err


def accuracy(model: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    return float((torch_predict(model, x).argmax(1) == y).mean())


@register_trainer("stacked-ae")
def train_stacked(
    model: torch.nn.Module, data: Dataset, recipe: Recipe, progress: Progress | None = None
) -> TrainResult:
    """train.params: pretrain_epochs (per autoencoder, default 10), pretrain_lr (default 0.01),
    mask_fraction (zero-masking corruption of the pre-training inputs, default 0)."""
    params = recipe.train.params
    epochs, lr = int(params.get("pretrain_epochs", 10)), float(params.get("pretrain_lr", 0.01))
    mask = float(params.get("mask_fraction", 0.0))
    act = ACTIVATIONS[recipe.model.params.get("activation", "relu")]
    seed_everything(recipe.train.seed)
    scratch = copy.deepcopy(model)  # same initial weights, no pre-training
    baseline = train_supervised(scratch, data, recipe)
    gen = torch.Generator().manual_seed(recipe.train.seed)
    v = torch.from_numpy(data.x_train.reshape(len(data.x_train), -1))
    errors = []
    for layer in [m for m in model.modules() if isinstance(m, torch.nn.Linear)][:-1]:
        errors.append(round(pretrain_autoencoder(v, layer, act, epochs, lr, mask, recipe.train.batch_size, gen), 6))
        with torch.no_grad():
            v = act(v @ layer.weight.T + layer.bias)
    result = train_supervised(model, data, recipe, progress)
    comparison = {
        "pretrained_test_accuracy": accuracy(model, data.x_test, data.y_test),
        "no_pretraining_test_accuracy": accuracy(scratch, data.x_test, data.y_test),
        "no_pretraining_best_epoch": baseline.best_epoch,
        "autoencoder_reconstruction_mse": errors,
    }
    result.history.insert(0, {"epoch": 0, "stacked_ae": comparison})
    return result


@register_report_extra("stacked-ae")
def stacked_extra(run_dir: Path, recipe: Recipe) -> ReportExtra:
    history = json.loads((run_dir / "train.json").read_text())["history"]
    c = next(h["stacked_ae"] for h in history if "stacked_ae" in h)
    metrics = {
        e: json.loads(p.read_text())["value"]
        for e in ("torch", "fast", "csim")
        if (p := run_dir / f"metrics/{e}.json").is_file()
    }
    emulated = next((e for e in ("csim", "fast") if e in metrics), None)
    rows = [
        [
            "greedy layer-wise pre-training, then fine-tuning (deployed)",
            f"{c['pretrained_test_accuracy']:.4f}",
            f"{metrics[emulated]:.4f} ({emulated})" if emulated else "–",
        ],
        [
            "same network and initial weights, no pre-training",
            f"{c['no_pretraining_test_accuracy']:.4f}",
            "not deployed",
        ],
    ]
    lines = [
        f"Test accuracy with and without pre-training, same fine-tuning epochs ({recipe.train.epochs}, early stopping "
        f"on validation). Autoencoder reconstruction MSE per pre-trained layer: {c['autoencoder_reconstruction_mse']}.",
        "",
        *markdown_table(["classifier", "test accuracy (QAT torch)", "emulated FPGA"], rows),
    ]
    return ReportExtra("Stacked autoencoder: with and without pre-training", lines, c)
