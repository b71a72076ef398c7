"""Estimator rules on hand-computable layers, the fit search, and the hls4ml adapter."""

import itertools
import math
from types import SimpleNamespace

import numpy as np
import pytest

from fpgadl.core.boards import load_board
from fpgadl.estimate import (
    EstimateError,
    FitError,
    LayerSpec,
    dsp_per_product,
    estimate_layer,
    estimate_specs,
    fit,
    fit_specs,
    format_table,
    specs_from_hls_model,
    valid_reuse_factors,
)
from fpgadl.estimate.rules import KERNEL, SOFTMAX, bram18k_for

US = (27, 18)  # DSP48E2


def dense(n_in, n_out, bits=16, rf=1, strategy="latency", weights=None, name="fc"):
    return LayerSpec(
        name=name,
        kind=KERNEL,
        class_name="Dense",
        n_in=n_in,
        n_out=n_out,
        in_bits=bits,
        weight_bits=bits,
        accum_bits=2 * bits + 8,
        out_bits=bits,
        reuse_factor=rf,
        strategy=strategy,
        weights=weights,
    )


def test_dense_16x8_reuse_1_vs_4():
    full = estimate_layer(dense(16, 8), US, 5.0)
    assert (full.multipliers, full.dsp, full.ii_cycles, full.latency_cycles) == (128, 128, 1, 2)
    shared = estimate_layer(dense(16, 8, rf=4, strategy="resource"), US, 5.0)
    assert (shared.multipliers, shared.dsp, shared.ii_cycles) == (32, 32, 4)
    # a ROM 4 deep and 32*16 = 512 bits wide: 15 BRAM18K in 512x36 mode
    assert shared.bram18k == bram18k_for(4, 512) == 15
    assert shared.latency_cycles == 2 + 3 + 2  # base + (rf - 1) + resource-loop overhead


def test_dsp_width_rule():
    assert dsp_per_product(8, 16, US) == 0  # below 9 bits: LUTs
    assert dsp_per_product(9, 9, US) == 1
    assert dsp_per_product(27, 18, US) == 1
    assert dsp_per_product(26, 18, (25, 18)) == 2  # 7-series DSP48E1 is only 25x18
    assert dsp_per_product(32, 32, US) == 4
    eight = estimate_layer(dense(16, 8, bits=8), US, 5.0)
    assert (eight.multipliers, eight.dsp) == (128, 0)
    assert eight.lut > 0


def test_constant_weights_prune_zeros_and_shifts():
    codes = np.zeros((16, 8), dtype=np.int64)
    codes[:4] = 3  # 32 narrow constants: LUT shift-and-add
    codes[4:6] = 4  # 16 powers of two: shifts
    codes[6:8] = 300  # 16 constants of 10 signed bits: DSP
    est = estimate_layer(dense(16, 8, weights=codes), US, 5.0)
    assert est.multipliers == 32 + 16
    assert est.dsp_multipliers == 16
    assert est.dsp == 16
    # Resource strategy reads weights from a ROM: nothing is pruned
    res = estimate_layer(dense(16, 8, rf=2, strategy="resource", weights=codes), US, 5.0)
    assert (res.multipliers, res.dsp) == (64, 64)


def test_distributed_arithmetic_uses_the_rule_fitted_on_yosys_counts():
    """--strategy da: LUT = DA_LUT_PER_ADDER_BIT x unshared CSD adder bits (docs/rtl.md), no DSP."""
    from fpgadl.estimate.rules import DA, DA_LUT_PER_ADDER_BIT, da_adder_bits

    codes = np.array([[3, 1], [5, -7], [0, 300]])  # CSD digits: 3 = 4-1, 5 = 4+1, 7 = 8-1, 300 = 256+64-16-4
    spec = dense(3, 2, bits=8, strategy=DA, weights=codes)
    adds = (2 + 1 + 2 + 2 + 0 + 4) - 2  # one add per nonzero digit, less one per output
    width = 8 + 9 + 2  # input bits + widest code (300: 9 bits) + growth of a 3-term sum
    assert da_adder_bits(spec) == adds * width == 171
    est = estimate_layer(spec, US, 5.0)
    assert est.strategy == DA and est.dsp == est.dsp_multipliers == 0
    assert est.lut == round(DA_LUT_PER_ADDER_BIT * 171) == 62
    with pytest.raises(ValueError, match="'fc'.*weight values"):
        estimate_layer(dense(3, 2, bits=8, strategy=DA), US, 5.0)


def test_softmax_tables():
    sm = LayerSpec(
        name="sm", kind=SOFTMAX, n_in=5, n_out=5, in_bits=16, out_bits=16, table_size=1024, table_bits=18
    )
    # 3 dual-port exp tables for 5 lookups + 1 inverse table, each 1024x18 = one BRAM18K
    assert estimate_layer(sm, US, 5.0).bram18k == 4


