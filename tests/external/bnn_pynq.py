"""bnn_pynq's FINN-style BNNs (Brevitas' `brevitas_examples.bnn_pynq`): TFC/SFC/LFC MLPs and the CNV conv net.

The FC models are built by brevitas_examples itself (random initialisation, no pretrained download).
LFC-2W2A has no shipped config, so it is the same `FC` class with LFC's widths. CNV is reproduced layer
for layer from brevitas_examples/bnn_pynq/models/CNV.py with fewer channels (CNV_OUT_CH_POOL and the FC
widths divided by 8), so that conversion and C simulation stay fast; everything else (2x-1 input,
Q1.7 input quantizer, BN eps, TensorNorm) is theirs.
"""

from __future__ import annotations

import torch
from brevitas_examples.bnn_pynq.models import FC as fc_module
from brevitas_examples.bnn_pynq.models import model_with_cfg

from tests.external.common import calibrate, seeded

FC_WIDTHS = {"tfc": [64, 64, 64], "sfc": [256, 256, 256], "lfc": [1024, 1024, 1024]}


def mnist_like(n: int) -> torch.Tensor:
    """Pixel-range inputs in [0, 1], as bnn_pynq's MNIST loaders give them (ToTensor, no normalisation)."""
    return torch.rand(n, 1, 28, 28)


def fc(kind: str, w: int, a: int, seed: int = 0) -> torch.nn.Module:
    seeded(seed)
    name = f"{kind}_{w}w{a}a"
    if name == "lfc_2w2a":  # not shipped by brevitas_examples: same class, LFC widths
        net = fc_module.FC(
            num_classes=10,
            weight_bit_width=2,
            act_bit_width=2,
            in_bit_width=2,
            in_channels=1,
            out_features=FC_WIDTHS["lfc"],
        )
    else:
        net, _ = model_with_cfg(name, pretrained=False)
    return calibrate(net, mnist_like, seed)


def cifar_like(n: int) -> torch.Tensor:
    return torch.rand(n, 3, 32, 32)


def cnv_small(w: int, a: int, seed: int = 0, div: int = 8) -> torch.nn.Module:
    """bnn_pynq's CNV with every width divided by `div` (CNV.py's module constants, patched for the build)."""
    from brevitas_examples.bnn_pynq.models import CNV as cnv_module

    saved = (cnv_module.CNV_OUT_CH_POOL, cnv_module.INTERMEDIATE_FC_FEATURES, cnv_module.LAST_FC_IN_FEATURES)
    try:
        cnv_module.CNV_OUT_CH_POOL = [(c // div, p) for c, p in saved[0]]
        cnv_module.INTERMEDIATE_FC_FEATURES = [(i // div, o // div) for i, o in saved[1]]
        cnv_module.LAST_FC_IN_FEATURES = saved[2] // div
        seeded(seed)
        net = cnv_module.CNV(num_classes=10, weight_bit_width=w, act_bit_width=a, in_bit_width=8, in_ch=3)
    finally:
        cnv_module.CNV_OUT_CH_POOL, cnv_module.INTERMEDIATE_FC_FEATURES, cnv_module.LAST_FC_IN_FEATURES = saved
    return calibrate(net, cifar_like, seed)
