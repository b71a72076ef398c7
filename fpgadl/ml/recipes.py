"""QAT recipes: one YAML file in `quantize/` each, validated once here into a `Recipe`.

A recipe names its dataset, the architecture and its bit widths, the training hyper-parameters, the
metric and its floor, and the target board. Names are resolved only inside `quantize/`; an explicit
path to a `.yaml` file is accepted too (a user's own recipe).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fpgadl.core.errors import UsageError, validation_detail
from fpgadl.core.options import DEFAULT_BOARD, DEFAULT_RECIPE, HlsChoices
from fpgadl.core.resources import package_data

RECIPES_DIR = package_data("quantize")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatasetConfig(_Strict):
    name: str  # a key of fpgadl.ml.datasets.DATASETS
    val_fraction: float = Field(0.1, gt=0, lt=0.5)
    test_fraction: float = Field(0.2, gt=0, lt=0.5)
    subset: int | None = Field(None, gt=0, description="use only this many samples (tests, quick runs)")
    params: dict[str, Any] = Field(default_factory=dict)


class QuantConfig(_Strict):
    input_bits: int = Field(8, ge=2, le=16)
    weight_bits: int = Field(8, ge=2, le=16)
    act_bits: int = Field(8, ge=2, le=16)
    bias_bits: int = Field(16, ge=4, le=32)
    # power_of_two: Brevitas *FixedPoint quantizers, exact in ap_fixed; float: per-tensor float scales.
    scaling: Literal["power_of_two", "float"] = "power_of_two"


class ModelConfig(_Strict):
    arch: str  # a key of fpgadl.ml.catalog.CATALOG (builders: fpgadl.ml.models)
    params: dict[str, Any] = Field(default_factory=dict)


class TrainConfig(_Strict):
    epochs: int = Field(30, ge=0)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(1e-2, gt=0)
    lr_decay: float = Field(0.97, gt=0, le=1, description="exponential decay factor per epoch")
    weight_decay: float = Field(1e-4, ge=0, description="L2 penalty")
    patience: int = Field(8, ge=1, description="early stopping on validation metric")
    seed: int = 0
    loss: Literal["cross_entropy", "mse"] = "cross_entropy"
    params: dict[str, Any] = Field(default_factory=dict)  # family-specific (pre-training, RL, GAN)


class TargetConfig(_Strict):
    latency_cycles: int | None = Field(None, gt=0)
    ii: int | None = Field(None, gt=0)
    ceiling: float = Field(0.8, gt=0, le=1)


class Recipe(_Strict):
    name: str
    family: str
    description: str = ""
    dataset: DatasetConfig
    model: ModelConfig
    quant: QuantConfig = Field(default_factory=QuantConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    metric: Literal["accuracy", "bit_accuracy", "mse", "reward", "fidelity"] = "accuracy"
    floor: float | None = Field(None, description="minimum test metric of the emulated model (max for mse)")
    board: str = DEFAULT_BOARD
    hls: HlsChoices = Field(default_factory=HlsChoices)
    target: TargetConfig | None = None


def available_recipes() -> list[str]:
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def recipe_path(name_or_path: str) -> Path:
    """A recipe name inside quantize/, or an explicit path to a .yaml file."""
    if name_or_path.endswith((".yaml", ".yml")) and ("/" in name_or_path or Path(name_or_path).is_file()):
        path = Path(name_or_path)
        if not path.is_file():
            raise UsageError(f"recipe file {name_or_path}: no such file")
        return path
    if not _NAME.match(name_or_path):
        raise UsageError(
            f"recipe {name_or_path!r}: not a recipe name; valid: {', '.join(available_recipes())}"
        )
    path = RECIPES_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise UsageError(f"unknown recipe {name_or_path!r}; valid: {', '.join(available_recipes())}")
    return path


def parse_recipe(data: Any, source: str) -> Recipe:
    if not isinstance(data, dict):
        raise UsageError(f"recipe {source}: expected a mapping at top level, got {type(data).__name__}")
    try:
        return Recipe.model_validate(data)
    except ValidationError as e:
        raise UsageError(f"recipe {source}: {validation_detail(e)}") from e


def load_recipe(name_or_path: str = DEFAULT_RECIPE, **overrides: Any) -> Recipe:
    """Load and validate a recipe; `overrides` are dotted keys, e.g. {"train.epochs": 3}."""
    path = recipe_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise UsageError(f"recipe {path}: not valid YAML ({str(e).splitlines()[0]})") from e
    if isinstance(data, dict):
        data.setdefault("name", path.stem)
        for key, value in overrides.items():
            if value is None:
                continue
            node = data
            *parents, leaf = key.split(".")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = value
    return parse_recipe(data, str(path))
