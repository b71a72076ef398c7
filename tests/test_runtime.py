"""The deployment bundle and the host runtime: Device(bundle, "emulated") packs floats into AXI words the way
the board's driver must, runs them through the fast engine, and equals `fpgadl emulate` bit for bit."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from helpers import REPO, assert_one_line_error, run_cli

from fpgadl.core.errors import ToolUnavailable, UsageError
from fpgadl.flow.stages import stress_inputs
from fpgadl.runtime import Device, axi
from fpgadl.runtime.bundle import MANIFEST, load_manifest


@pytest.fixture(scope="module")
def device(default_bundle):
    return Device(default_bundle, "emulated")


@pytest.fixture(scope="module")
def inputs(default_run):
    x = np.load(default_run[0] / "data/x_test.npy")
    return x, stress_inputs(x)  # 10,000 inputs up to 8x outside the range


def test_bundle_layout_and_manifest(default_bundle):
    m = load_manifest(default_bundle)
    assert m["backend"] == "VivadoAccelerator" and m["interface"] == "axi_stream" and m["clock_mhz"] == 100.0
    inp, out = m["ports"]["in"], m["ports"]["out"]
    assert (inp.type, inp.word_bits, inp.elements) == ("ap_fixed<8,1,AP_RND_CONV,AP_SAT,0>", 8, 64)
    assert out.word_bits in (8, 16, 32, 64) and out.word_bits >= out.fixed().width and out.elements == 10
    acc = default_bundle / "accelerator"
    header = (acc / "firmware/myproject_axi.h").read_text()
    assert f"typedef {out.axi_type} T_out;" in header  # hls4ml's type, in C++ spelling (hls4ml writes `fixed<`)
    tcl = (acc / "project.tcl").read_text()  # hls4ml 1.3 swaps these; the bundle has them right
    assert f"set bit_width_hls_input {inp.word_bits}\n" in tcl and f"set bit_width_hls_output {out.word_bits}\n" in tcl
    assert (default_bundle / "build.sh").is_file() and (default_bundle / "host/run.py").is_file()


@pytest.mark.parametrize("split", [0, 1], ids=["test-split", "10k-stress"])
def test_device_equals_fpgadl_emulate_bit_for_bit(device, default_run, inputs, split):
    from fpgadl import api

    x = inputs[split]
    y = device.predict(x)
    assert y.dtype == np.float32 and len(y) == len(x) >= 360
    assert np.array_equal(y, api.emulate(default_run[0], x, engine="fast"))


def test_swapped_word_order_is_caught(device, default_run, inputs, monkeypatch):
    """A host that sends the words of each sample pairwise swapped must not match: packing is really tested."""
    from fpgadl import api

    x = inputs[0][:64]
    good = api.emulate(default_run[0], x)
    pack = axi.pack_words

    def swapped(m, port):
        words = pack(m, port).reshape(len(m), port.elements // 2, 2, port.word_bytes)
        return (words[:, :, ::-1] if port.name == "in" else words).reshape(-1)

    monkeypatch.setattr(axi, "pack_words", swapped)
    bad = device.predict(x)
    assert not np.array_equal(bad, good)
    assert np.mean(np.all(bad == good, axis=1)) < 0.5


def test_pack_unpack_round_trip_signed_words():
    from fpgadl.emulator.fixed import FixedType

    port = axi.make_port("out", FixedType(22, 10, True, "TRN", "WRAP"), [3])
    m = np.array([[-(2**21), 2**21 - 1, -1], [0, 1, -2]], dtype=np.int64)
    buf = axi.pack_words(m, port)
    assert buf.dtype == np.uint8 and buf.size == 6 * 4
    assert np.array_equal(axi.unpack_words(buf, port, 2), m << 10)  # 32-bit words: 10 more fractional bits
    assert not np.array_equal(axi.unpack_words(buf.reshape(-1, 4)[:, ::-1].reshape(-1), port, 2), m << 10)


def test_wrong_shape_to_device_names_the_shape(device):
    with pytest.raises(UsageError, match=r"shape \(5, 63\) does not match the model input; valid: \(N, 64\)"):
        device.predict(np.zeros((5, 63), np.float32))


def test_pynq_backend_says_what_is_missing(default_bundle):
    with pytest.raises(ToolUnavailable, match="backend 'pynq' needs the pynq package"):
        Device(default_bundle, "pynq")


def test_corrupt_bundle_is_a_clear_error(default_bundle, tmp_path):
    bad = tmp_path / "bundle"
    shutil.copytree(default_bundle, bad)
    meta = bad / "project/fpgadl.json"
    meta.write_text(meta.read_text().replace("RND_CONV", "TRN"))  # altered firmware description
    with pytest.raises(UsageError, match=r"corrupt bundle \(project/fpgadl.json is missing or altered\)"):
        Device(bad)
    (bad / MANIFEST).write_text(json.dumps({"format": "fpgadl-bundle/1"}))
    proc = subprocess.run(
        [sys.executable, "-m", "fpgadl.runtime", str(bad), "--input", str(tmp_path / "x.npy")],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert_one_line_error(proc, "corrupt bundle manifest")


def test_package_unsupported_board_exits_2(default_run, tmp_path):
    proc = run_cli("package", default_run[0], "--board", "zcu104", "--out", tmp_path / "b")
    assert_one_line_error(proc, "--board zcu104", "valid: alveo-u250", "pynq-z2", "zcu102")
    assert not (tmp_path / "b").exists()


def test_runtime_entry_point_writes_outputs(default_bundle, default_run, tmp_path):
    x = np.load(default_run[0] / "data/x_test.npy")[:50]
    np.save(tmp_path / "x.npy", x)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fpgadl.runtime",
            str(default_bundle),
            "--input",
            str(tmp_path / "x.npy"),
            "--output",
            str(tmp_path / "y.npy"),
            "--backend",
            "emulated",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    from fpgadl import api

    assert np.array_equal(np.load(tmp_path / "y.npy"), api.emulate(default_run[0], x))
