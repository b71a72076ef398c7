"""Bad input: a one-line error naming what is wrong and what would be valid, exit 2, no traceback."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from fpgadl.ml.recipes import available_recipes
from tests.helpers import assert_one_line_error, run_cli


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A small exact MLP project from the default recipe's zoo builder (untrained is fine here)."""
    import torch

    from fpgadl import api
    from fpgadl.hls.export import export_qonnx_file
    from fpgadl.ml.recipes import load_recipe
    from fpgadl.zoo import build_model

    d = tmp_path_factory.mktemp("err")
    r = load_recipe("mlp-digits")
    torch.manual_seed(0)
    model = build_model("mlp", {"hidden": [8]}, r.quant, (64,), 10)
    model.train()
    with torch.no_grad():
        model(torch.rand(64, 64))
    export_qonnx_file(model.eval(), (64,), d / "m.onnx")
    api.hls(d / "m.onnx", out=d / "prj", warn=lambda m: None)
    return d


def test_unknown_recipe_lists_valid_names():
    proc = run_cli("run", "no-such-recipe")
    assert_one_line_error(proc, "unknown recipe 'no-such-recipe'", "mlp-digits")
    assert all(name in proc.stderr for name in available_recipes())


def test_recipe_name_cannot_escape_the_recipe_folder():
    assert_one_line_error(run_cli("run", "../pyproject"), "not a recipe name", "mlp-digits")


def test_unknown_board_lists_valid_names():
    proc = run_cli("run", "--board", "pynq-z9")
    assert_one_line_error(proc, "pynq-z9", "pynq-z2", "zcu104")


def test_debug_shows_the_traceback():
    proc = run_cli("run", "no-such-recipe", "--debug")
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_file_that_is_not_onnx(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_text("this is not a protobuf\n" * 10)
    assert_one_line_error(run_cli("hls", bad, "--out", tmp_path / "prj"), "not an ONNX model")
    assert not (tmp_path / "prj").exists()


def test_missing_external_weights(tmp_path, project):
    model = onnx.load(str(project / "m.onnx"))
    onnx.save_model(
        model,
        str(tmp_path / "ext.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="ext.onnx.data",
        size_threshold=0,
    )
    (tmp_path / "ext.onnx.data").unlink()
    proc = run_cli("hls", tmp_path / "ext.onnx", "--out", tmp_path / "prj")
    assert_one_line_error(proc, "external weights file is missing", "ext.onnx.data")


def test_op_hls4ml_cannot_take_names_op_and_node(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Erf", ["x"], ["y"], name="my_erf")], "g", [x], [y])
    path = tmp_path / "erf.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    assert_one_line_error(run_cli("hls", path, "--out", tmp_path / "prj"), "my_erf", "Erf", "supported:")


@pytest.mark.parametrize(
    "array, fragment",
    [
        (np.zeros((5, 63), np.float32), "shape (5, 63)"),
        (np.zeros((5, 8, 8), np.float32), "valid: (N, 64)"),
        (np.zeros((5, 64), np.int64), "dtype int64"),
        (np.full((5, 64), np.nan, np.float32), "NaN or Inf"),
        (np.array([[0.0] * 63 + [np.inf]], np.float32), "index (0, 63)"),
    ],
)
def test_bad_input_arrays(project, tmp_path, array, fragment):
    np.save(tmp_path / "x.npy", array)
    assert_one_line_error(run_cli("emulate", project / "prj", "--input", tmp_path / "x.npy"), fragment)


def test_input_that_is_not_npy(project, tmp_path):
    (tmp_path / "x.npy").write_text("1,2,3")
    assert_one_line_error(run_cli("emulate", project / "prj", "--input", tmp_path / "x.npy"), "not a .npy array")


def test_directory_that_is_not_a_project(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 64), np.float32))
    assert_one_line_error(run_cli("emulate", tmp_path, "--input", tmp_path / "x.npy"), "not an fpgadl HLS project")


def test_unknown_engine(project, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 64), np.float32))
    proc = run_cli("emulate", project / "prj", "--input", tmp_path / "x.npy", "--engine", "gpu")
    assert_one_line_error(proc, "unknown engine 'gpu'", "fast, csim, verilator")


