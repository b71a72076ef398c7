"""GAN generator for 8x8 digits, trained adversarially and deployed alone.

Generator: latent z -> QuantLinear -> (C, 2, 2) -> [nearest 2x upsample -> 3x3 conv] x 2 -> (1, 8, 8).
DCGAN uses transposed convolutions; hls4ml's ONNX front end has no ConvTranspose, so each is replaced by
nearest-neighbour upsampling followed by a 3x3 convolution (Odena et al. 2016, "Deconvolution and
checkerboard artifacts"), which it converts (Resize + Conv). The discriminator is a float MLP used only
in training. `fidelity` scores generated digits with a fixed classifier trained on real digits.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from fpgadl.ml.datasets import Dataset
from fpgadl.ml.metrics import register_metric, register_picture
from fpgadl.ml.recipes import QuantConfig, Recipe
from fpgadl.ml.train import (
    EarlyStopping,
    Progress,
    TrainResult,
    as_tensor,
    minibatches,
    register_trainer,
    seed_everything,
    torch_predict,
)
from fpgadl.zoo import register, xavier_init
from fpgadl.zoo.layers import quant_activation, quant_conv, quant_input, quant_linear, take


class Generator(torch.nn.Module):
    def __init__(self, latent_dim: int, channels: list[int], image: tuple[int, int, int], quant: QuantConfig):
        super().__init__()
        c0, side = channels[0], image[1] // 2 ** len(channels)
        self.shape0 = (c0, side, side)
        self.inp = quant_input(quant)
        self.fc = quant_linear(latent_dim, math.prod(self.shape0), quant, True)
        self.act0 = quant_activation("relu", quant)
        blocks: list[torch.nn.Module] = []
        c_in = c0
        for i, c in enumerate([*channels[1:], image[0]]):
            last = i == len(channels) - 1
            blocks.append(torch.nn.Upsample(scale_factor=2, mode="nearest"))
            blocks.append(quant_conv(2, c_in, c, 3, quant, padding=1, out_quant_tensor=not last))
            if not last:
                blocks.append(quant_activation("relu", quant))
            c_in = c
        self.up = torch.nn.Sequential(*blocks)

    def forward(self, z):
        h = self.act0(self.fc(self.inp(z)))
        return self.up(h.reshape(h.shape[0], *self.shape0))


@register("generator")
def build_generator(params: dict, quant: QuantConfig, input_shape: tuple, n_out: int) -> torch.nn.Module:
    """params: channels ([C0, C1]: C0 at the start, one upsample+conv stage per further entry plus the
    output stage), image ([1, 8, 8]; n_out must equal its size)."""
    channels, image = take(params, channels=[32, 16], image=[1, 8, 8])
    if math.prod(image) != n_out:
        raise ValueError(f"image {image} has {math.prod(image)} values but the dataset's targets have {n_out}")
    if image[1] % 2 ** len(channels):
        raise ValueError(f"image side {image[1]} is not divisible by 2^{len(channels)}")
    return xavier_init(Generator(input_shape[0], list(channels), tuple(image), quant))


def discriminator(n_in: int, hidden: int = 128) -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(n_in, hidden),
        torch.nn.LeakyReLU(0.2),
        torch.nn.Linear(hidden, hidden // 2),
        torch.nn.LeakyReLU(0.2),
        torch.nn.Linear(hidden // 2, 1),
    )


class Fidelity:
    """Classifier-based score of generated digits, in [0, 1]: mean confidence of a logistic regression
    trained on all real digits, times the normalised entropy of its predicted class histogram (1 when the
    ten digits are equally frequent, 0 on mode collapse). Real held-out digits score about 0.9."""

    def __init__(self):
        from sklearn.datasets import load_digits
        from sklearn.linear_model import LogisticRegression

        d = load_digits()
        self.clf = LogisticRegression(max_iter=2000, C=1.0).fit(d.images.reshape(len(d.images), -1) / 16.0, d.target)

    def __call__(self, images: np.ndarray) -> float:
        proba = self.clf.predict_proba(np.clip(images.reshape(len(images), -1), 0, 1))
        hist = np.bincount(proba.argmax(1), minlength=10) / len(proba)
        nz = hist[hist > 0]
        coverage = float(-(nz * np.log(nz)).sum() / np.log(10))
        return float(proba.max(1).mean()) * coverage


_FIDELITY: Fidelity | None = None


def fidelity(images: np.ndarray) -> float:
    """Classifier-based fidelity of generated images: confident and covering every digit class."""
    global _FIDELITY
    if _FIDELITY is None:
        _FIDELITY = Fidelity()
    return _FIDELITY(images)


@register_metric("fidelity")
def fidelity_metric(recipe: Recipe, x: np.ndarray, y: np.ndarray, predict) -> float:
    """Fidelity of the images this stage's engine generates from the test latents."""
    return fidelity(predict(x))


@register_picture("fidelity")
def sample_grid(images: np.ndarray, path: str, cols: int = 8) -> None:
    """Save generated images (N, 1, H, W) as one PNG grid, clipped to [0, 1]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(images)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols, rows))
    for ax, i in zip(np.ravel(axes), range(rows * cols)):
        ax.axis("off")
        if i < n:
            ax.imshow(np.clip(images[i, 0], 0, 1), cmap="gray_r", vmin=0, vmax=1)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)


@register_trainer("gan")
def train_gan(model: torch.nn.Module, data: Dataset, recipe: Recipe, progress: Progress | None = None) -> TrainResult:
    """Non-saturating GAN loss, Adam(beta1 0.5). y_train are the real images; z is drawn fresh.
    Validation score: `fidelity` of the generator's images for x_val (fixed latents)."""
    cfg = recipe.train
    d_lr = float(cfg.params.get("d_lr", cfg.lr))
    seed_everything(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    real = torch.from_numpy(data.y_train)
    latent_dim = data.x_train.shape[1]
    disc = discriminator(math.prod(real.shape[1:]))
    opt_g = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=d_lr, betas=(0.5, 0.999))
    bce = torch.nn.BCEWithLogitsLoss()
    stopper = EarlyStopping(model, cfg, progress)
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        d_total = g_total = 0.0
        for idx in minibatches(len(real), cfg.batch_size, gen):
            x_real = real[idx]
            n = len(x_real)
            z = torch.randn(n, latent_dim, generator=gen)
            fake = as_tensor(model(z))
            d_loss = bce(disc(x_real), torch.ones(n, 1)) + bce(disc(fake.detach()), torch.zeros(n, 1))
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
            g_loss = bce(disc(fake), torch.ones(n, 1))
            opt_g.zero_grad()
            g_loss.backward()
            opt_g.step()
            d_total += float(d_loss) * n
            g_total += float(g_loss) * n
        val = fidelity(torch_predict(model, data.x_val))
        if stopper.step(epoch, {"d_loss": d_total / len(real), "g_loss": g_total / len(real), "val": val}):
            break
    return stopper.finish()
