"""The GRU's float64 time step against its int64 step (which tests/test_emulator.py holds to csim), and the
LSTM's one-block gates step against the step as the template writes it.

The float step runs only where the layer's types bound every product and sum below 2**53; here it is
compared, on the same hls4ml layer, with the int64 step over inputs spanning the input type's whole
range (state saturating, gates at the table ends), with exact equality.
"""

from __future__ import annotations

import hls4ml
import numpy as np
import pytest
import torch

from fpgadl.emulator import kernels_recurrent
from fpgadl.emulator.registry import build_kernel, fixed_type


class _Recurrent(torch.nn.Module):
    """torch's GRU or LSTM, 3 inputs -> 6 states, returning the output sequence."""

    def __init__(self, kind: str):
        super().__init__()
        self.rnn = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[kind](3, 6, batch_first=True)

    def forward(self, x):
        return self.rnn(x)[0]


def _gru_layer(out_dir, types: dict[str, str], extreme: bool = False):
    """A GRU(3 -> 6, 5 steps) converted by hls4ml with the given input/result/weight/accum types
    (``extreme``: weights at fixed<8,1>'s maximum, + on the r and n gates, - on z, biases 0: positive
    inputs drive r and the state to their top, z to zero, and the gate sums to their bounds)."""
    torch.manual_seed(3)
    module = _Recurrent("gru").eval()
    if extreme:
        with torch.no_grad():
            for name, param in module.rnn.named_parameters():
                param.fill_(0.0)
                if "weight" in name:  # rows: r, z, n (PyTorch's order)
                    param[:6], param[6:12], param[12:] = 127 / 128, -127 / 128, 127 / 128
    config = hls4ml.utils.config.config_from_pytorch_model(
        module, (5, 3), granularity="name", backend="Vitis", default_precision="fixed<32,12>",
        channels_last_conversion="off", transpose_outputs=False,
    )  # fmt: skip
    config["LayerName"]["x"]["Precision"]["result"] = types["input"]
    config["LayerName"]["rnn"]["Precision"].update({k: v for k, v in types.items() if k != "input"})
    hm = hls4ml.converters.convert_from_pytorch_model(
        module, output_dir=str(out_dir), backend="Vitis", io_type="io_parallel", hls_config=config
    )
    return next(layer for layer in hm.get_layers() if layer.class_name == "GRU")


_W8 = {"weight": "fixed<8,1>", "bias": "fixed<8,1>", "recurrent_weight": "fixed<8,1>", "recurrent_bias": "fixed<8,1>"}


@pytest.mark.parametrize(
    ("types", "float_step"),
    [
        # the zoo recipe's: 8-bit quantizers, hls4ml's 32-bit accumulator (gate sums provably in range)
        (
            {"input": "fixed<8,4,RND_CONV,SAT>", "result": "fixed<8,1,RND_CONV,SAT>", "accum": "fixed<32,12>", **_W8},
            True,
        ),
        # a narrower accumulator and a state rounding ties up
        ({"input": "fixed<8,4,RND_CONV,SAT>", "result": "fixed<8,1,RND,SAT>", "accum": "fixed<24,8>", **_W8}, True),
        # an accumulator that can overflow in the products: a cast after the GEMM, the int64 step
        ({"input": "fixed<8,4,RND_CONV,SAT>", "result": "fixed<8,1,RND,SAT>", "accum": "fixed<14,6>", **_W8}, False),
        # products dropping bits on a coarser accumulator: no float GEMM plan, the int64 step
        ({"input": "fixed<16,6>", "result": "fixed<16,6>", "accum": "fixed<18,6>", **_W8}, False),
    ],
)
def test_gru_float_step_equals_the_int_step(tmp_path, monkeypatch, types, float_step):
    layer = _gru_layer(tmp_path / "gru", types)
    fast = build_kernel(layer)
    assert bool(getattr(fast, "float_in", False)) == float_step
    monkeypatch.setattr(kernels_recurrent, "_gru_float_step", lambda *a, **k: None)
    slow = build_kernel(layer)
    x_t = fixed_type(layer, layer.get_input_variable().type.precision)
    rng = np.random.default_rng(0)
    x = rng.integers(x_t.min_mantissa, x_t.max_mantissa, (400, 5, 3), endpoint=True)
    x[:20] = rng.choice([x_t.min_mantissa, x_t.max_mantissa], (20, 5, 3))  # saturate gates and state
    x[20:40] = rng.integers(-4, 5, (20, 5, 3))  # near zero
    got, want = fast(x), slow(x)
    assert not np.issubdtype(want.dtype, np.floating)
    assert np.array_equal(np.asarray(got).astype(np.int64), want)
    assert len(np.unique(want)) > 20  # the outputs really vary (not all saturated or zero)


