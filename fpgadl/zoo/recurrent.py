"""Recurrent networks (Elman RNN, GRU, LSTM) for sequences, with a float twin for hls4ml's PyTorch front end.

hls4ml converts recurrent layers only from PyTorch (see `fpgadl.hls.pytorch_twin`, whose `TwinSource`
these models implement). Brevitas' QuantLSTM exports to a QONNX graph of
elementwise ops that hls4ml's ONNX front end cannot read, and there is no QuantGRU. So the QAT model
here keeps a plain torch recurrent layer and fake-quantizes its weights and biases (power-of-two scale,
the same rule as Brevitas' *FixedPoint weight quantizers, straight-through gradient) on every forward.
`float_twin()` returns the plain-torch network with those quantized values written in, which is what
hls4ml's PyTorch front end converts; `hls_precisions()` gives the ap_fixed types that hold each tensor
exactly. Gates (sigmoid/tanh) stay float in QAT and are lookup tables in the firmware, so csim deviates
from torch; docs/zoo.md records by how much (benchmarks/zoo.py).
"""

from __future__ import annotations

import math

import brevitas.nn as qnn
import torch
from torch.func import functional_call

from fpgadl.hls.pytorch_twin import RECURRENT, RecurrentTwin, empty_twin
from fpgadl.ml.recipes import QuantConfig
from fpgadl.zoo import register, xavier_init
from fpgadl.zoo.layers import quant_input, quant_linear, take
from fpgadl.zoo.quant import act_quant


def po2_scale_exponent(t: torch.Tensor, bits: int) -> int:
    """k such that the scale 2^k covers max|t| with a narrow-range signed `bits`-bit integer."""
    max_abs = float(t.detach().abs().max().clamp_min(1e-8))
    return math.ceil(math.log2(max_abs / (2 ** (bits - 1) - 1)))


def po2_fake_quant(t: torch.Tensor, bits: int) -> torch.Tensor:
    scale = 2.0 ** po2_scale_exponent(t, bits)
    n = 2 ** (bits - 1) - 1
    q = torch.clamp(torch.round(t / scale), -n, n) * scale
    return t + (q - t).detach()  # straight-through estimator


def fixed_type(k: int, bits: int, signed: bool = True, rounding: bool = False) -> str:
    """The ap_fixed type of a `bits`-bit integer times 2^k; `rounding`: round-half-even and saturate into
    it, as the quantizers do."""
    mode = ",RND_CONV,SAT" if rounding else ""
    return f"{'' if signed else 'u'}fixed<{bits},{bits + k}{mode}>"


# arch name -> the plain torch layer hls4ml's PyTorch front end converts (nn.RNN becomes its SimpleRNN,
# which fpgadl's own template implements: fpgadl/hls/simple_rnn.py)
RECURRENT_MODULES = RECURRENT  # kind -> torch module, shared with the PyTorch front end


