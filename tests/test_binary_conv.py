"""Binary convolutions (FINN's CNV layers) in the fast engine: an 8-bit input through a 1-bit-weight conv
(nnet::product::weight_binary), BatchNorm -> sign, a both-binary conv (XNOR), BatchNorm -> ternary, a 1-bit
dense. One tiny net, converted once: fast == csim == torch on real outputs (exact equality).
bnn_pynq's CNV-1W1A itself runs in tests/external/test_corpus.py (fast vs torch)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from fpgadl import api

qnn = pytest.importorskip("brevitas.nn")


def _net() -> torch.nn.Module:
    from brevitas.core.restrict_val import RestrictValueType
    from brevitas_examples.bnn_pynq.models.common import CommonActQuant, CommonWeightQuant

    from tests.external.common import calibrate

    def act(bits: int, **kw):
        return qnn.QuantIdentity(act_quant=CommonActQuant, bit_width=bits, min_val=-1.0, max_val=1.0, **kw)

    def conv(cin: int, cout: int):
        return qnn.QuantConv2d(cin, cout, 3, weight_quant=CommonWeightQuant, weight_bit_width=1, bias=False)

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        qnn.QuantIdentity(  # CNV's input quantizer: Q1.7
            act_quant=CommonActQuant,
            bit_width=8,
            min_val=-1.0,
            max_val=1.0 - 2.0**-7,
            narrow_range=False,
            restrict_scaling_type=RestrictValueType.POWER_OF_TWO,
        ),
        conv(2, 6),
        torch.nn.BatchNorm2d(6, eps=1e-4),
        act(1),
        conv(6, 4),
        torch.nn.BatchNorm2d(4, eps=1e-4),
        act(2),
        torch.nn.Flatten(),
        qnn.QuantLinear(4 * 2 * 2, 3, weight_quant=CommonWeightQuant, weight_bit_width=1, bias=False),
    )
    return calibrate(net, lambda n: torch.rand(n, 2, 6, 6) * 2 - 1, seed=0)


def test_binary_convolutions_fast_equals_csim_and_torch(tmp_path):
    from brevitas.export import export_qonnx

    net = _net()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_qonnx(net, torch.rand(1, 2, 6, 6), export_path=str(tmp_path / "bcnn.onnx"), dynamo=False)
    meta = api.hls(tmp_path / "bcnn.onnx", out=tmp_path / "prj", warn=lambda m: None)
    assert meta.exact is True and meta.verdict == "exact", meta.verdict_reason
    rng = np.random.default_rng(1)
    x = rng.uniform(-1.2, 1.2, (40, 2, 6, 6)).astype(np.float32)
    x[:10] = np.round(x[:10] * 128) / 128 + 1 / 256  # ties of the input quantizer's grid
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    fast = api.emulate(tmp_path / "prj", x, engine="fast")
    assert np.array_equal(fast, expected)
    assert np.array_equal(api.emulate(tmp_path / "prj", x, engine="csim"), fast)
