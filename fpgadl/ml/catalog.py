"""What each zoo architecture is, stated without building it: its front end and what in it cannot be exact.

`fpgadl zoo` answers from here and the recipes' declared quantizers alone (no torch, no Brevitas import),
and the flow picks a front end from here. The zoo registers a builder only for a name listed here
(`fpgadl.ml.models.register_architecture`), and a test builds every recipe's model and checks that what
this table says matches the modules the model really contains.
"""

from __future__ import annotations

from dataclasses import dataclass

# Activations the firmware computes from lookup tables (never equal to torch's exact functions).
TABLE_ACTIVATIONS = ("sigmoid", "tanh")


@dataclass(frozen=True)
class ArchFacts:
    frontend: str = "onnx"  # one of fpgadl.core.options.FRONTENDS
    activation_param: str | None = "activation"  # the model.params key naming a hidden activation, if any
    default_activation: str = "relu"
    inexact: str | None = None  # what always keeps the firmware from equalling torch, if anything


CATALOG: dict[str, ArchFacts] = {
    "mlp": ArchFacts(),
    "linear": ArchFacts(),
    "autoencoder": ArchFacts(),
    "lenet": ArchFacts(),
    "alexnet": ArchFacts(activation_param=None),
    "vgg": ArchFacts(activation_param=None),
    "conv1d": ArchFacts(activation_param=None),
    "generator": ArchFacts(activation_param=None),
    "conv-autoencoder": ArchFacts(activation_param=None),
    "threshold-net": ArchFacts(activation_param=None),  # integer weights, a step as a 2-bit quantizer
    "perceptron": ArchFacts(activation_param=None),
    "resnet": ArchFacts(activation_param=None, inexact="BatchNorm: torch rounds x * scale + bias in float32"),
    "gru": ArchFacts(frontend="pytorch", activation_param=None, inexact="recurrent gates are lookup tables"),
    "lstm": ArchFacts(frontend="pytorch", activation_param=None, inexact="recurrent gates are lookup tables"),
    "rnn": ArchFacts(frontend="pytorch", activation_param=None, inexact="the recurrent tanh is a lookup table"),
}


def facts(arch: str) -> ArchFacts:
    from fpgadl.core.errors import UsageError

    if arch not in CATALOG:
        raise UsageError(f"unknown architecture {arch!r}; valid: {', '.join(sorted(CATALOG))}")
    return CATALOG[arch]


def inexact_reasons(arch: str, params: dict, scaling: str) -> list[str]:
    """Why a recipe's firmware cannot equal its torch model bit for bit (empty: it can, and is tested so)."""
    f = facts(arch)
    reasons = [f.inexact] if f.inexact else []
    if f.activation_param and params.get(f.activation_param, f.default_activation) in TABLE_ACTIVATIONS:
        reasons.append(f"{params[f.activation_param]} activations are lookup tables")
    if scaling != "power_of_two":
        reasons.append("quantizer scales are not powers of two")
    return reasons


def rtl_refusal(arch: str, params: dict) -> str | None:
    """What keeps an architecture from the open RTL path (`--engine verilator`), as far as it is known
    without building the model: recurrent layers and lookup-table activations have no exact traced form.
    None does not promise a trace: the converted graph's layers decide (fpgadl.rtl.trace names them)."""
    f = facts(arch)
    if f.frontend == "pytorch":
        return "recurrent layers"
    act = params.get(f.activation_param, f.default_activation) if f.activation_param else None
    return f"{act} activations (lookup tables)" if act in TABLE_ACTIVATIONS else None
