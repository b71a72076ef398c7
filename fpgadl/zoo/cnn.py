"""Convolutional networks: LeNet-5, AlexNet- and VGG-style stacks, a ResNet-style residual net, and Conv1D.

All sized for 8x8 digits (or 40-sample MNIST-1D signals): the classic shapes, scaled down so that every
layer still fits an io_parallel hls4ml design. Pooling runs on quant tensors (max pooling commutes with
the quantizer, so it is exact in fixed point).
"""

from __future__ import annotations

import math

import brevitas.nn as qnn
import torch

from fpgadl.ml.recipes import QuantConfig
from fpgadl.zoo import register, xavier_init
from fpgadl.zoo.layers import dense_head, quant_activation, quant_conv, quant_input, take
from fpgadl.zoo.quant import act_quant


def _flat_size(features: torch.nn.Module, input_shape: tuple) -> int:
    with torch.no_grad():
        y = features.eval()(torch.zeros(1, *input_shape))
    y = y.value if hasattr(y, "value") else y
    return int(math.prod(y.shape[1:]))


def _stack(features: list[torch.nn.Module], head: tuple, quant: QuantConfig, input_shape: tuple, n_out: int):
    feats = torch.nn.Sequential(quant_input(quant), *features)
    hidden, dropout = head
    layers = dense_head(_flat_size(feats, input_shape), hidden, n_out, quant, dropout)
    return xavier_init(torch.nn.Sequential(*feats, *layers))


@register("lenet")
def build_lenet(params: dict, quant: QuantConfig, input_shape: tuple, n_out: int) -> torch.nn.Module:
    """LeNet-5: two conv + max-pool stages, then three dense layers (the last is the classifier).

    params: channels [c1, c2], kernel (3 keeps 8x8 inputs at 8x8 with padding 1), hidden [h1, h2],
    activation (relu | tanh; LeNet's original squashing is tanh), dropout.
    """
    channels, kernel, hidden, activation, dropout = take(
        params, channels=[6, 16], kernel=3, hidden=[120, 84], activation="relu", dropout=0.0
    )
    c_in, feats = input_shape[0], []
    for c in channels:
        feats += [
            quant_conv(2, c_in, c, kernel, quant, padding=kernel // 2),
            quant_activation(activation, quant),
            torch.nn.MaxPool2d(2),
        ]
        c_in = c
    return _stack(feats, (hidden, dropout), quant, input_shape, n_out)


@register("alexnet")
def build_alexnet(params: dict, quant: QuantConfig, input_shape: tuple, n_out: int) -> torch.nn.Module:
    """AlexNet-style: ReLU convs, overlapping 3x3 stride-2 max pooling, dropout in the dense layers.

    params: channels (one conv each; a pool follows the first and the last), hidden, dropout.
    """
    channels, hidden, dropout = take(params, channels=[16, 32, 32], hidden=[64, 64], dropout=0.3)
    c_in, feats = input_shape[0], []
    for i, c in enumerate(channels):
        feats += [quant_conv(2, c_in, c, 3, quant, padding=1), quant_activation("relu", quant)]
        if i == 0 or i == len(channels) - 1:
            feats.append(torch.nn.MaxPool2d(3, stride=2))
        c_in = c
    return _stack(feats, (hidden, dropout), quant, input_shape, n_out)


@register("vgg")
def build_vgg(params: dict, quant: QuantConfig, input_shape: tuple, n_out: int) -> torch.nn.Module:
    """VGG-style: blocks of 3x3 convs (padding 1) each closed by a 2x2 max pool.

    params: blocks (list of lists of channel counts, e.g. [[8, 8], [16, 16]]), hidden, dropout.
    """
    blocks, hidden, dropout = take(params, blocks=[[8, 8], [16, 16]], hidden=[64], dropout=0.2)
    c_in, feats = input_shape[0], []
    for block in blocks:
        for c in block:
            feats += [quant_conv(2, c_in, c, 3, quant, padding=1), quant_activation("relu", quant)]
            c_in = c
        feats.append(torch.nn.MaxPool2d(2))
    return _stack(feats, (hidden, dropout), quant, input_shape, n_out)


class ResidualBlock(torch.nn.Module):
    """conv-BN-ReLU-conv-BN, plus the identity, then ReLU.

    BatchNorm sits between each conv's accumulator and the next quantizer, so it is exported as a
    BatchNormalization node. One quantizer (`join`) is applied to both branches before the Add, so the
    two operands share one scale and the sum is exact in fixed point.
    """

    def __init__(self, channels: int, quant: QuantConfig):
        super().__init__()
        self.conv1 = quant_conv(
            2, channels, channels, 3, quant, padding=1, bias=False, out_quant_tensor=False
        )
        self.bn1 = torch.nn.BatchNorm2d(channels)
        self.act1 = quant_activation("relu", quant)
        self.conv2 = quant_conv(
            2, channels, channels, 3, quant, padding=1, bias=False, out_quant_tensor=False
        )
        self.bn2 = torch.nn.BatchNorm2d(channels)
        self.join = qnn.QuantIdentity(act_quant=act_quant(quant, signed=True), return_quant_tensor=True)
        self.act2 = quant_activation("relu", quant)

    def forward(self, x):
        y = self.act1(self.bn1(self.conv1(x)))
        y = self.join(self.bn2(self.conv2(y)))
        return self.act2(y + self.join(x))


@register("resnet")
def build_resnet(params: dict, quant: QuantConfig, input_shape: tuple, n_out: int) -> torch.nn.Module:
    """ResNet-style: a conv stem, residual blocks (with a 2x2 pool after each), a dense classifier.

    params: channels (stem width, kept through the blocks), blocks (number of residual blocks), hidden.
    """
    channels, blocks, hidden, dropout = take(params, channels=16, blocks=1, hidden=[], dropout=0.0)
    feats: list[torch.nn.Module] = [
        quant_conv(2, input_shape[0], channels, 3, quant, padding=1),
        quant_activation("relu", quant),
    ]
    for _ in range(blocks):
        feats += [ResidualBlock(channels, quant), torch.nn.MaxPool2d(2)]
    return _stack(feats, (hidden, dropout), quant, input_shape, n_out)


@register("conv1d")
def build_conv1d(params: dict, quant: QuantConfig, input_shape: tuple, n_out: int) -> torch.nn.Module:
    """1-D CNN for signals (N, C, L): conv + ReLU stages that halve the length, then a dense classifier.

    params: channels (one stage each), kernel, downsample (`stride`: stride-2 convs, the all-convolutional
    form; `maxpool`: stride-1 conv + MaxPool1d(2), LeNet-style, deployed through the clean-up rewrite
    `fpgadl.hls.rewrites.MaxPool1dAs2d`), hidden, dropout.
    """
    channels, kernel, downsample, hidden, dropout = take(
        params, channels=[16, 16, 16], kernel=5, downsample="stride", hidden=[64], dropout=0.0
    )
    if downsample not in ("stride", "maxpool"):
        raise ValueError(f"downsample {downsample!r} (valid: stride, maxpool)")
    c_in, feats = input_shape[0], []
    for c in channels:
        stride = 2 if downsample == "stride" else 1
        feats += [
            quant_conv(1, c_in, c, kernel, quant, padding=kernel // 2, stride=stride),
            quant_activation("relu", quant),
        ]
        if downsample == "maxpool":
            feats.append(torch.nn.MaxPool1d(2))
        c_in = c
    return _stack(feats, (hidden, dropout), quant, input_shape, n_out)
