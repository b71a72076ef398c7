"""fpgadl's own SimpleRNN template (hls4ml has none for Vivado/Vitis): it ships as package data, its C
simulation equals the fast engine bit for bit, and that comparison catches a template that rounds wrong.

A small Elman RNN (8 units over MNIST-1D's 20 x 2 steps) keeps the two csim compiles short; the zoo recipe
`rnn-mnist1d` runs the whole product path in tests/test_zoo.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fpgadl.core.options import HlsOptions
from fpgadl.core.resources import package_data
from fpgadl.flow.stages import stress_inputs
from fpgadl.hls import simple_rnn
from fpgadl.hls.engines import check_input, open_engine
from fpgadl.hls.pytorch_twin import convert_twin
from fpgadl.ml.datasets import load_dataset
from fpgadl.ml.recipes import QuantConfig
from fpgadl.zoo import build_model

# The state assignment of the kernel; the planted fault truncates where res_T rounds (RND_CONV).
STATE_LINE = "h_state[i] = (res_T)tmpres_h[i];"
TRUNCATED = "h_state[i] = (res_T)(ap_fixed<res_T::width, res_T::iwidth, AP_TRN, AP_SAT>)tmpres_h[i];"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    data = load_dataset("mnist1d", params={"layout": "sequence", "step_features": 2}, subset=600)
    torch.manual_seed(0)
    model = build_model("rnn", {"hidden": 8}, QuantConfig(), data.input_shape, data.n_out).eval()
    with torch.no_grad():  # calibrate the input and state quantizers on real data
        model(torch.from_numpy(data.x_train[:200]))
    hls_dir = tmp_path_factory.mktemp("simple-rnn") / "hls"
    meta = convert_twin(model, hls_dir, HlsOptions(), warn=lambda m: None)
    x = np.concatenate([data.x_test, stress_inputs(data.x_test, 2000)])
    x = check_input(x, meta, "inputs")
    with_fast = open_engine(hls_dir, "fast")
    try:
        fast = with_fast.predict(x)
    finally:
        with_fast.close()
    return hls_dir, x, fast


def csim(hls_dir, x) -> np.ndarray:
    engine = open_engine(hls_dir, "csim")
    try:
        return engine.predict(x)
    finally:
        engine.close()


def test_template_is_package_data():
    header = simple_rnn.header_path()
    assert header.is_file() and header.parent.parent == package_data("hls")
    assert header.read_text().count(STATE_LINE) == 1


def test_csim_equals_fast_engine(project):
    hls_dir, x, fast = project
    assert "simple_rnn_stack" in (hls_dir / "firmware" / "myproject.cpp").read_text()
    out = csim(hls_dir, x)
    assert len(x) > 2000 and np.isfinite(out).all() and np.abs(out).max() > 0
    assert np.array_equal(out, fast)


def test_wrong_rounding_in_the_template_is_caught(project, tmp_path, monkeypatch):
    hls_dir, x, fast = project
    wrong = tmp_path / simple_rnn.HEADER
    wrong.write_text(simple_rnn.header_path().read_text().replace(STATE_LINE, TRUNCATED))
    monkeypatch.setattr(simple_rnn, "header_path", lambda: wrong)
    try:
        out = csim(hls_dir, x)
    finally:
        monkeypatch.undo()
        simple_rnn.register_simple_rnn()  # the installed kernel again, for every later conversion
    assert np.isfinite(out).all()
    assert not np.array_equal(out, fast)
    assert (out != fast).any(axis=1).mean() > 0.5  # most samples differ: the fault is not a corner case
