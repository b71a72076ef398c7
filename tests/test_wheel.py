"""fpgadl installs as a package: the wheel carries the recipes, boards and HLS sources it needs.

The wheel is built from this checkout and installed (not editable) into a fresh virtual environment that
borrows the already-installed dependencies; the commands then run from a directory outside the checkout,
so nothing can be found through the source tree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _run(cmd: list[str], cwd: Path, code: int = 0, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == code, (cmd, proc.stdout[-2000:], proc.stderr[-2000:])
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """bin/ of a fresh venv with fpgadl's wheel installed and the dependencies borrowed."""
    root = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(root), str(REPO)], root)
    (wheel,) = root.glob("fpgadl-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], root)
    site = next((venv / "lib").glob("python3*/site-packages"))
    # The dependencies come from this interpreter's site-packages as a plain path entry: its .pth files
    # (the editable install of the checkout among them) are not processed, so fpgadl is the wheel's.
    (site / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps", str(wheel)],
        root,
    )
    return venv / "bin"


def test_the_wheel_carries_recipes_boards_and_hls_sources(installed, tmp_path):
    where = _run([str(installed / "python"), "-c", "import fpgadl; print(fpgadl.__file__)"], tmp_path).stdout
    pkg = Path(where.strip()).parent
    assert "site-packages" in str(pkg) and REPO not in pkg.parents
    for folder in ("quantize", "boards", "hls"):
        data = pkg / "_data" / folder
        assert data.is_dir() and not data.is_symlink(), data
    assert (pkg / "_data" / "quantize" / "mlp-digits.yaml").is_file()
    assert (pkg / "_data" / "hls" / "harness" / "fixed_harness.h").is_file()


def test_boards_zoo_and_a_run_from_outside_the_checkout(installed, tmp_path):
    boards = json.loads(_run([str(installed / "fpgadl"), "boards", "--json"], tmp_path).stdout)
    assert "pynq-z2" in {b["name"] for b in boards}
    zoo = json.loads(_run([str(installed / "fpgadl"), "zoo", "--json"], tmp_path).stdout)
    assert {r["recipe"] for r in zoo} == {p.stem for p in (REPO / "quantize").glob("*.yaml")}
    # An untrained model runs every stage and is exact at every one; only its accuracy floor fails (exit 1).
    out = tmp_path / "run"
    cmd = [str(installed / "fpgadl"), "run", "--epochs", "0", "--engine", "fast", "--out", str(out), "--json"]
    _run(cmd, tmp_path, code=1)
    report = json.loads((out / "report.json").read_text())
    assert report["recipe"] == "mlp-digits"
    failed = [c["name"] for c in report["checks"] if not c["passed"]]
    assert len(failed) == 1 and "meets the floor" in failed[0], failed
    assert [c["passed"] for c in report["checks"] if "==" in c["name"]] == [True, True, True]
