"""Task metrics, each computed from a predictor so every stage (torch, onnxruntime, csim, fast) is
measured the same way: `metric(recipe, x, y, predict) -> float`.

Families whose metric needs more than the test split (a control task's episode reward, a generator's
fidelity) register their own function here under the recipe's `metric` name; families whose outputs are
pictures (a generator's samples) register a drawing under it in `PICTURES`, which the report shows.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fpgadl.ml.recipes import Recipe

Predict = Callable[[np.ndarray], np.ndarray]
METRICS: dict[str, Callable[[Recipe, np.ndarray, np.ndarray, Predict], float]] = {}
HIGHER_IS_BETTER = {"accuracy": True, "mse": False, "reward": True, "fidelity": True}


def register_metric(name: str, higher_is_better: bool = True):
    def wrap(fn):
        METRICS[name] = fn
        HIGHER_IS_BETTER[name] = higher_is_better
        return fn

    return wrap


@register_metric("accuracy")
def accuracy(recipe: Recipe, x: np.ndarray, y: np.ndarray, predict: Predict) -> float:
    return float((predict(x).argmax(axis=1) == y).mean())


@register_metric("mse", higher_is_better=False)
def mse(recipe: Recipe, x: np.ndarray, y: np.ndarray, predict: Predict) -> float:
    out = predict(x)
    return float(np.mean((out.astype(np.float64) - y.reshape(out.shape)) ** 2))


@register_metric("bit_accuracy")
def bit_accuracy(recipe: Recipe, x: np.ndarray, y: np.ndarray, predict: Predict) -> float:
    """Fraction of 0/1 outputs equal to their targets (threshold units: every output is one bit)."""
    out = predict(x)
    return float(np.mean((out >= 0.5) == (y.reshape(out.shape) >= 0.5)))


@register_metric("reward")
def reward(recipe: Recipe, x: np.ndarray, y: np.ndarray, predict: Predict) -> float:
    """Mean episode reward of the greedy policy argmax Q(s, a), the Q-values from this stage's engine."""
    from fpgadl.ml.cartpole import greedy_reward

    return greedy_reward(predict, episodes=int(recipe.train.params.get("eval_episodes", 20)))


# picture(outputs of one engine on the test split, png path): what the report shows for such a metric.
PICTURES: dict[str, Callable[[np.ndarray, str], None]] = {}


def register_picture(metric: str):
    def wrap(fn):
        PICTURES[metric] = fn
        return fn

    return wrap


def evaluate(recipe: Recipe, x: np.ndarray, y: np.ndarray, predict: Predict) -> float:
    return METRICS[recipe.metric](recipe, x, y, predict)


def meets_floor(recipe: Recipe, value: float) -> bool:
    if recipe.floor is None:
        return True
    return value >= recipe.floor if HIGHER_IS_BETTER.get(recipe.metric, True) else value <= recipe.floor
