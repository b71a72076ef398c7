"""DBN-style stacked sigmoid networks: greedy layer-wise RBM pre-training, then supervised fine-tuning.

Hinton, Osindero & Teh (2006): each hidden layer is trained as a restricted Boltzmann machine on the
activations of the layer below, with one step of contrastive divergence (CD-1); the stack then
initialises a sigmoid MLP that is fine-tuned with back-propagation (here: QAT with the usual trainer).
Inference is the stacked network itself (`mlp` with `activation: sigmoid`), so export is the MLP's.
Pre-training runs in float on the layers' latent weights; the quantizers apply from fine-tuning on.
"""

from __future__ import annotations

import numpy as np
import torch

from fpgadl.ml.datasets import Dataset
from fpgadl.ml.recipes import Recipe
from fpgadl.ml.train import (
    Progress,
    TrainResult,
    minibatches,
    register_trainer,
    seed_everything,
    train_supervised,
)


def pretrain_rbm(
    v_data: torch.Tensor, n_hidden: int, epochs: int, lr: float, batch_size: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Bernoulli-Bernoulli RBM with CD-1 (inputs in [0, 1] used as probabilities).

    Returns (W of shape (n_hidden, n_visible), hidden bias, last epoch's reconstruction MSE).
    """
    n_vis = v_data.shape[1]
    w = 0.01 * torch.randn(n_hidden, n_vis, generator=gen)
    b_h = torch.zeros(n_hidden)
    b_v = torch.zeros(n_vis)
    err = float("nan")
    for _ in range(epochs):
        total = 0.0
        for idx in minibatches(len(v_data), batch_size, gen):
            v0 = v_data[idx]
            p_h0 = torch.sigmoid(v0 @ w.T + b_h)
            h0 = torch.bernoulli(p_h0, generator=gen)
            p_v1 = torch.sigmoid(h0 @ w + b_v)
            p_h1 = torch.sigmoid(p_v1 @ w.T + b_h)
            n = len(v0)
            w += lr * (p_h0.T @ v0 - p_h1.T @ p_v1) / n
            b_h += lr * (p_h0 - p_h1).mean(0)
            b_v += lr * (v0 - p_v1).mean(0)
            total += float(((v0 - p_v1) ** 2).sum())
        err = total / v_data.numel()
    return w, b_h, err


@register_trainer("dbn")
def train_dbn(
    model: torch.nn.Module, data: Dataset, recipe: Recipe, progress: Progress | None = None
) -> TrainResult:
    """train.params: pretrain_epochs (per RBM, default 10), pretrain_lr (default 0.1)."""
    params = recipe.train.params
    epochs = int(params.get("pretrain_epochs", 10))
    lr = float(params.get("pretrain_lr", 0.1))
    seed_everything(recipe.train.seed)
    gen = torch.Generator().manual_seed(recipe.train.seed)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    v = torch.from_numpy(data.x_train.reshape(len(data.x_train), -1))
    v = v.clamp(0, 1)  # the RBM's visible units are Bernoulli probabilities
    errors = []
    for layer in linears[:-1]:  # every hidden layer; the classifier is learnt in fine-tuning
        w, b_h, err = pretrain_rbm(v, layer.out_features, epochs, lr, recipe.train.batch_size, gen)
        with torch.no_grad():
            layer.weight.copy_(w)
            layer.bias.copy_(b_h)
        errors.append(err)
        v = torch.sigmoid(v @ w.T + b_h)
    result = train_supervised(model, data, recipe, progress)
    result.history.insert(0, {"epoch": 0, "rbm_reconstruction_mse": [float(np.round(e, 6)) for e in errors]})
    return result
