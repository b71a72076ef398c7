"""Recurrent layers get an estimate: LSTM/GRU/SimpleRNN rules compose the kernel and table rules per timestep."""

from __future__ import annotations

import contextlib
import io
import warnings

import pytest
import torch

hls4ml = pytest.importorskip("hls4ml")


class _Net(torch.nn.Module):
    def __init__(self, cell: str):
        super().__init__()
        self.rnn = getattr(torch.nn, cell)(4, 8, batch_first=True)
        self.fc = torch.nn.Linear(8, 3)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.fc(y[:, -1])


def _estimate(cell: str, tmp_path, timesteps: int = 10):
    from fpgadl.core.boards import load_board
    from fpgadl.estimate import estimate

    torch.manual_seed(0)
    net = _Net(cell).eval()
    cfg = hls4ml.utils.config_from_pytorch_model(net, input_shape=(timesteps, 4), default_precision="ap_fixed<8,3>")
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = hls4ml.converters.convert_from_pytorch_model(
            net, hls_config=cfg, output_dir=str(tmp_path / cell), backend="Vitis"
        )
    est = estimate(model, load_board("pynq-z2"))
    return next(layer for layer in est.layers if layer.class_name == HLS_CLASS.get(cell, cell)), est


HLS_CLASS = {"RNN": "SimpleRNN"}  # torch.nn.RNN is hls4ml's SimpleRNN (fpgadl's own HLS template)


@pytest.mark.parametrize("cell", ["LSTM", "GRU", "RNN"])
def test_recurrent_layers_have_an_estimate(cell, tmp_path):
    layer, est = _estimate(cell, tmp_path)
    assert layer.kind == "recurrent"
    assert layer.lut > 0 and layer.ff > 0 and layer.bram18k > 0  # gate tables
    # timesteps run one after another: at least 2 cycles (kernel + table) per step
    assert layer.latency_cycles >= 2 * 10 and layer.ii_cycles == layer.latency_cycles
    assert est.total["lut"] >= layer.lut


def test_lstm_costs_more_than_gru_and_scales_with_timesteps(tmp_path):
    lstm, _ = _estimate("LSTM", tmp_path)
    gru, _ = _estimate("GRU", tmp_path)
    assert lstm.lut > gru.lut  # four gates against three, plus tanh(c)
    rnn, _ = _estimate("RNN", tmp_path)
    assert gru.lut > rnn.lut and gru.bram18k > rnn.bram18k  # one tanh table per unit, no state products
    short, _ = _estimate("GRU", tmp_path / "short", timesteps=5)
    assert short.lut == gru.lut  # hardware is reused across timesteps
    assert short.latency_cycles * 2 == gru.latency_cycles
