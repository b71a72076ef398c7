"""Kernel registry of the fast engine, keyed by hls4ml layer class name.

Each hls4ml layer class the emulator can reproduce bit-exactly has one builder here, registered
with ``@register("Dense")``.  A builder reads what it needs from the hls4ml layer once (weights
as the firmware loads them, fixed-point types, modes) and returns a kernel: a function from the
input mantissa arrays (int64, shape ``(batch, *variable.shape)``, each in its producing
variable's type) to the output mantissas in the layer's result type.  Building once and running
per batch keeps weight conversion out of the streaming loop.  A layer class, or a variant of a
class, that is not reproduced exactly raises ``UnsupportedLayerError``; there is no fallback.
A kernel marked ``kernel.float_in = True`` also takes the same mantissas as exact-integer float
arrays (and may return them so): the runner then keeps the tensor in float between such kernels.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from fpgadl.core.errors import UsageError
from fpgadl.emulator.fastfixed import from_float
from fpgadl.emulator.fixed import FixedType, UnsupportedTypeError

Kernel = Callable[..., np.ndarray]
Builder = Callable[[object], Kernel]

_BUILDERS: dict[str, Builder] = {}


class UnsupportedLayerError(UsageError):
    """A layer (or one of its options) the fast engine does not reproduce bit-exactly: the user's model
    asks for it, so it is reported like any bad input (exit 2, one line naming the layer)."""

    def __init__(self, layer, reason: str = ""):
        self.layer_name = getattr(layer, "name", str(layer))
        self.class_name = getattr(layer, "class_name", type(layer).__name__)
        self.reason = reason
        detail = f": {reason}" if reason else ""
        super().__init__(
            f"layer '{self.layer_name}' ({self.class_name}) is not supported by the fast engine{detail}; "
            f"supported classes: {', '.join(sorted(_BUILDERS))}"
        )


def registrar(table: dict, what: str) -> Callable[..., Callable]:
    """A `register(*class_names)` decorator filling `table` (hls4ml class name -> builder); a class named
    twice is an error. The fast engine's kernels and the RTL tracer's tracers are both registered so."""

    def register(*class_names: str) -> Callable:
        def deco(builder):
            for name in class_names:
                if name in table:
                    raise ValueError(f"{what} for {name} registered twice")
                table[name] = builder
            return builder

        return deco

    return register


register = registrar(_BUILDERS, "kernel")  # register a kernel builder for hls4ml layer class names


def supported_classes() -> list[str]:
    return sorted(_BUILDERS)


def build_from(
    table: dict, layer, missing: str, refusals: tuple[type[Exception], ...] = (UnsupportedTypeError,)
) -> Callable:
    """Call the builder `table` (a `registrar` table) holds for the layer's class; an unknown class, or a
    builder's refusal (`refusals`), is an UnsupportedLayerError naming the layer."""
    builder = table.get(layer.class_name)
    if builder is None:
        raise UnsupportedLayerError(layer, missing)
    try:
        return builder(layer)
    except refusals as err:
        raise UnsupportedLayerError(layer, str(err)) from err


def build_kernel(layer) -> Kernel:
    """The kernel for one hls4ml layer; raises UnsupportedLayerError for an unknown class."""
    return build_from(_BUILDERS, layer, "no kernel for this layer class")


def run_layer(layer, *inputs: np.ndarray) -> np.ndarray:
    """Run one layer on input mantissas (builds the kernel each call; use build_kernel to reuse)."""
    return build_kernel(layer)(*inputs)


# ---- helpers shared by the kernels -------------------------------------------------------------


def fixed_type(layer, precision) -> FixedType:
    """FixedType of an hls4ml precision, as an UnsupportedLayerError naming the layer on failure."""
    try:
        return FixedType.from_hls4ml(precision)
    except UnsupportedTypeError as err:
        raise UnsupportedLayerError(layer, str(err)) from err


def result_type(layer) -> FixedType:
    return fixed_type(layer, layer.get_output_variable().type.precision)


def data_inputs(layer) -> list[str]:
    """The layer's input tensors that carry data (hls4ml leaves e.g. a Reshape's removed shape
    constant in ``inputs`` as an empty name with no variable; the firmware never reads it)."""
    return [name for name in layer.inputs if layer.get_input_variable(name) is not None]


def input_types(layer) -> list[FixedType]:
    """Types of the layer's data inputs (the C++ template's data_T), in input order."""
    return [fixed_type(layer, layer.get_input_variable(name).type.precision) for name in data_inputs(layer)]


def attr_type(layer, name: str) -> FixedType:
    """Type of a layer type attribute such as 'accum_t' or 'table_t'."""
    t = layer.get_attr(name)
    if t is None:
        raise UnsupportedLayerError(layer, f"missing type attribute {name}")
    return fixed_type(layer, getattr(t, "precision", t))


def weight_mantissas(layer, key: str) -> tuple[np.ndarray, FixedType]:
    """A weight array exactly as the firmware holds it, as int64 mantissas of its type.

    hls4ml writes each weight as decimal text with as many decimals as the type has fractional
    bits (``WeightVariable.precision_fmt``); the C++ side parses the text as a double and assigns
    it to the weight type.  Reproducing that round trip matters when the data is off the grid.
    """
    var = layer.weights[key]
    t = fixed_type(layer, var.type.precision)
    data = np.asarray(var.data, dtype=np.float64)
    fmt = var.precision_fmt
    if fmt:
        flat = np.array([float(fmt.format(v)) for v in data.ravel()], dtype=np.float64)
        data = flat.reshape(data.shape)
    return from_float(data, t), t


def is_io_stream(layer) -> bool:
    """True when the model was converted with io_type='io_stream' (some kernels differ there)."""
    return layer.model.config.get_config_value("IOType") == "io_stream"


def require(layer, condition: bool, reason: str) -> None:
    if not condition:
        raise UnsupportedLayerError(layer, reason)


def firmware_function(layer, *, required: bool = False) -> str:
    """The `nnet::` function the firmware calls for this layer (from hls4ml's `function_cpp`): '' when
    there is none, or an UnsupportedLayerError naming the layer when `required`."""
    call = layer.get_attr("function_cpp") or ""
    match = re.match(r"\s*nnet::(\w+)<", call)
    if match is None and required:
        raise UnsupportedLayerError(layer, f"cannot read the firmware call from {call!r}")
    return match.group(1) if match else ""
