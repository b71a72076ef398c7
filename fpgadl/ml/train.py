"""Quantization-aware training of a zoo model on its recipe's dataset.

Supervised training with what the coursework teaches: Adam with L2 weight decay, exponential learning-rate
decay per epoch, dropout (in the model), early stopping on the validation metric with the best weights
restored, fixed seeds. Families that train differently (layer-wise pre-training, RL, GANs) register a
trainer under their family name in `TRAINERS`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from fpgadl.ml.datasets import Dataset
from fpgadl.ml.recipes import Recipe

# progress(epoch, epochs, info) is called after every epoch; the CLI draws a Rich bar with it.
Progress = Callable[[int, int, dict], None]


@dataclass
class TrainResult:
    epochs_run: int
    best_epoch: int
    best_val: float
    history: list[dict] = field(default_factory=list)


TRAINERS: dict[str, Callable[[torch.nn.Module, Dataset, Recipe, Progress | None], TrainResult]] = {}


def register_trainer(family: str):
    def wrap(fn):
        TRAINERS[family] = fn
        return fn

    return wrap


class EarlyStopping:
    """Early stopping on a validation score (higher is better): records the history, reports progress,
    keeps the best weights and restores them at the end. Every trainer ends its epochs through this."""

    def __init__(self, model: torch.nn.Module, cfg, progress: Progress | None = None):
        self.model, self.cfg, self.progress = model, cfg, progress
        self.best = (-np.inf, 0, copy.deepcopy(model.state_dict()))
        self.history: list[dict] = []
        self.epoch = 0

    def step(self, epoch: int, info: dict) -> bool:
        """Record an epoch (info holds "val"); True when patience has run out."""
        self.epoch = epoch
        self.history.append({"epoch": epoch, **info})
        if info["val"] > self.best[0]:
            self.best = (info["val"], epoch, copy.deepcopy(self.model.state_dict()))
        if self.progress:
            self.progress(epoch, self.cfg.epochs, self.history[-1])
        return epoch - self.best[1] >= self.cfg.patience

    def finish(self) -> TrainResult:
        if self.cfg.epochs > 0:
            self.model.load_state_dict(self.best[2])
        self.model.eval()
        return TrainResult(self.epoch, self.best[1], float(self.best[0]), self.history)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)


def torch_predict(model: torch.nn.Module, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """Float32 outputs of the QAT model in eval mode."""
    model.eval()
    outs = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            y = model(torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size])))
            outs.append(as_tensor(y).numpy())
    return np.concatenate(outs).astype(np.float32, copy=False)


def minibatches(n: int, batch_size: int, gen: torch.Generator) -> Iterator[torch.Tensor]:
    """Index tensors of one epoch's shuffled mini-batches (one randperm from `gen` per epoch)."""
    perm = torch.randperm(n, generator=gen)
    for i in range(0, n, batch_size):
        yield perm[i : i + batch_size]


def as_tensor(y) -> torch.Tensor:
    # A Brevitas QuantTensor carries its dequantized value in `.value`.
    return y.value if hasattr(y, "value") and not isinstance(y, torch.Tensor) else y


def _val_score(recipe: Recipe, y_pred: np.ndarray, y_true: np.ndarray) -> float:
    """Higher is better: accuracy, or negative MSE."""
    if recipe.train.loss == "cross_entropy":
        return float((y_pred.argmax(1) == y_true).mean())
    return -float(np.mean((y_pred - y_true.reshape(y_pred.shape)) ** 2))


def train_supervised(
    model: torch.nn.Module,
    data: Dataset,
    recipe: Recipe,
    progress: Progress | None = None,
    penalty: Callable[[], torch.Tensor] | None = None,
) -> TrainResult:
    """`penalty()` is added to every batch's loss after the forward pass (an activity regulariser reads
    the activations its forward hooks kept)."""
    cfg = recipe.train
    seed_everything(cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.lr_decay)
    loss_fn = torch.nn.CrossEntropyLoss() if cfg.loss == "cross_entropy" else torch.nn.MSELoss()
    x_train = torch.from_numpy(data.x_train)
    y_train = torch.from_numpy(data.y_train)
    gen = torch.Generator().manual_seed(cfg.seed)
    stopper = EarlyStopping(model, cfg, progress)
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        total = 0.0
        for idx in minibatches(len(x_train), cfg.batch_size, gen):
            opt.zero_grad()
            out = as_tensor(model(x_train[idx]))
            target = y_train[idx] if cfg.loss == "cross_entropy" else y_train[idx].reshape(out.shape)
            loss = loss_fn(out, target)
            if penalty is not None:
                loss = loss + penalty()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        val = _val_score(recipe, torch_predict(model, data.x_val), data.y_val)
        if stopper.step(epoch, {"loss": total / len(x_train), "val": val}):
            break
    return stopper.finish()


def train(model: torch.nn.Module, data: Dataset, recipe: Recipe, progress: Progress | None = None) -> TrainResult:
    # The zoo's networks are small: one thread is fastest, and far faster than two threads fighting for
    # two shared cores (measured 1.3 s vs 43 s for the default recipe on a loaded 2-core machine).
    torch.set_num_threads(1)
    if recipe.train.epochs == 0:  # an untrained model still needs its activation quantizers calibrated
        calibrate(model, data.x_train, recipe.train.batch_size)
        model.eval()
        return TrainResult(epochs_run=0, best_epoch=0, best_val=float("nan"))
    trainer = TRAINERS.get(recipe.family, train_supervised)
    return trainer(model, data, recipe, progress)


# Brevitas' runtime-statistics quantizers fix their scale after this many training-mode forward passes.
CALIBRATION_STEPS = 32


def calibrate(model: torch.nn.Module, x: np.ndarray, batch_size: int, steps: int = CALIBRATION_STEPS) -> None:
    """Forward passes in training mode without weight updates: sets the activation quantizers' scales."""
    gen = torch.Generator().manual_seed(0)
    xt = torch.from_numpy(x)
    model.train()
    for _ in range(steps):  # with gradients on: Brevitas initialises its learned scales on such passes
        model(xt[torch.randint(0, len(xt), (batch_size,), generator=gen)])
    model.eval()