def test_valid_reuse_factors_match_hls4ml():
    import hls4ml

    backend = hls4ml.backends.get_backend("Vitis")
    for n_in, n_out in [(16, 8), (64, 32), (784, 16), (32, 5)]:
        assert list(valid_reuse_factors(n_in, n_out)) == backend.get_valid_reuse_factors(n_in, n_out)


def mnist_mlp(bits=8):
    dims = (784, 256, 128, 10)
    return [dense(a, b, bits=bits, name=f"fc{i + 1}") for i, (a, b) in enumerate(itertools.pairwise(dims))]


def test_fit_784_256_128_10_on_pynq_z2():
    board = load_board("pynq-z2")
    specs = mnist_mlp()
    assert max(estimate_specs(specs, board).utilization(board).values()) > 1.0  # fully parallel: too big
    fitted, est = fit_specs(specs, board, ceiling=0.8)
    util = est.utilization(board)
    assert all(u <= 0.8 for u in util.values()), util
    config = fit(specs, board, ceiling=0.8)
    assert set(config) == {"fc1", "fc2", "fc3"}
    for spec in fitted:
        assert config[spec.name]["ReuseFactor"] == spec.reuse_factor
        assert spec.reuse_factor in valid_reuse_factors(spec.n_in, spec.n_out)
        assert config[spec.name]["Strategy"] == ("Resource" if spec.reuse_factor > 1 else "Latency")
    assert config["fc1"]["ReuseFactor"] > 1


def test_fit_impossible_ii_names_layer_and_resource():
    board = load_board("pynq-z2")
    with pytest.raises(FitError) as exc:
        fit(mnist_mlp(), board, target_ii=1)
    msg = str(exc.value)
    assert "layer 'fc1'" in msg and "lut needs" in msg and "over" in msg and "\n" not in msg


def test_fit_impossible_latency():
    board = load_board("pynq-z2")
    with pytest.raises(FitError, match="latency target 5 cycles not met"):
        fit(mnist_mlp(), board, target_latency_cycles=5)


def test_fit_small_model_stays_parallel():
    board = load_board("zcu102")
    assert fit([dense(16, 8, bits=8)], board) == {"fc": {"ReuseFactor": 1, "Strategy": "Latency"}}


@pytest.fixture(scope="module")
def hls_mlp(tmp_path_factory):
    import contextlib
    import io

    import hls4ml
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4)).eval()
    with contextlib.redirect_stdout(io.StringIO()):
        cfg = hls4ml.utils.config_from_pytorch_model(
            model, (16,), granularity="name", backend="Vitis", default_precision="fixed<16,6>"
        )
        hm = hls4ml.converters.convert_from_pytorch_model(
            model,
            hls_config=cfg,
            output_dir=str(tmp_path_factory.mktemp("prj")),
            backend="Vitis",
            part="xc7z020clg400-1",
            clock_period=10,
            io_type="io_parallel",
        )
    return hm


def test_hls4ml_model_estimate(hls_mlp):
    from fpgadl.estimate import estimate

    board = load_board("pynq-z2")
    specs = specs_from_hls_model(hls_mlp)
    first = next(s for s in specs if s.kind == KERNEL)
    assert (first.n_in, first.n_out, first.in_bits, first.weight_bits) == (16, 8, 16, 16)
    codes = first.weights
    assert np.array_equal(codes, np.rint(hls_mlp.graph[first.name].weights["weight"].data * 2**10))
    expected = sum(1 for c in codes.ravel() if c != 0 and abs(c) & (abs(c) - 1) != 0)
    est = estimate(hls_mlp, board)
    assert est.layers[[s.name for s in specs].index(first.name)].multipliers == expected
    assert est.clock_period_ns == 10.0
    assert set(est.to_dict()) >= {"layers", "total", "latency_cycles", "ii_cycles"}
    table = format_table(est, board)
    assert "**total**" in table and "available (pynq-z2)" in table
    assert table.count("\n") == len(specs) + 5
    config = fit(hls_mlp, board)
    assert all(v == {"ReuseFactor": 1, "Strategy": "Latency"} for v in config.values()) and len(config) == 2


def test_unknown_layer_class_is_an_error():
    from fpgadl.estimate.hls import layer_spec

    fake = SimpleNamespace(name="mystery", class_name="GarNet", get_attr=lambda k, d=None: d)
    with pytest.raises(EstimateError, match="layer 'mystery' has class GarNet"):
        layer_spec(fake, "io_parallel")


def test_utilization_fractions():
    board = load_board("pynq-z2")
    est = estimate_specs([dense(16, 8)], board)
    util = est.utilization(board)
    assert util["dsp"] == pytest.approx(est.total["dsp"] / 220)
    assert math.isclose(est.latency_ns, est.latency_cycles * 10.0)
