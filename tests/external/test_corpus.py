"""Issue 9's guarantee on models fpgadl's authors did not write (tests/external/corpus.py).

Every corpus model except the heavy ones (SFC/LFC: TFC's layers at widths 256/1024; CNV 1W2A/2W2A: CNV
1W1A's layers; benchmarks/byom.py runs them all, see docs/byom.md) is exported with
`export_qonnx(..., dynamo=False)`, converted with `fpgadl.api.hls` and emulated by the fast engine on
generated inputs (off-grid, exact ties, out of range, on grid, typical) against torch. Asserted per model:
never "claims exact but differs", never an internal error, and the class the issue requires (exact,
exact except float32 rounding, twin-only with a reason, refused naming the op). The default (dynamo)
export runs on a few models; hls4ml's csim runs on a representative few and must equal the fast engine.
Conversions are shared by all assertions through a session-scope cache.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings

import pytest

from tests.external.corpus import CORPUS
from tests.external.runner import FAILURES, Outcome, run_entry

# One xdist worker runs the whole corpus, so each model is converted once (module-scope cache).
pytestmark = pytest.mark.xdist_group("corpus")

ROWS = 250  # 50 per input set: ties and out-of-range rows are where wrong types show
CSIM_ROWS = 12  # per input set; csim's g++ build dominates its cost
IN_TEST = [e for e in CORPUS if "heavy" not in e.tags]
# One of each risk csim must agree on: binary layers + TensorNorm, a +-784 accumulator, a residual merge,
# an activation-only project (must compile).
CSIM_MODELS = ("bnn_pynq-tfc-1w1a", "bipolar-784", "residual-cnn", "activation-only")
DYNAMO_MODELS = ("mlp-no-bias", "cnn-float-bias")  # TFC under dynamo: benchmarks/byom.py (90 s here)
ACCEPTED = {
    "exact": ("exact",),
    "exact-except-float32": ("exact", "exact-except-float32"),
    "twin-only": ("exact", "exact-except-float32", "twin-only"),
    "refused": ("refused", "exact", "exact-except-float32", "twin-only"),
}


# What still fails (a strict xfail each: a fix that makes one pass fails the suite until it is taken off this
# list). None of them may be "claims exact but differs": that test has no entry here. Empty since session 5.
KNOWN: dict[tuple[str, str], str] = {}


def _known(test: str, names) -> list:
    return [
        pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=KNOWN[test, n])) if (test, n) in KNOWN else n
        for n in names
    ]


# Session scope: xdist interleaves other modules' tests on the corpus worker, and a module-scope fixture
# would be rebuilt (and every model converted again) at each switch.
@pytest.fixture(scope="session")
def outcome(tmp_path_factory):
    # torch's dynamo exporter logs every traced op at DEBUG; a failing assertion should show the outcome only
    logging.getLogger("torch").setLevel(logging.WARNING)
    root = tmp_path_factory.mktemp("corpus")
    cache: dict[tuple[str, str], Outcome] = {}
    by_name = {e.name: e for e in CORPUS}

    def get(name: str, variant: str = "ts") -> Outcome:
        if (name, variant) not in cache:
            csim = CSIM_ROWS if name in CSIM_MODELS and variant == "ts" else 0
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cache[name, variant] = run_entry(by_name[name], variant, root, n=ROWS, csim_rows=csim)
        return cache[name, variant]

    return get


def _say(o: Outcome) -> str:
    return (
        f"{o.model} [{o.export}]: {o.klass} (tool claims {o.claim}); torch==fast {o.torch_fast}/{o.rows} rows; "
        f"{o.detail}; first divergent: {o.first_divergent}"
    )


@pytest.mark.parametrize("name", [e.name for e in IN_TEST])
def test_never_claims_exact_when_it_differs(outcome, name):
    o = outcome(name)
    assert o.klass != "CLAIMS-EXACT-BUT-DIFFERS", _say(o)


@pytest.mark.parametrize("name", _known("internal", [e.name for e in IN_TEST]))
def test_no_internal_error(outcome, name):
    o = outcome(name)
    assert o.klass not in ("internal-error", "export-error"), _say(o)


@pytest.mark.parametrize("name", _known("class", [e.name for e in IN_TEST]))
def test_reaches_the_required_class(outcome, name):
    o = outcome(name)
    assert o.klass in ACCEPTED[o.expect], f"required {o.expect}: " + _say(o)
    if o.klass == "exact":
        assert o.torch_fast == o.rows > 0, _say(o)
    if o.klass == "refused":
        entry = next(e for e in CORPUS if e.name == name)
        assert entry.refuse_word in o.detail, f"the refusal must name {entry.refuse_word!r}: " + _say(o)


@pytest.mark.parametrize("name", CSIM_MODELS)
def test_fast_equals_csim(outcome, name):
    o = outcome(name)  # whatever the class: the twin must equal the C simulation wherever both run
    assert o.csim_rows == 5 * CSIM_ROWS, f"csim did not run: {_say(o)}"
    assert o.fast_csim is not None, f"the fast engine did not run: {_say(o)}"
    assert o.fast_csim == o.csim_rows, _say(o)  # runner: np.array_equal on the csim rows


@pytest.mark.parametrize("name", DYNAMO_MODELS)
def test_default_dynamo_export_converts_like_torchscript(outcome, name):
    o, ts = outcome(name, "dynamo"), outcome(name)
    assert o.klass not in FAILURES and o.klass != "refused", _say(o)
    assert (o.klass, o.torch_fast) == (ts.klass, ts.torch_fast), f"{_say(o)} vs {_say(ts)}"


# bnn_pynq's `x.view(x.shape[0], -1)` traced at batch 4 is a Reshape to the constant (4, -1)
@pytest.mark.parametrize("name", ["cnn-int16-bias", "bnn_pynq-tfc-1w1a"])
def test_batch_of_four_export_converts_like_batch_of_one(outcome, name):
    o, ts = outcome(name, "ts-b4"), outcome(name)
    assert o.klass not in FAILURES and o.klass != "refused", _say(o)
    assert (o.klass, o.torch_fast) == (ts.klass, ts.torch_fast), f"{_say(o)} vs {_say(ts)}"


@pytest.mark.parametrize("name", _known("tfc", ["bnn_pynq-tfc-1w1a", "bnn_pynq-tfc-1w2a", "bnn_pynq-tfc-2w2a"]))
def test_bnn_pynq_tfc_is_exact(outcome, name):
    o = outcome(name)
    assert o.klass == "exact" and o.claim == "exact" and o.torch_fast == o.rows, _say(o)
    assert set(o.per_set.values()) == {1.0}, o.per_set