class QuantRecurrentNet(torch.nn.Module):
    """input quantizer -> RNN/GRU/LSTM (fake-quantized weights) -> last state quantizer -> float dense."""

    def __init__(self, kind: str, input_shape: tuple, hidden: int, n_out: int, quant: QuantConfig):
        super().__init__()
        if len(input_shape) != 2:
            raise ValueError(f"recurrent nets take (timesteps, features) inputs, got {input_shape}")
        cls = RECURRENT_MODULES[kind]
        self.weight_bits = quant.weight_bits
        self.input_shape = tuple(input_shape)
        self.inp = quant_input(quant)
        self.rnn = cls(input_shape[1], hidden, batch_first=True)
        self.state = qnn.QuantIdentity(act_quant=act_quant(quant, signed=True), return_quant_tensor=True)
        self.fc = quant_linear(hidden, n_out, quant, out_quant_tensor=False)

    def quantized_rnn_params(self) -> dict[str, torch.Tensor]:
        return {name: po2_fake_quant(p, self.weight_bits) for name, p in self.rnn.named_parameters()}

    def forward(self, x):
        x = self.inp(x).value
        out, _ = functional_call(self.rnn, self.quantized_rnn_params(), (x,))
        return self.fc(self.state(out[:, -1, :]))

    def twin_spec(self) -> dict:
        """What rebuilds the float twin's module (its weights go to a state_dict file beside it)."""
        return {
            "kind": next(k for k, cls in RECURRENT_MODULES.items() if type(self.rnn) is cls),
            "input_shape": list(self.input_shape),
            "hidden": self.rnn.hidden_size,
            "n_out": self.fc.out_features,
        }

    def input_prequant(self) -> dict | None:
        """The input quantizer the host applies before the port, where the port cannot round (LSTM)."""
        if not isinstance(self.rnn, torch.nn.LSTM):
            return None
        q = self.inp.act_quant
        return {"scale_exponent": round(math.log2(float(q.scale()))), "bits": int(q.bit_width()), "signed": True}

    @torch.no_grad()
    def float_twin(self) -> RecurrentTwin:
        """Plain-torch copy with every quantized tensor written in: hls4ml's PyTorch input."""
        twin = empty_twin(self.twin_spec())
        for name, value in self.quantized_rnn_params().items():
            getattr(twin.rnn, name).copy_(value)
        twin.fc.weight.copy_(self.fc.quant_weight().value)
        # The dense layer's output for a zero state is its quantized bias (at the accumulator scale).
        twin.fc.bias.copy_(self.fc(self.state(torch.zeros(1, self.fc.in_features)))[0])
        return twin.eval()

    @torch.no_grad()
    def hls_precisions(self, state_result: bool | None = None, wide: str = "fixed<32,12>") -> dict[str, dict[str, str]]:
        """hls4ml `LayerName` precisions for the twin: every weight and bias in a type that holds it
        exactly, the input port as the input quantizer's type, internal arithmetic `wide`.

        state_result: give the recurrent layer's result (its hidden state, fed back every step) the state
        quantizer's type; otherwise `wide` (QAT quantizes only the last state, which the firmware cannot).
        Default: on for GRU and RNN; off for LSTM. hls4ml 1.3.0's LSTM template only compiles when its input,
        result and accumulator types are one type, so for LSTM the input port is `wide` too: the host
        must send inputs already on the input quantizer's grid (they are then held exactly).
        """
        if state_result is None:
            state_result = not isinstance(self.rnn, torch.nn.LSTM)
        qi, qs = self.inp.act_quant, self.state.act_quant
        k_in, k_state = (round(math.log2(float(q.scale()))) for q in (qi, qs))
        bits_in, bits_state = int(qi.bit_width()), int(qs.bit_width())
        rnn = {"accum": wide, "table": "fixed<18,8>"}
        rnn["result"] = fixed_type(k_state, bits_state, rounding=True) if state_result else wide
        for name, p in self.rnn.named_parameters():
            key = name.removesuffix("_l0").replace("_ih", "").replace("_hh", "")
            key = ("recurrent_" if "_hh" in name else "") + key
            rnn[key] = fixed_type(po2_scale_exponent(p, self.weight_bits), self.weight_bits)
        w = self.fc.quant_weight()
        k_w = round(math.log2(float(w.scale)))
        fc = {
            "weight": fixed_type(k_w, int(w.bit_width)),
            "bias": fixed_type(k_w + k_state, self.fc.bias_quant.bit_width() if False else 32),
            "accum": wide,
            "result": wide,
        }
        lstm = isinstance(self.rnn, torch.nn.LSTM)
        port = wide if lstm else fixed_type(k_in, bits_in, rounding=True)
        return {"input": {"result": port}, "rnn": rnn, "fc": fc}


def _build(kind: str, params: dict, quant: QuantConfig, input_shape: tuple, n_out: int) -> torch.nn.Module:
    (hidden,) = take(params, hidden=32)
    return xavier_init(QuantRecurrentNet(kind, input_shape, hidden, n_out, quant))


@register("gru")
def build_gru(params: dict, quant: QuantConfig, input_shape: tuple, n_out: int) -> torch.nn.Module:
    """One GRU layer (params: hidden) over (timesteps, features), classifier on the last state."""
    return _build("gru", params, quant, input_shape, n_out)


@register("rnn")
def build_rnn(params: dict, quant: QuantConfig, input_shape: tuple, n_out: int) -> torch.nn.Module:
    """One Elman RNN layer, tanh (params: hidden) over (timesteps, features), classifier on the last state."""
    return _build("rnn", params, quant, input_shape, n_out)


@register("lstm")
def build_lstm(params: dict, quant: QuantConfig, input_shape: tuple, n_out: int) -> torch.nn.Module:
    """One LSTM layer (params: hidden) over (timesteps, features), classifier on the last state."""
    return _build("lstm", params, quant, input_shape, n_out)