def test_synth_without_vendor_tool_names_tool_and_project(project, tmp_path):
    proc = run_cli("hls", project / "m.onnx", "--out", tmp_path / "prj", "--synth", env={"PATH": "/usr/bin:/bin"})
    assert_one_line_error(proc, "vitis_hls", str(tmp_path / "prj"))
    assert (tmp_path / "prj" / "fpgadl.json").is_file()


def test_bare_part_without_resources_says_what_to_give(project, tmp_path):
    proc = run_cli("hls", project / "m.onnx", "--part", "xcku5p-ffvb676-2-e", "--out", tmp_path / "p")
    assert_one_line_error(proc, "xcku5p-ffvb676-2-e", "--resources lut=N,ff=N,dsp=N,bram18k=N")


def test_bare_part_with_resources_converts(project, tmp_path):
    import json

    proc = run_cli(
        "hls",
        project / "m.onnx",
        "--part",
        "xcku5p-ffvb676-2-e",
        "--out",
        tmp_path / "p",
        "--json",
        "--resources",
        "lut=216960,ff=433920,dsp=1824,bram18k=960",
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["part"] == "xcku5p-ffvb676-2-e"
    assert summary["board_spec"]["resources"]["dsp"] == 1824


def test_malformed_resources_option(project, tmp_path):
    proc = run_cli("hls", project / "m.onnx", "--part", "xcku5p", "--resources", "lut=lots", "--out", tmp_path / "p")
    assert_one_line_error(proc, "--resources", "NAME=INTEGER")


def test_out_below_a_file_is_a_usage_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory\n")
    proc = run_cli("run", "--epochs", "0", "--out", blocker / "sub")
    assert_one_line_error(proc, "--out", "cannot be a run directory")
    assert blocker.read_text() == "not a directory\n"


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--fit", "--target-latency", "-5"], "--target-latency -5"),
        (["--fit", "--target-ii", "0"], "--target-ii 0"),
        (["--reuse", "0"], "--reuse 0"),
        (["--strategy", "fastest"], "--strategy 'fastest'"),
        (["--io", "serial"], "--io 'serial'"),
        (["--fit", "--ceiling", "1.5"], "--ceiling 1.5"),
    ],
)
def test_bad_hls_options_name_the_flag(project, tmp_path, args, fragment):
    proc = run_cli("hls", project / "m.onnx", "--out", tmp_path / "prj", *args)
    assert_one_line_error(proc, fragment)
    assert not (tmp_path / "prj").exists()


def test_unsupported_layer_is_a_usage_error_not_internal(project, tmp_path, monkeypatch, capsys):
    """The fast engine refusing a layer of the user's model is exit 2 with the layer named, like any bad input."""
    import sys

    from fpgadl import api, cli
    from fpgadl.core.errors import UsageError
    from fpgadl.emulator.registry import UnsupportedLayerError

    class Layer:
        name, class_name = "mystery_0", "GarNet"

    assert issubclass(UnsupportedLayerError, UsageError)

    def refuse(*a, **k):
        raise UnsupportedLayerError(Layer(), "no kernel")

    np.save(tmp_path / "x.npy", np.zeros((2, 64), np.float32))
    monkeypatch.setattr(api, "emulate", refuse)
    monkeypatch.setattr(sys, "argv", ["fpgadl", "emulate", str(project / "prj"), "--input", str(tmp_path / "x.npy")])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1, err
    assert "'mystery_0' (GarNet)" in err[0] and "internal" not in err[0]


def test_negative_stress_count_names_the_flag(tmp_path):
    proc = run_cli("run", "--stress", "-1", "--out", tmp_path / "r")
    assert_one_line_error(proc, "--stress")
    assert not (tmp_path / "r").exists()
