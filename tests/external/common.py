"""Shared by the corpus builders: deterministic seeding, calibration of runtime-statistics quantizers and
randomised BatchNorm statistics (a freshly initialised BN is the identity, which would hide its constants)."""

from __future__ import annotations

from collections.abc import Callable

import torch


def calibrate(model: torch.nn.Module, sample: Callable[[int], torch.Tensor], seed: int, batches: int = 6):
    """Run `model` in train mode on a few random batches (so Brevitas' runtime-statistics scales and BN
    running statistics settle), then randomise every norm layer's statistics and affine parameters.

    Returns the model in eval mode."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = None  # cumulative average over the calibration batches
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            model(sample(32))
    randomise_norms(model, g)
    return model.eval()


def randomise_norms(model: torch.nn.Module, g: torch.Generator) -> None:
    """Perturb BN / TensorNorm statistics and affine parameters around their calibrated values."""
    with torch.no_grad():
        for m in model.modules():
            if not hasattr(m, "running_var") or not hasattr(m, "running_mean"):
                continue
            shape = m.running_var.shape
            std = m.running_var.clamp_min(1e-3).sqrt()
            m.running_mean += torch.randn(shape, generator=g) * 0.3 * std
            m.running_var *= torch.empty(shape).uniform_(0.6, 1.6, generator=g)
            if getattr(m, "weight", None) is not None:
                m.weight.copy_(torch.empty(m.weight.shape).uniform_(0.5, 1.5, generator=g))
            if getattr(m, "bias", None) is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.3)


def seeded(seed: int) -> None:
    torch.manual_seed(seed)
