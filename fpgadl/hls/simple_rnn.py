"""fpgadl's SimpleRNN (Elman) layer for hls4ml's Vivado and Vitis backends.

hls4ml 1.3 parses `torch.nn.RNN` into its `SimpleRNN` layer but has no Vivado/Vitis template for it: the
project is written without the layer's config or call. This module adds them through hls4ml's extension
API: a config template and a function-call template registered as template passes of each backend
(`Backend.register_template`), and the C++ kernel `hls/templates/nnet_simple_rnn.h` (package data)
registered as custom source (`Backend.register_source`), which the writer copies to `firmware/nnet_utils/`.
The generated config has the same shape as hls4ml's GRU/LSTM configs (two dense configs, an activation
config, the layer config), which is what the emulator's SimpleRNN kernel reads.
"""

from __future__ import annotations

from pathlib import Path

from fpgadl.core.resources import package_data

HEADER = "nnet_simple_rnn.h"
BACKENDS = ("Vivado", "Vitis")
SUPPORTED_ACTIVATIONS = ("tanh",)  # what the emulator models and the tests compile

_MULT_TEMPLATE = """struct config{index} : nnet::dense_config {{
    static const unsigned n_in = {n_in};
    static const unsigned n_out = {n_out};
    static const unsigned strategy = nnet::latency;
    static const unsigned reuse_factor = 1;
    static const unsigned n_zeros = {nzeros};
    static const unsigned n_nonzeros = {nonzeros};
    static const unsigned multiplier_limit = n_in * n_out - n_zeros;
    static const bool store_weights_in_bram = false;
    typedef {accum_t} accum_t;
    typedef {bias_t} bias_t;
    typedef {weight_t} weight_t;
    template<class data_T, class res_T, class CONFIG_T>
    using kernel = nnet::DenseLatency<data_T, res_T, CONFIG_T>;
    template<class x_T, class y_T>
    using product = nnet::product::{product_type}<x_T, y_T>;
}};\n"""

_ACT_TEMPLATE = """struct {activation}_config{index} : nnet::activ_config {{
    static const unsigned n_in = {n_state};
    static const unsigned table_size = {table_size};
    static const unsigned io_type = nnet::{iotype};
    static const unsigned reuse_factor = 1;
    typedef {table_t} table_t;
}};\n"""

_LAYER_TEMPLATE = """struct config{index} : nnet::simple_rnn_config {{
    typedef {accum_t} accum_t;
    typedef {weight_t} weight_t;
    typedef {recurrent_weight_t} recurrent_weight_t;
    typedef {bias_t} bias_t;
    typedef {recurrent_bias_t} recurrent_bias_t;
    typedef config{index}_1 mult_config1;
    typedef config{index}_2 mult_config2;
    typedef {activation}_config{index} ACT_CONFIG_T;
    template<class x_T, class y_T, class config_T>
    using activation = nnet::activation::{activation}<x_T, y_T, config_T>;
    static const unsigned n_in = {n_in};
    static const unsigned n_out = {n_state};
    static const unsigned n_state = {n_state};
    static const unsigned n_sequence = {n_sequence};
    static const unsigned n_sequence_out = {n_sequence_out};
    static const unsigned io_type = nnet::{iotype};
    static const unsigned reuse_factor = 1;
    static const bool store_weights_in_bram = false;
}};\n"""

_CALL_WEIGHTS = {"w": "weight", "wr": "recurrent_weight", "b": "bias", "br": "recurrent_bias"}
_CALL_TEMPLATE = "nnet::simple_rnn_stack<{input_t}, {output_t}, {config}>({input}, {output}, {w}, {wr}, {b}, {br});"


def header_path() -> Path:
    """The installed C++ kernel (package data)."""
    return package_data("hls") / "templates" / HEADER


