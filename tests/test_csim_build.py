"""csim through the shared precompiled header (fpgadl/hls/csim_build.py): without the variable the build is
hls4ml's as written; with it, hls4ml's script builds the same library byte for byte, and g++ uses the header."""

from __future__ import annotations

import subprocess
from pathlib import Path

import hls4ml
import torch

from fpgadl.hls.csim_build import ENV_VAR, HEADER, compile_model, prepare_build


def _tiny_project(out: Path):
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU()).eval()
    config = hls4ml.utils.config_from_pytorch_model(module, [(4,)], backend="Vitis", default_precision="fixed<12,4>")
    return hls4ml.converters.convert_from_pytorch_model(
        module, output_dir=str(out), backend="Vitis", io_type="io_parallel", hls_config=config
    )


def _library(hls_model) -> bytes:
    stamp = hls_model.config.get_config_value("Stamp")
    return (Path(hls_model.config.get_output_dir()) / "firmware" / f"myproject-{stamp}.so").read_bytes()


def test_shared_header_builds_the_same_library_and_is_used(tmp_path, monkeypatch):
    project, cache = tmp_path / "prj", tmp_path / "pch"
    hls_model = _tiny_project(project)

    monkeypatch.delenv(ENV_VAR, raising=False)
    compile_model(hls_model)
    assert "-include" not in (project / "build_lib.sh").read_text()
    plain = _library(hls_model)

    # the same build, as hls4ml's script runs it once pointed at the header
    monkeypatch.setenv(ENV_VAR, str(cache))
    hls_model.write()
    header = prepare_build(project)
    assert header is not None and header.with_suffix(".h.gch").is_file() and header.parent.parent == cache
    assert f"-include {header}" in (project / "build_lib.sh").read_text()
    proc = subprocess.run(["bash", "build_lib.sh"], cwd=project, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # g++ names a precompiled header it cannot use: "<header>.gch: not used because `__OPTIMIZE__' ..."
    assert f"{HEADER}.gch:" not in proc.stdout + proc.stderr
    assert _library(hls_model) == plain
