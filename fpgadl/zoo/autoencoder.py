"""Autoencoders: dense (denoising, sparse, L1-regularised) and convolutional, reconstruction output.

The deployed network is the whole autoencoder (input -> reconstruction), a chain of QuantLinear (or
QuantConv2d) layers, so the QONNX path applies and ReLU variants are bit-exact. The `autoencoder` trainer
corrupts inputs with Gaussian noise (`train.params.noise`) while the loss compares with the clean input
(Vincent et al. 2008); noise 0 gives a plain autoencoder trained end to end. Activity penalties on the
hidden layers make it sparse: `sparsity_weight` x KL(rho || mean activation) with target
`sparsity_target` (Ng's sparse autoencoder; needs activations in (0, 1): sigmoid), or `l1_activity` x
mean L1 norm of the hidden activations (with the recipe's L2 `weight_decay`: the L1/L2-regularised one).
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import brevitas.nn as qnn
import numpy as np
import torch

from fpgadl.ml.datasets import Dataset
from fpgadl.ml.extras import ReportExtra, emulated_predictions, markdown_table, register_report_extra
from fpgadl.ml.recipes import QuantConfig, Recipe
from fpgadl.ml.train import Progress, TrainResult, register_trainer, train_supervised
from fpgadl.zoo import build_model, register, xavier_init
from fpgadl.zoo.layers import quant_activation, quant_conv, quant_input, quant_linear, take

HIDDEN_ACTIVATIONS = (qnn.QuantReLU, qnn.QuantSigmoid, qnn.QuantTanh)


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


@register("conv-autoencoder")
def build_conv_autoencoder(params: dict, quant: QuantConfig, input_shape: tuple, n_out: int) -> torch.nn.Module:
    """Convolutional autoencoder (DeepLearnToolbox's CAE, scaled to 8x8 images): per encoder stage a 3x3
    conv + ReLU + 2x2 max pool; the decoder mirrors it with nearest 2x upsampling + 3x3 conv (hls4ml has
    no ConvTranspose), the last conv giving the image's channels as a float output (N, C, H, W).

    params: channels (encoder widths, e.g. [8, 4]: 8x8 -> 4x4x8 -> 2x2x4 code).
    """
    (channels,) = take(params, channels=[8, 4])
    c_img, side = input_shape[0], input_shape[-1]
    if math.prod(input_shape) != n_out or side % 2 ** len(channels):
        raise ValueError(f"input {input_shape} must equal the target size {n_out} and halve {len(channels)} times")
    layers: list[torch.nn.Module] = [quant_input(quant)]
    c_in = c_img
    for c in channels:
        layers += [quant_conv(2, c_in, c, 3, quant, padding=1), quant_activation("relu", quant), torch.nn.MaxPool2d(2)]
        c_in = c
    for i, c in enumerate([*reversed(channels[:-1]), c_img]):
        last = i == len(channels) - 1
        layers += [torch.nn.Upsample(scale_factor=2, mode="nearest")]
        layers += [quant_conv(2, c_in, c, 3, quant, padding=1, out_quant_tensor=not last)]
        if not last:
            layers.append(quant_activation("relu", quant))
        c_in = c
    return xavier_init(torch.nn.Sequential(*layers))


def kl_sparsity(h: torch.Tensor, target: float) -> torch.Tensor:
    """Sum over hidden units of KL(target || mean activation over the batch)."""
    rho = h.reshape(len(h), -1).mean(0).clamp(1e-6, 1 - 1e-6)
    return (target * torch.log(target / rho) + (1 - target) * torch.log((1 - target) / (1 - rho))).sum()


def activity_penalty(model: torch.nn.Module, params: dict):
    """Forward hooks keeping the hidden activations, and the penalty over them (None when unused)."""
    beta, rho = float(params.get("sparsity_weight", 0.0)), float(params.get("sparsity_target", 0.05))
    l1 = float(params.get("l1_activity", 0.0))
    if beta == 0 and l1 == 0:
        return [], None
    kept: list[torch.Tensor] = []

    def keep(module, args, out):
        if module.training:
            kept.append(out.value if hasattr(out, "value") else out)

    hooks = [m.register_forward_hook(keep) for m in model.modules() if isinstance(m, HIDDEN_ACTIVATIONS)]

    def penalty() -> torch.Tensor:
        total = sum(beta * kl_sparsity(h, rho) + l1 * h.abs().reshape(len(h), -1).sum(1).mean() for h in kept)
        kept.clear()
        return total

    return hooks, penalty


@register_trainer("autoencoder")
def train_autoencoder(
    model: torch.nn.Module, data: Dataset, recipe: Recipe, progress: Progress | None = None
) -> TrainResult:
    """train.params: noise (std of the Gaussian corruption of training inputs; default 0.1),
    sparsity_target / sparsity_weight (KL sparsity), l1_activity (L1 on the hidden activations)."""
    params = recipe.train.params
    noise = float(params.get("noise", 0.1))
    gen = torch.Generator().manual_seed(recipe.train.seed + 1)

    def corrupt(module, args):
        if module.training and noise > 0:
            (x,) = args
            return (x + noise * torch.randn(x.shape, generator=gen),)
        return None

    hooks, penalty = activity_penalty(model, params)
    hooks.append(model.register_forward_pre_hook(corrupt))
    try:
        return train_supervised(model, data, recipe, progress, penalty=penalty)
    finally:
        for h in hooks:
            h.remove()


def hidden_statistics(model: torch.nn.Module, x: np.ndarray) -> list[dict]:
    """Per hidden activation layer on x (QAT torch model): mean activation, mean |h|, fraction of zeros."""
    outs: list[torch.Tensor] = []
    hooks = [
        m.register_forward_hook(lambda mod, a, o: outs.append(o.value if hasattr(o, "value") else o))
        for m in model.modules()
        if isinstance(m, HIDDEN_ACTIVATIONS)
    ]
    try:
        with torch.no_grad():
            model.eval()(torch.from_numpy(x))
    finally:
        for h in hooks:
            h.remove()
    return [
        {
            "units": int(h[0].numel()),
            "mean_activation": float(h.mean()),
            "mean_abs": float(h.abs().mean()),
            "fraction_zero": float((h == 0).float().mean()),
        }
        for h in outs
    ]


def load_run_model(run_dir: Path, recipe: Recipe) -> torch.nn.Module:
    info = json.loads((run_dir / "train.json").read_text())
    r = recipe
    model = build_model(r.model.arch, r.model.params, r.quant, tuple(info["input_shape"]), info["n_out"])
    model.load_state_dict(torch.load(run_dir / "model.pt", weights_only=True))
    return model.eval()


def reconstruction_grid(inputs: np.ndarray, outputs: np.ndarray, path: Path, n: int = 12) -> None:
    """Two rows of square images: inputs above, reconstructions below (clipped to [0, 1])."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fpgadl.core.artifacts import atomic_path

    side = math.isqrt(inputs[0].size)
    n = min(n, len(inputs))
    fig, axes = plt.subplots(2, n, figsize=(n * 0.8, 1.8))
    for j in range(n):
        for row, images in enumerate((inputs, outputs)):
            axes[row, j].axis("off")
            axes[row, j].imshow(np.clip(images[j].reshape(side, side), 0, 1), cmap="gray_r", vmin=0, vmax=1)
    with atomic_path(path, ".png") as tmp:
        fig.savefig(tmp, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)


@register_report_extra("autoencoder")
def autoencoder_extra(run_dir: Path, recipe: Recipe) -> ReportExtra:
    """Hidden-layer statistics (against the sparsity target when there is one) and a picture of test
    inputs beside the emulated FPGA's reconstructions."""
    x = np.load(run_dir / "data/x_test.npy")
    stats = hidden_statistics(load_run_model(run_dir, recipe), x)
    target = recipe.train.params.get("sparsity_target") if recipe.train.params.get("sparsity_weight") else None
    header = ["hidden layer", "units", "mean activation", "target", "mean abs", "fraction zero"]
    rows = [
        [
            i + 1,
            s["units"],
            f"{s['mean_activation']:.4f}",
            "–" if target is None else target,
            f"{s['mean_abs']:.4f}",
            f"{s['fraction_zero']:.3f}",
        ]
        for i, s in enumerate(stats)
    ]
    lines = ["Hidden activations on the test split (QAT torch model):", "", *markdown_table(header, rows)]
    engine, out = emulated_predictions(run_dir)
    data = {"hidden": stats, "sparsity_target": target}
    if math.isqrt(x[0].size) ** 2 == x[0].size:
        reconstruction_grid(x, out, run_dir / "reconstructions.png")
        lines += [
            "",
            f"Test inputs (top) and the `{engine}` engine's reconstructions (bottom):",
            "",
            "![reconstructions](reconstructions.png)",
        ]
        data["picture"] = "reconstructions.png"
    return ReportExtra("Hidden activations and reconstructions", lines, data)