def test_gru_float_step_gate_sum_leaving_accum_t(tmp_path, monkeypatch):
    """Gate sums that leave accum_t (each product fits its +-8, the sum of both reaches 11.8): the float
    step wraps the sum before scaling it to a table index instead of folding the index scale into the
    weights; inputs at the maximum make the r gate's sums wrap.  The input-side products are prepared two
    time steps at a time (5 steps: chunks of 2, 2, 1)."""
    types = {"input": "fixed<8,2,RND_CONV,SAT>", "result": "fixed<8,1,RND,SAT>", "accum": "fixed<18,4>", **_W8}
    layer = _gru_layer(tmp_path / "gru", types, extreme=True)
    fast = build_kernel(layer)
    assert fast.float_in
    monkeypatch.setattr(kernels_recurrent, "_gru_float_step", lambda *a, **k: None)
    slow = build_kernel(layer)
    x_t = fixed_type(layer, layer.get_input_variable().type.precision)
    x = np.random.default_rng(1).integers(x_t.min_mantissa, x_t.max_mantissa, (200, 5, 3), endpoint=True)
    x[:50] = x_t.max_mantissa
    x[50:100] = np.abs(x[50:100])
    want = slow(x)
    monkeypatch.setattr(kernels_recurrent, "_PREPARED_STEPS", 2)
    assert np.array_equal(np.asarray(fast(x)).astype(np.int64), want)
    assert len(np.unique(want)) > 5


def test_lstm_gates_step_equals_the_gathered_step(tmp_path, monkeypatch):
    """The LSTM step with its gates reordered into one block, the state's bound read from the tables and the
    recurrent product's truncations as a GEMM minus residues (the zoo recipe's types: hls4ml's 32-bit port,
    accumulator and state, 8-bit weights dropping 8-9 bits per product), against the step as the template
    writes it, on inputs on the 8-bit grid, off it and at the port type's extremes."""
    torch.manual_seed(4)
    config = hls4ml.utils.config.config_from_pytorch_model(
        _Recurrent("lstm").eval(), (5, 3), granularity="name", backend="Vitis", default_precision="fixed<32,12>",
        channels_last_conversion="off", transpose_outputs=False,
    )  # fmt: skip
    config["LayerName"]["rnn"]["Precision"].update(
        {
            "weight": "fixed<8,-1>",
            "bias": "fixed<8,-1>",
            "recurrent_weight": "fixed<8,0>",
            "recurrent_bias": "fixed<8,-1>",
        }
    )
    hm = hls4ml.converters.convert_from_pytorch_model(
        _Recurrent("lstm").eval(),
        output_dir=str(tmp_path / "lstm"),
        backend="Vitis",
        io_type="io_parallel",
        hls_config=config,
    )
    layer = next(layer for layer in hm.get_layers() if layer.class_name == "LSTM")
    real, built = kernels_recurrent._lstm_gates_step, []
    monkeypatch.setattr(kernels_recurrent, "_lstm_gates_step", lambda *a, **k: None)
    slow = build_kernel(layer)
    monkeypatch.setattr(kernels_recurrent, "_lstm_gates_step", lambda *a: built.append(real(*a)) or built[-1])
    fast = build_kernel(layer)
    assert built and built[0] is not None  # the gates step applies to these types
    x_t = fixed_type(layer, layer.get_input_variable().type.precision)
    assert x_t.width == 32
    rng = np.random.default_rng(2)
    x = rng.integers(-(2**22), 2**22, (300, 5, 3))  # |x| < 4, off the 8-bit grid
    x[:100] = (x[:100] >> 13) << 13  # on a 2**-7 grid: the input products drop no bits
    x[100:120] = rng.choice([x_t.min_mantissa, x_t.max_mantissa], (20, 5, 3))  # gate sums wrapping
    want = slow(x)
    assert np.array_equal(fast(x), want)
    assert np.array_equal(fast(x[:100]), want[:100])  # a batch whose input products are one exact GEMM
    assert len(np.unique(want)) > 100
