"""fpgadl.hls.thresholds: BatchNorm before a sign / ternary quantizer becomes thresholds that torch's own float32
arithmetic decides. Checked against torch itself on every reachable accumulator value (no conversion: seconds).
The converted bnn_pynq TFCs are checked end to end by tests/external/test_corpus.py."""

from __future__ import annotations

import numpy as np
import torch

from fpgadl.hls.thresholds import affine_for, channel_thresholds, torch_bn_terms


def _bn(channels: int, seed: int, negative: bool) -> torch.nn.BatchNorm1d:
    g = torch.Generator().manual_seed(seed)
    bn = torch.nn.BatchNorm1d(channels, eps=1e-4).eval()
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(channels, generator=g) * 20)
        bn.running_var.copy_(torch.rand(channels, generator=g) * 300 + 1)
        bn.weight.copy_(torch.rand(channels, generator=g) + 0.5)
        if negative:
            bn.weight[::3] *= -1
        bn.bias.copy_(torch.randn(channels, generator=g))
    return bn


def _table(bn, k: np.ndarray, quant: str) -> np.ndarray:
    """torch's quantizer level index for accumulator values k (every channel), as Brevitas computes it."""
    with torch.no_grad():
        y = bn(torch.from_numpy(np.repeat(k[:, None], bn.num_features, 1).astype(np.float32))).numpy()
    if quant == "sign":
        return (y >= 0).astype(int)
    return (np.clip(np.round(y), -1, 1) + 1).astype(int)  # 2-bit narrow, scale 1: round half even, -1/0/1


def _params(bn):
    return [t.detach().numpy() for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var)]


def test_thresholds_reproduce_torch_batchnorm_then_quantizer_on_every_accumulator_value():
    torch.set_num_threads(1)
    k = np.arange(-200, 201)
    for quant, levels, negative in (("sign", np.array([-1, 1]), False), ("ternary", np.arange(-1, 2), True)):
        bn = _bn(48, seed=len(quant), negative=negative)
        alpha, shift = torch_bn_terms(*_params(bn), bn.eps)
        expected = _table(bn, k, quant)
        bipolar = quant == "sign"
        for c in range(bn.num_features):
            sign = -1 if alpha[c] < 0 else 1
            span = (-200, 200)
            t = channel_thresholds(alpha[c], shift[c], 1.0, *span, (levels, 1.0, bipolar, sign))
            got = sum((sign * k >= ti).astype(int) for ti in t)
            assert np.array_equal(got, expected[:, c]), (quant, c)
            gamma, beta = affine_for(t, levels, 1.0, 1.0)
            y = np.float32(sign * gamma) * k.astype(np.float32) + np.float32(beta)  # the rewritten BN
            rewritten = (y >= 0).astype(int) if bipolar else (np.clip(np.round(y), -1, 1) + 1).astype(int)
            assert np.array_equal(rewritten, expected[:, c]), (quant, c)


def test_torch_bn_terms_are_torch_values_not_a_separate_multiply_and_add():
    torch.set_num_threads(1)
    bn = _bn(64, seed=7, negative=True)
    alpha, shift = torch_bn_terms(*_params(bn), bn.eps)
    a = np.arange(-300, 301, dtype=np.float32)[:, None]
    with torch.no_grad():
        y = bn(torch.from_numpy(np.repeat(a, 64, 1))).numpy()
    exact = (a.astype(np.float64) * alpha + shift).astype(np.float32)  # fma: one rounding (products exact)
    assert np.array_equal(exact, y)
    assert not np.array_equal(a * alpha + shift, y)  # two roundings differ somewhere: the test can tell


def test_rewritten_constants_are_checked_against_torch_itself():
    from fpgadl.hls.thresholds import exact_bn_constants, torch_agrees

    bn = _bn(16, seed=3, negative=True)
    params, levels = _params(bn), np.arange(-1, 2)
    alpha, shift = torch_bn_terms(*params, bn.eps)
    lo, hi = np.full(16, -150.0), np.full(16, 150.0)
    constants = exact_bn_constants(alpha, shift, lo, hi, 1.0, levels, 1.0, False)
    assert constants is not None and torch_agrees(params, bn.eps, constants, lo, hi, 1.0, levels, 1.0, False)
    gamma, beta = (c.copy() for c in constants)
    beta[5] += gamma[5]  # every threshold of channel 5 one accumulator step off
    assert not torch_agrees(params, bn.eps, (gamma, beta), lo, hi, 1.0, levels, 1.0, False)


def test_a_quantizer_of_more_than_three_levels_is_left_to_torchs_constants():
    """The fully trained resnet-digits at 4 bits (benchmarks/zoo.py) has a BatchNorm before a 16-level quantizer
    with an accumulator range short enough for thresholds: the two/three-level arithmetic crashed the clean-up
    ('too many values to unpack'). Such BatchNorms are not rewritten."""
    from fpgadl.hls.thresholds import exact_bn_constants

    bn = _bn(4, seed=5, negative=False)
    alpha, shift = torch_bn_terms(*_params(bn), bn.eps)
    lo, hi = np.full(4, -20.0), np.full(4, 20.0)
    assert exact_bn_constants(alpha, shift, lo, hi, 1.0, np.arange(0, 16), 0.25, False) is None
