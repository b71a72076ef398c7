"""fpgadl.ml.catalog states each architecture's facts without building it; here every recipe's model is
built and the facts are checked against the modules it really contains."""

from __future__ import annotations

import pytest

import fpgadl.zoo  # noqa: F401  (registers the builders)
from fpgadl.core.options import FRONTENDS
from fpgadl.flow.frontends import FRONTENDS as FRONTEND_OBJECTS
from fpgadl.ml.catalog import CATALOG, inexact_reasons
from fpgadl.ml.datasets import load_dataset
from fpgadl.ml.models import ARCHITECTURES, build_model
from fpgadl.ml.recipes import available_recipes, load_recipe

# Modules whose firmware arithmetic cannot equal torch's: lookup-table activations, float BatchNorm
# constants, recurrent gates (tables too).
INEXACT_MODULES = {"Sigmoid", "Tanh", "QuantSigmoid", "QuantTanh", "BatchNorm1d", "BatchNorm2d", "GRU", "LSTM", "RNN"}
RECURRENT_MODULES = {"GRU", "LSTM", "RNN"}


def test_catalog_and_registry_name_the_same_architectures():
    assert set(ARCHITECTURES) == set(CATALOG)
    assert set(FRONTEND_OBJECTS) == set(FRONTENDS)
    assert {f.frontend for f in CATALOG.values()} <= set(FRONTENDS)


@pytest.mark.parametrize("name", available_recipes())
def test_catalog_facts_match_the_built_model(name):
    r = load_recipe(name)
    params = {**r.dataset.params, **({"num_samples": 300} if r.dataset.name == "mnist1d" else {})}  # shapes only
    data = load_dataset(r.dataset.name, subset=200, params=params)
    model = build_model(r.model.arch, r.model.params, r.quant, data.input_shape, data.n_out)
    kinds = {type(m).__name__ for m in model.modules()}
    built_exact = r.quant.scaling == "power_of_two" and not kinds & INEXACT_MODULES
    assert (inexact_reasons(r.model.arch, r.model.params, r.quant.scaling) == []) == built_exact, kinds
    assert (CATALOG[r.model.arch].frontend == "pytorch") == bool(kinds & RECURRENT_MODULES), kinds
