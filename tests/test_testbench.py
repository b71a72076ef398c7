"""hls4ml's own test bench, fed by the fast engine: compiled with g++ (no vendor tool), zero mismatches."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from fpgadl.core.errors import CheckFailed
from fpgadl.hls.testbench import TB_INPUT, TB_OUTPUT, build_testbench, check_testbench


@pytest.fixture(scope="module")
def built(default_run, tmp_path_factory):
    hls = tmp_path_factory.mktemp("tb") / "hls"
    shutil.copytree(default_run[0] / "hls", hls)
    return hls, build_testbench(hls)


def test_tb_data_hold_the_fast_engines_outputs(default_run):
    from fpgadl import api

    hls = default_run[0] / "hls"
    x = np.loadtxt(hls / "tb_data" / TB_INPUT, dtype=np.float32, ndmin=2)
    expected = np.loadtxt(hls / "tb_data" / TB_OUTPUT, dtype=np.float32, ndmin=2)
    assert len(x) == 360 + 1000  # the test split plus 1,000 stress inputs
    assert np.array_equal(x[:360], np.load(default_run[0] / "data/x_test.npy"))
    assert np.array_equal(expected, api.emulate(hls, x))


def test_hls4ml_test_bench_reports_zero_mismatches(built):
    hls, exe = built
    result = check_testbench(hls, exe)
    assert result == {"outputs": 13600, "samples": 1360, "mismatches": 0, "exit_code": 0}


def test_test_bench_catches_one_lsb(built):
    hls, exe = built
    path = hls / "tb_data" / TB_OUTPUT
    rows = path.read_text().splitlines()
    values = rows[7].split()
    values[3] = f"{np.float32(float(values[3]) + 2.0**-12):.9g}"  # one LSB of the output type
    rows[7] = " ".join(values) + " "
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(CheckFailed, match=r"1 mismatches with the fast engine; fpgadl: MISMATCH sample 7 output 3"):
        check_testbench(hls, exe)
