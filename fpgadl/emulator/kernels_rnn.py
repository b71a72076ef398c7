"""SimpleRNN (Elman) kernel: ``simple_rnn_stack`` of fpgadl's own ``hls/templates/nnet_simple_rnn.h``.

hls4ml 1.3 has no Vivado/Vitis SimpleRNN; fpgadl registers its template (fpgadl/hls/simple_rnn.py). Per
time step the firmware runs two dense products into ``accum_t`` (input weights with ``bias``, recurrent
weights with ``recurrent_bias``), adds them in ``accum_t``, applies the activation (the tanh table)
from ``accum_t`` to ``accum_t`` and assigns the result to the layer's result type, which is the state fed
back next step. The state starts at zero for every sample. Same fixed-point rules as the GRU/LSTM kernels.
"""

from __future__ import annotations

import re

import numpy as np

from fpgadl.emulator.activations import lut_activation
from fpgadl.emulator.fastfixed import cast, convert
from fpgadl.emulator.fixed import FixedType
from fpgadl.emulator.kernels_dense import DenseArithmetic, matrix
from fpgadl.emulator.registry import (
    UnsupportedLayerError,
    attr_type,
    input_types,
    register,
    require,
    result_type,
    weight_mantissas,
)


def _config_value(layer, name: str) -> str:
    """`static const ... name = value;` of the layer config (the struct deriving simple_rnn_config)."""
    text = layer.get_attr("config_cpp") or ""
    body = re.search(r"struct config\d+ : nnet::simple_rnn_config \{(.*?)\n\};", text, re.S)
    require(layer, body is not None, "no simple_rnn_config in the generated config (not fpgadl's template?)")
    value = re.search(rf"static const \w+ {name}\s*=\s*(\w+);", body.group(1))
    require(layer, value is not None, f"no {name} in the layer config")
    return value.group(1)


def _activation(layer, accum_t: FixedType):
    """The template's activation from accum_t to accum_t, as a function on mantissas."""
    name = layer.get_attr("activation")
    require(layer, name == "tanh", f"SimpleRNN activation {name}")
    return lut_activation("tanh", accum_t, accum_t, int(layer.get_attr("table_size")), attr_type(layer, "table_t"))


def _dense(layer, x_t: FixedType, w_key: str, b_key: str, accum_t: FixedType) -> DenseArithmetic:
    """nnet::dense<data_T, accum_t, mult_config> with DenseLatency: the product lands in accum_t itself."""
    w, w_t = matrix(layer, w_key)
    b, b_t = weight_mantissas(layer, b_key)
    return DenseArithmetic(layer, x_t, w, w_t, b, b_t, accum_t, accum_t)


@register("SimpleRNN")
def simple_rnn(layer):
    require(layer, "nnet::DenseLatency" in (layer.get_attr("config_cpp") or ""), "a dense kernel other than latency")
    accum_t = attr_type(layer, "accum_t")
    (x_t,) = input_types(layer)
    res_t = result_type(layer)
    n_seq, n_in = int(_config_value(layer, "n_sequence")), int(_config_value(layer, "n_in"))
    n_state, n_seq_out = int(_config_value(layer, "n_state")), int(_config_value(layer, "n_sequence_out"))
    dense_x = _dense(layer, x_t, "weight", "bias", accum_t)
    dense_h = _dense(layer, res_t, "recurrent_weight", "recurrent_bias", accum_t)
    act = _activation(layer, accum_t)
    if 2 * (1 << accum_t.width) >= 2**62:
        raise UnsupportedLayerError(layer, "accum_t wider than 60 bits")
    out_shape = tuple(int(d) for d in layer.get_output_variable().shape)

    def kernel(x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        data = x.reshape(n, n_seq, n_in)
        h = np.zeros((n, n_state), dtype=np.int64)
        outs = []
        for t in range(n_seq):
            # inputacc = tmpres + tmpres_state, assigned to accum_t (both operands are accum_t)
            total = cast(dense_x(data[:, t, :]) + dense_h(h), accum_t.frac, accum_t)
            h = convert(act(total), accum_t, res_t)  # h_state = (res_T) tmpres_h
            outs.append(h)
        y = np.stack(outs, axis=1) if n_seq_out > 1 else h
        return y.reshape((n, *out_shape))

    return kernel
