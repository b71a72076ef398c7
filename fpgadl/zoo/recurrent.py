"""Recurrent networks (Elman RNN, GRU, LSTM) for sequences, with a float twin for hls4ml's PyTorch front end.

hls4ml converts recurrent layers only from PyTorch (`convert_from_pytorch_model`), and only plain
`torch.nn.GRU` / `torch.nn.LSTM` / `torch.nn.RNN` with `batch_first=True`, one layer, unidirectional, no
dropout; it returns the last hidden state only. Brevitas' QuantLSTM exports to a QONNX graph of
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
import numpy as np
import torch
from torch.func import functional_call

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
RECURRENT_MODULES = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM, "rnn": torch.nn.RNN}


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

    @torch.no_grad()
    def float_twin(self) -> torch.nn.Module:
        """Plain-torch copy with every quantized tensor written in: hls4ml's PyTorch input."""
        twin = RecurrentTwin(
            type(self.rnn)(self.rnn.input_size, self.rnn.hidden_size, batch_first=True),
            torch.nn.Linear(self.fc.in_features, self.fc.out_features),
        )
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


class RecurrentTwin(torch.nn.Module):
    def __init__(self, rnn: torch.nn.Module, fc: torch.nn.Linear):
        super().__init__()
        self.rnn, self.fc = rnn, fc

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1, :])


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


def twin_spec(model: QuantRecurrentNet) -> dict:
    """What rebuilds the float twin's module (its weights go to a state_dict file beside it)."""
    kind = next(k for k, cls in RECURRENT_MODULES.items() if type(model.rnn) is cls)
    return {
        "kind": kind,
        "input_shape": list(model.input_shape),
        "hidden": model.rnn.hidden_size,
        "n_out": model.fc.out_features,
    }


def rebuild_twin(spec: dict, state_dict: dict) -> RecurrentTwin:
    cls = RECURRENT_MODULES[spec["kind"]]
    twin = RecurrentTwin(
        cls(spec["input_shape"][1], spec["hidden"], batch_first=True), torch.nn.Linear(spec["hidden"], spec["n_out"])
    )
    twin.load_state_dict(state_dict)
    return twin.eval()


def twin_hls_config(
    model: QuantRecurrentNet, backend: str = "Vitis", state_result: bool | None = None, table_size: int = 4096
) -> dict:
    """hls4ml config for the twin: exact weight types, the input port, and `table_size`-entry gate tables.

    The gate tables get `table_size` entries over [-8, 8) (hls4ml's default 1024 doubles the deviation
    from torch; 4096 measured: GRU 0.033 -> 0.016, LSTM 0.128 -> 0.060 max |logit error|).
    """
    import hls4ml

    config = hls4ml.utils.config.config_from_pytorch_model(
        model.float_twin(),
        tuple(model.input_shape),
        granularity="name",
        backend=backend,
        default_precision="fixed<32,12>",
        channels_last_conversion="off",
        transpose_outputs=False,
    )
    precisions = model.hls_precisions(state_result)
    names = config["LayerName"]
    input_name = next(iter(names))
    names[input_name]["Precision"]["result"] = precisions["input"]["result"]
    names["rnn"]["Precision"].update(precisions["rnn"])
    names["rnn"]["TableSize"] = table_size  # entries of the sigmoid/tanh gate tables over [-8, 8)
    names["fc"]["Precision"].update(precisions["fc"])
    return config


def convert_pytorch_twin(twin: RecurrentTwin, config: dict, output_dir: str, **kwargs):
    """hls4ml project of a float twin through the PyTorch front end (not compiled).

    Channels-last conversion is off (the input is already (timesteps, features), which is what hls4ml's
    recurrent layers read). hls4ml 1.3.0 transposes Dense weights from torch's (out, in) to its (in, out)
    only inside that conversion pass, so with it off they are transposed here.
    """
    import hls4ml

    hls_model = hls4ml.converters.convert_from_pytorch_model(twin, output_dir=output_dir, hls_config=config, **kwargs)
    for layer in hls_model.get_layers():
        if layer.class_name == "Dense":
            w = layer.get_weights("weight")
            w.data = np.ascontiguousarray(w.data.T)
    return hls_model


def input_prequant(model: QuantRecurrentNet) -> dict | None:
    """The input quantizer the host applies before the port, where the port cannot round (LSTM)."""
    if not isinstance(model.rnn, torch.nn.LSTM):
        return None
    q = model.inp.act_quant
    return {"scale_exponent": round(math.log2(float(q.scale()))), "bits": int(q.bit_width()), "signed": True}


def convert_twin(
    model: QuantRecurrentNet,
    output_dir: str,
    backend: str = "Vitis",
    io_type: str = "io_parallel",
    state_result: bool | None = None,
    table_size: int = 4096,
):
    """hls4ml project for a recurrent net via the PyTorch front end (not compiled)."""
    config = twin_hls_config(model, backend, state_result, table_size)
    return convert_pytorch_twin(model.float_twin(), config, output_dir, backend=backend, io_type=io_type)
