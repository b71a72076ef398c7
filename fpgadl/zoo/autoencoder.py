"""Stacked / denoising autoencoders: dense encoder to a code, mirrored decoder, reconstruction output.

The deployed network is the whole autoencoder (input -> reconstruction), a chain of QuantLinear layers,
so the QONNX path applies and ReLU variants are bit-exact. The `autoencoder` trainer corrupts inputs
with Gaussian noise (`train.params.noise`) while the loss compares with the clean input (Vincent et al.
2008); noise 0 gives a plain (stacked) autoencoder trained end to end.
"""

from __future__ import annotations

import itertools
import math

import torch

from fpgadl.ml.datasets import Dataset
from fpgadl.ml.recipes import QuantConfig, Recipe
from fpgadl.ml.train import Progress, TrainResult, register_trainer, train_supervised
from fpgadl.zoo import register, xavier_init
from fpgadl.zoo.layers import quant_activation, quant_input, quant_linear, take


@register("autoencoder")
def build_autoencoder(params: dict, quant: QuantConfig, input_shape: tuple, n_out: int) -> torch.nn.Module:
    """params: encoder (widths down to the code, e.g. [32, 16]; the decoder mirrors them), activation."""
    encoder, activation = take(params, encoder=[32, 16], activation="relu")
    widths = [math.prod(input_shape), *encoder, *reversed(encoder[:-1])]
    layers: list[torch.nn.Module] = [quant_input(quant)]
    if len(input_shape) > 1:
        layers.insert(0, torch.nn.Flatten())
    for n_in, n_h in itertools.pairwise(widths):
        layers += [quant_linear(n_in, n_h, quant, True), quant_activation(activation, quant)]
    layers.append(quant_linear(widths[-1], n_out, quant, False))
    return xavier_init(torch.nn.Sequential(*layers))


@register_trainer("autoencoder")
def train_denoising(
    model: torch.nn.Module, data: Dataset, recipe: Recipe, progress: Progress | None = None
) -> TrainResult:
    """train.params: noise (std of the Gaussian corruption of training inputs; default 0.1)."""
    noise = float(recipe.train.params.get("noise", 0.1))
    gen = torch.Generator().manual_seed(recipe.train.seed + 1)

    def corrupt(module, args):
        if module.training and noise > 0:
            (x,) = args
            return (x + noise * torch.randn(x.shape, generator=gen),)
        return None

    hook = model.register_forward_pre_hook(corrupt)
    try:
        return train_supervised(model, data, recipe, progress)
    finally:
        hook.remove()
