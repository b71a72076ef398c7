"""One options model: every choice and default of the HLS side, the engines and the run, defined once.

Recipes (`hls:` block), the API, the CLI and the converter all take `HlsOptions` or its parts; their
Literal choices and defaults come from here, so a new strategy or engine is added in one place.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fpgadl.core.errors import UsageError

DEFAULT_BOARD = "pynq-z2"
DEFAULT_RECIPE = "mlp-digits"

IoType = Literal["io_parallel", "io_stream"]
# hls4ml strategies; "da" is hls4ml's distributed_arithmetic (da4ml adder graphs for Dense/Conv, reuse 1)
Strategy = Literal["latency", "resource", "da"]
Backend = Literal["Vitis", "Vivado"]
IO_TYPES: tuple[str, ...] = get_args(IoType)
STRATEGIES: tuple[str, ...] = get_args(Strategy)
BACKENDS: tuple[str, ...] = get_args(Backend)

# Emulation engines: `fast` is fpgadl's numpy twin of the firmware, `csim` hls4ml's C simulation,
# `verilator` the Verilog of `fpgadl rtl` (only where that has been generated).
ENGINES = ("fast", "csim", "verilator")
# Beyond the test split, the emulate stage compares its two engines on this many generated inputs (around
# the test split and far outside it, so saturation and wrap paths run); `fpgadl run --stress N`.
STRESS_SAMPLES = 10_000
BOTH = ("fast", "csim")  # what `fpgadl run --engine both` runs and compares
# What each `fpgadl run --engine` choice runs in the emulate stage. Verilator's verdict is its equality
# with the fast engine, so it runs beside it.
RUN_ENGINE_SETS: dict[str, tuple[str, ...]] = {
    "fast": ("fast",),
    "csim": ("csim",),
    "verilator": ("fast", "verilator"),
    "both": BOTH,
}
RUN_ENGINES = tuple(RUN_ENGINE_SETS)
# How a trained model reaches hls4ml: its QONNX export, or a float twin through hls4ml's PyTorch front
# end (recurrent layers, which hls4ml's ONNX front end cannot read).
FRONTENDS = ("onnx", "pytorch")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HlsChoices(_Strict):
    """The per-model HLS choices a recipe's `hls:` block may set."""

    io_type: IoType = "io_parallel"
    strategy: Strategy = "latency"
    reuse_factor: int = Field(1, ge=1)
    backend: Backend = "Vitis"


class HlsOptions(HlsChoices):
    """Everything the converter needs besides the model: target, HLS choices, the fit."""

    board: str = DEFAULT_BOARD
    part: str | None = None  # a bare part instead of a board (needs part_resources)
    part_resources: dict[str, int] = Field(default_factory=dict)  # lut/ff/dsp/bram18k/uram
    clock_period_ns: float | None = Field(None, gt=0)  # None: the board's clock
    layer_overrides: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # fit: choose per-layer reuse factor and strategy to fit the board (timing only, never arithmetic)
    fit: bool = False
    ceiling: float = Field(0.8, gt=0, le=1)  # fraction of every resource the fit may use
    target_latency_cycles: int | None = Field(None, gt=0)
    target_ii: int | None = Field(None, gt=0)


# How the CLI spells each field, so a validation error names the flag the user typed.
CLI_FLAGS = {
    "io_type": "--io",
    "strategy": "--strategy",
    "reuse_factor": "--reuse",
    "clock_period_ns": "--clock",
    "ceiling": "--ceiling",
    "target_latency_cycles": "--target-latency",
    "target_ii": "--target-ii",
    "part_resources": "--resources",
}


def hls_options(**fields: Any) -> HlsOptions:
    """Validated HlsOptions, or a one-line UsageError naming the option, its value and what is valid."""
    try:
        opts = HlsOptions(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as e:
        err = e.errors()[0]
        key = str(err["loc"][0]) if err["loc"] else "options"
        flag = CLI_FLAGS.get(key, key)
        raise UsageError(f"{flag} {err.get('input')!r}: {err['msg']}") from e
    if opts.strategy == "da" and (opts.reuse_factor != 1 or opts.fit):
        raise UsageError("--strategy da: distributed arithmetic is fully parallel; use it without --reuse/--fit")
    return opts