def _check(node) -> None:
    """What the template implements; anything else is refused by name instead of written wrong."""
    if node.model.config.get_config_value("IOType") != "io_parallel":
        raise ValueError(f"SimpleRNN {node.name}: fpgadl's template is io_parallel only")
    if node.get_attr("activation") not in SUPPORTED_ACTIVATIONS:
        raise ValueError(f"SimpleRNN {node.name}: activation {node.get_attr('activation')!r}; valid: tanh")
    if "recurrent_bias" not in node.weights:
        raise ValueError(f"SimpleRNN {node.name}: no recurrent bias (only PyTorch's nn.RNN is supported)")
    if node.get_attr("pass_initial_states") or node.get_attr("return_state"):
        raise ValueError(f"SimpleRNN {node.name}: initial or returned states are not supported")


def _mult_config(node, index: str, x_precision, weight: str, bias: str) -> str:
    from hls4ml.backends.backend import get_backend

    w = node.get_weights(weight)
    return _MULT_TEMPLATE.format(
        index=index,
        n_in=w.shape[0],
        n_out=w.shape[1],
        nzeros=w.nzeros,
        nonzeros=w.nonzeros,
        accum_t=node.get_attr("accum_t").name,
        bias_t=node.get_weights(bias).type.name,
        weight_t=w.type.name,
        product_type=get_backend("vivado").product_type(x_precision, w.type.precision),
    )


def format_config(node) -> str:
    """The layer's C++ config: two dense configs, the activation config, the layer config."""
    _check(node)
    n_sequence, n_in = node.get_input_variable().shape[:2]
    out_shape = node.get_output_variable().shape
    n_state = out_shape[-1]
    params = {
        "index": node.index,
        "n_in": n_in,
        "n_state": n_state,
        "n_sequence": n_sequence,
        "n_sequence_out": out_shape[0] if node.get_attr("return_sequences") else 1,
        "iotype": node.model.config.get_config_value("IOType"),
        "activation": node.get_attr("activation"),
        "table_size": node.get_attr("table_size"),
        "table_t": node.get_attr("table_t").name,
        "accum_t": node.get_attr("accum_t").name,
        **{f"{k}_t": node.get_weights(k).type.name for k in ("weight", "recurrent_weight", "bias", "recurrent_bias")},
    }
    in_precision = node.get_input_variable().type.precision
    state_precision = node.get_output_variable().type.precision
    return "\n".join(
        [
            _mult_config(node, f"{node.index}_1", in_precision, "weight", "bias"),
            _mult_config(node, f"{node.index}_2", state_precision, "recurrent_weight", "recurrent_bias"),
            _ACT_TEMPLATE.format(**params),
            _LAYER_TEMPLATE.format(**params),
        ]
    )


def format_call(node, params: dict) -> str:
    names = {key: node.get_weights(name).name for key, name in _CALL_WEIGHTS.items()}
    return _CALL_TEMPLATE.format(**params, **names)


def _template_classes():
    from hls4ml.backends.template import FunctionCallTemplate, LayerConfigTemplate
    from hls4ml.model.layers import SimpleRNN

    class SimpleRNNConfigTemplate(LayerConfigTemplate):
        def __init__(self):
            super().__init__(SimpleRNN)

        def format(self, node):
            return format_config(node)

    class SimpleRNNFunctionTemplate(FunctionCallTemplate):
        def __init__(self):
            super().__init__(SimpleRNN, include_header=[f"nnet_utils/{HEADER}"])

        def format(self, node):
            return format_call(node, self._default_function_params(node))

    return SimpleRNNConfigTemplate, SimpleRNNFunctionTemplate


_registered: set[str] = set()


def register_simple_rnn(source: Path | None = None) -> None:
    """Add the SimpleRNN templates to hls4ml's Vivado and Vitis backends (once per process) and point the
    writer at `source` (default: the installed header). Calling it again with another `source` swaps the
    C++ kernel only: the test of the emulator's exactness uses that to plant a deliberately wrong one."""
    from hls4ml.backends.backend import get_backend

    source = Path(source) if source is not None else header_path()
    if source.name != HEADER:  # the writer copies it to firmware/nnet_utils/ under its own name
        raise ValueError(f"{source}: the SimpleRNN kernel must be named {HEADER}")
    for name in BACKENDS:
        backend = get_backend(name)
        if name not in _registered:
            for template in _template_classes():
                backend.register_template(template)
            _registered.add(name)
        backend.register_source(source.resolve())
