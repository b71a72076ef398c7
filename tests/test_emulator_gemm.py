"""The dense/conv arithmetic paths of the fast engine against a Python-integer reference.

``DenseArithmetic`` picks its path from bounds known from the types: one float32 GEMM (every
partial sum below 2**23), one float64 GEMM (below 2**52), an int64 GEMM beyond that, and the
per-product path when products are rounded onto a coarser accumulator.  Each is run here right at
its boundary, with inputs at the type's extremes so the sums really reach it, and compared with
exact equality against the firmware's arithmetic written out in Python ints and ``fixed.cast``.
"""

from __future__ import annotations

import numpy as np
import pytest

from fpgadl.emulator import fixed
from fpgadl.emulator.fastfixed import float_cast_ok, round_saturate_float
from fpgadl.emulator.fixed import FixedType
from fpgadl.emulator.kernels_dense import (
    DenseArithmetic,
    _conv_plans,
    _float_conv_core,
    _row_folded_core,
    _strided_conv_core,
    im2col_index,
    to_int64,
)


class _Layer:
    """The two attributes DenseArithmetic reads from an hls4ml layer."""

    name = "dense"
    class_name = "Dense"

    def get_attr(self, key, default=None):
        return {"config_cpp": "nnet::product::mult<x_t, w_t>::product", "strategy": "latency"}.get(key, default)


def _reference(x, w, p_frac, b_acc, accum_t, res_t):
    """acc = (accum_t) bias; acc += (accum_t)(x_i * w_ij), assigned every step; (res_t) acc."""
    acc = b_acc[None, :].repeat(len(x), axis=0)
    for i in range(w.shape[0]):
        prod = x[:, i : i + 1].astype(object) * w[i][None, :].astype(object)
        q = np.array([[int(v) for v in row] for row in prod], dtype=np.int64) if prod.size else prod
        acc = fixed.cast(acc + fixed.cast(q, p_frac, accum_t), accum_t.frac, accum_t)
    return fixed.cast(acc, accum_t.frac, res_t)


def _extreme_inputs(x_t: FixedType, n_in: int, n: int = 64) -> np.ndarray:
    rng = np.random.default_rng(n_in)
    x = rng.integers(x_t.min_mantissa, x_t.max_mantissa, (n, n_in), endpoint=True)
    x[0], x[1], x[2] = x_t.min_mantissa, x_t.max_mantissa, 0
    x[3, ::2], x[3, 1::2] = x_t.min_mantissa, x_t.max_mantissa
    return x


def _arith(x_bits, w, b, accum_t, res_t, w_frac=3):
    x_t = FixedType(x_bits, 4)
    w_t = FixedType(x_bits + 2, x_bits + 2 - w_frac)
    b_t = FixedType(62, 62 - (x_t.frac + w_frac))
    return DenseArithmetic(_Layer(), x_t, w, w_t, b, b_t, accum_t, res_t), x_t


@pytest.mark.parametrize(
    ("x_bits", "colsum", "bias", "path"),
    [
        (12, 2**12 - 1, 2**11 - 1, "float32"),  # bound 2**23 - 1: the last float32 sum
        (12, 2**12, 0, "float64"),  # bound 2**23
        (27, 2**26 - 1, 2**26 - 1, "float64"),  # bound 2**52 - 1: the last float64 sum
        (27, 2**26, 0, "int64"),  # bound 2**52: int64 accumulation (float64 GEMM, sums < 2**53)
        (27, 2**27, 0, "int64"),  # bound 2**53: int64 GEMM
    ],
)
@pytest.mark.parametrize("res", ["ap_fixed<20,12,AP_RND_CONV,AP_SAT>", "ap_fixed<18,9,AP_RND,AP_WRAP>"])
def test_gemm_paths_at_their_boundaries(x_bits, colsum, bias, path, res):
    x_t = FixedType(x_bits, 4)
    xmax = -x_t.min_mantissa
    # three inputs, every column's |w| summing to `colsum`, signs mixed, so x at the extremes reaches it
    parts = np.array([colsum // 2, colsum // 4, colsum - colsum // 2 - colsum // 4], dtype=np.int64)
    w = parts[:, None] * np.array([[1, -1, 1], [1, 1, -1], [-1, 1, 1]], dtype=np.int64)
    assert (np.abs(w).sum(axis=0) == colsum).all()
    p_frac = x_t.frac + 3
    accum_t = FixedType(60, 60 - p_frac)  # never overflows: every assignment is exact
    res_t = FixedType.parse(res)
    res_t = FixedType(res_t.width, res_t.width - (p_frac - 13), True, res_t.rounding, res_t.saturation)
    b = np.array([bias, -bias, bias // 3], dtype=np.int64)
    arith, _ = _arith(x_bits, w, b, accum_t, res_t)
    assert xmax * colsum + bias == xmax * colsum + int(np.abs(arith.b_acc).max())
    chosen = np.dtype(arith.float_plan[0]).name if arith.float_plan else "int64"
    assert chosen == path
    x = _extreme_inputs(x_t, 3)
    got = arith(x)
    assert np.array_equal(got, _reference(x, w, p_frac, arith.b_acc, accum_t, res_t))


@pytest.mark.parametrize(
    "res",
    [
        "ap_ufixed<8,3,AP_RND_CONV,AP_SAT>",  # a ReLU's output type: 6 bits dropped
        "ap_fixed<10,12,AP_RND,AP_SAT_SYM>",  # 13 bits dropped, ties up, symmetric saturation
        "ap_fixed<12,11,AP_TRN,AP_WRAP>",  # 1 bit dropped, wrapping
    ],
)
def test_power_of_two_folded_into_the_float_weights(res):
    """float_kernel's prescale: a fused activation's 2**-shift folded into the weights and bias; the float32
    GEMM at its last exact sum (2**23 - 1), then the rounding and saturation alone, equals the firmware's
    arithmetic (Python ints and fixed.cast, the bit-level port of ap_fixed)."""
    colsum, bias = 2**12 - 1, 2**11 - 1
    parts = np.array([colsum // 2, colsum // 4, colsum - colsum // 2 - colsum // 4], dtype=np.int64)
    w = parts[:, None] * np.array([[1, -1, 1], [1, 1, -1], [-1, 1, 1]], dtype=np.int64)
    b = np.array([bias, -bias, bias // 3], dtype=np.int64)
    p_frac = 12 - 4 + 3
    accum_t = FixedType(40, 40 - p_frac)  # the sum is the result: no cast after the GEMM
    arith, x_t = _arith(12, w, b, accum_t, accum_t)
    dtype, casts, bound = arith.float_plan
    assert dtype == np.float32 and not casts and bound == 2**23 - 1
    t = FixedType.parse(res)
    shift = accum_t.frac - t.frac
    assert 0 < shift < 60 and float_cast_ok(bound, accum_t.frac, t, np.float32)
    x = _extreme_inputs(x_t, 3, 300)
    got = round_saturate_float(arith.call_float(x, 2.0**-shift), shift, t)
    assert got.dtype == np.float32
    assert np.array_equal(to_int64(got), _reference(x, w, p_frac, arith.b_acc, accum_t, t))


def test_wrapping_accumulator_float_epilogue():
    """A narrow WRAP accumulator (overflow does act) wraps in the float epilogue exactly like int64."""
    x_t = FixedType(8, 3)
    rng = np.random.default_rng(0)
    w = rng.integers(-128, 128, (40, 16))
    accum_t = FixedType(12, 12 - (x_t.frac + 6))  # far narrower than the sums
    res_t = FixedType(8, 2, True, "RND_CONV", "SAT")
    arith = DenseArithmetic(
        _Layer(), x_t, w, FixedType(8, 2), rng.integers(-100, 100, 16), FixedType(16, 4), accum_t, res_t
    )
    assert arith.float_plan is not None and not arith.accum_identity
    x = _extreme_inputs(x_t, 40, 200)
    assert np.array_equal(arith(x), _reference(x, w, x_t.frac + 6, arith.b_acc, accum_t, res_t))


@pytest.mark.parametrize("divisible", [True, False])
def test_products_rounded_onto_a_coarser_wrapping_accumulator(divisible):
    """shift < 0: per-product truncation, or one exact GEMM when the batch's data make it a no-op."""
    x_t = FixedType(32, 12)  # 20 fractional bits, like a recurrent layer's port
    rng = np.random.default_rng(1)
    w = rng.integers(-128, 128, (24, 12))
    w_t = FixedType(8, 1)  # 7 fractional bits dropped by every product
    accum_t = FixedType(32, 12)
    arith = DenseArithmetic(_Layer(), x_t, w, w_t, rng.integers(-99, 99, 12), FixedType(16, 6), accum_t, accum_t)
    assert not arith.fast and arith.shift == -7
    x = rng.integers(-(2**31), 2**31, (50, 24))
    if divisible:
        x = (x >> 16) << 16  # 8-bit data in the 32-bit port
    assert (arith._modular_exact(x) is not None) == divisible
    assert np.array_equal(arith(x), _reference(x, w, x_t.frac + 7, arith.b_acc, accum_t, accum_t))


@pytest.mark.parametrize(
    ("in_shape", "kernel", "stride", "pads"),
    [
        ((9, 3), (3,), (2,), ((1, 1),)),  # Conv1D, folded weights
        ((40, 25), (5,), (2,), ((2, 2),)),  # wide input: gathered patches
        ((8, 8, 8), (3, 3), (1, 1), ((1, 1), (1, 1))),  # Conv2D, folded (6 filters: the cost model folds)
        ((5, 5, 2), (3, 3), (2, 2), ((0, 1), (1, 0))),  # Conv2D, folded, asymmetric padding
    ],
)
def test_float_conv_cores_equal_the_patch_reference(in_shape, kernel, stride, pads):
    arith, idx, x, want = _conv_case(in_shape, kernel, stride, pads)
    core = _float_conv_core(arith, idx, int(np.prod(in_shape)))
    assert np.array_equal(to_int64(core(x)), want)


def _conv_case(in_shape, kernel, stride, pads):
    """A convolution's dense arithmetic (8-bit unsigned inputs, wide enough accumulator), its im2col index,
    30 inputs and the expected outputs from the per-patch reference."""
    x_t = FixedType(8, 2, False)
    idx, _ = im2col_index(in_shape, kernel, stride, pads)
    patch = idx.shape[1]
    rng = np.random.default_rng(patch)
    w = rng.integers(-128, 128, (patch, 6))
    accum_t = FixedType(24, 24 - (x_t.frac + 7))
    arith = DenseArithmetic(
        _Layer(), x_t, w, FixedType(8, 1), rng.integers(-99, 99, 6), FixedType(16, 6), accum_t, accum_t
    )
    x = rng.integers(0, 256, (30, *in_shape))
    cols = np.where(idx < 0, 0, x.reshape(30, -1)[:, np.where(idx < 0, 0, idx)]).reshape(-1, patch)
    want = _reference(cols, w, x_t.frac + 7, arith.b_acc, accum_t, accum_t).reshape(30, -1)
    return arith, idx, x, want


@pytest.mark.parametrize(
    ("k", "wmax", "n_in", "dtype"),
    [
        (8, 128, 64, "int16"),  # (2**8 - 1) * 128 = 32640 products: the int16 path (an LSTM's recurrent product)
        (8, 129, 64, "int32"),  # 32895 no longer fits int16
        (1, 127, 258, "int16"),  # column sums up to 258 * 127 = 32766: still int16
        (1, 127, 259, "int32"),  # 32893: int32
        (20, 2**10, 8, "int32"),  # products up to 2**30
        (26, 2**6, 4, None),  # products beyond int32: the per-product int64 path
    ],
)
def test_split_per_product_truncation_at_its_dtype_boundaries(k, wmax, n_in, dtype):
    """A wrapping accumulator `k` bits coarser than the products: hi * w GEMM + narrow-int floor(lo * w / 2**k)."""
    x_t = FixedType(32, 12)
    rng = np.random.default_rng(k)
    w = rng.integers(-wmax, wmax + 1, (n_in, 7))
    w[0, 0], w[1, 1] = wmax, -wmax
    w_t = FixedType(24, 24 - k)  # products carry k fractional bits more than accum_t
    accum_t = FixedType(32, 12)
    arith = DenseArithmetic(_Layer(), x_t, w, w_t, rng.integers(-99, 99, 7), FixedType(16, 6), accum_t, accum_t)
    assert arith.shift == -k and not arith.fast
    assert (np.dtype(arith._split_dtype).name if arith._split_dtype else None) == dtype
    x = _extreme_inputs(x_t, n_in, 40)
    x[4:8] = x[4:8] | ((1 << k) - 1)  # the largest low parts
    assert arith._modular_exact(x) is None
    assert np.array_equal(arith(x), _reference(x, w, x_t.frac + k, arith.b_acc, accum_t, accum_t))


@pytest.mark.parametrize(
    ("k", "n_in", "x_bits", "lanes"),
    [
        (8, 64, 32, "uint8"),  # an LSTM's recurrent product: residues mod 2**8 straight from the uint8 multiply
        (3, 9, 32, "uint8"),  # k narrower than the lanes: masked; an odd number of inputs
        (8, 257, 32, "uint8"),  # residue sums up to 257 * 255 = 65535: the last that uint16 holds
        (8, 258, 32, None),  # 65790: the split path
        (12, 5, 32, "uint16"),  # uint16 lanes, masked
        (16, 7, 32, "uint16"),
        (8, 64, 22, "uint8"),  # a narrow state: every sum provably inside accum_t, no wrap pass
        (8, 3, 53, None),  # x @ w beyond float64's exact integers: the split path
        (20, 7, 32, None),  # k > 16: the split path, its hi @ w (sums < 2**24) in float32
    ],
)
def test_per_product_truncation_as_gemm_minus_residues(k, n_in, x_bits, lanes):
    """floor(x * w / 2**k) summed as (x @ w - sum of (x * w) mod 2**k) / 2**k, residues from an unsigned
    multiply of the low bits, at its dtype boundaries, against the firmware's arithmetic in Python ints."""
    x_t = FixedType(x_bits, x_bits - 20)
    rng = np.random.default_rng(k + n_in)
    w = rng.integers(-128, 129, (n_in, 7))
    w[0, 0], w[1, 1] = 128, -128
    accum_t = FixedType(32, 12)
    arith = DenseArithmetic(
        _Layer(), x_t, w, FixedType(24, 24 - k), rng.integers(-99, 99, 7), FixedType(16, 6), accum_t, accum_t
    )
    assert arith.shift == -k and not arith.fast
    assert (np.dtype(arith._residue_lanes).name if arith._residue_lanes else None) == lanes
    x = _extreme_inputs(x_t, n_in, 40)
    x[4:8] = x[4:8] | ((1 << k) - 1)  # the largest low parts
    assert arith._modular_exact(x) is None
    want = _reference(x, w, x_t.frac + k, arith.b_acc, accum_t, accum_t)
    assert np.array_equal(arith(x), want)
    if lanes:
        assert np.array_equal(arith.residue_kernel()(x), want)


@pytest.mark.parametrize(
    ("in_shape", "kernel", "stride", "pads"),
    [
        ((40, 25), (5,), (2,), ((2, 2),)),  # Conv1D, strided, padded (the MNIST-1D recipe's)
        ((9, 3), (3,), (1,), ((0, 0),)),  # no padding: the input itself is viewed
        ((8, 8, 8), (3, 3), (1, 1), ((1, 1), (1, 1))),  # Conv2D (VGG's)
        ((7, 6, 2), (3, 2), (2, 3), ((0, 1), (2, 0))),  # asymmetric everything
    ],
)
def test_strided_conv_core_equals_the_patch_reference(in_shape, kernel, stride, pads):
    arith, _, x, want = _conv_case(in_shape, kernel, stride, pads)
    core = _strided_conv_core(arith, in_shape, kernel, stride, pads)
    assert np.array_equal(to_int64(core(x)), want)
    assert np.array_equal(to_int64(core(x.astype(np.float32))), want)  # float mantissas from a float producer


@pytest.mark.parametrize(("colsum", "bias", "path"), [(2**12 - 1, 2**12 - 1, "float32"), (2**12, 0, "float64")])
def test_gemm_without_casts_uses_float32_up_to_2_24(colsum, bias, path):
    """When the sum is the result (no accum_t/result assignment acts), float32 holds every integer below
    2**24: bound 4096 * 4095 + 4095 = 2**24 - 1 is the last float32 sum, 2**24 goes to float64."""
    x_t = FixedType(13, 4)
    parts = np.array([colsum // 2, colsum // 4, colsum - colsum // 2 - colsum // 4], dtype=np.int64)
    w = parts[:, None] * np.array([[1, -1, 1], [1, 1, -1], [-1, 1, 1]], dtype=np.int64)
    p_frac = x_t.frac + 3
    accum_t = FixedType(60, 60 - p_frac)
    b = np.array([bias, -bias, bias // 3], dtype=np.int64)
    arith, _ = _arith(13, w, b, accum_t, accum_t)
    assert arith.float_plan[1] == [] and np.dtype(arith.float_plan[0]).name == path
    x = _extreme_inputs(x_t, 3)
    assert np.array_equal(arith(x), _reference(x, w, p_frac, arith.b_acc, accum_t, accum_t))


@pytest.mark.parametrize(
    ("in_shape", "kernel", "stride", "pads"),
    [
        ((8, 8, 8), (3, 3), (1, 1), ((1, 1), (1, 1))),  # VGG's
        ((8, 8, 1), (3, 3), (1, 1), ((0, 0), (0, 0))),  # the benchmark CNN's: no padding, the input viewed
        ((7, 6, 2), (3, 2), (2, 3), ((0, 1), (2, 0))),  # asymmetric everything
        ((5, 5, 2), (3, 3), (2, 2), ((0, 1), (1, 0))),
    ],
)
def test_row_folded_conv_core_equals_the_patch_reference(in_shape, kernel, stride, pads):
    """The width axis folded into a banded weight matrix, whole input rows as patches."""
    arith, idx, x, want = _conv_case(in_shape, kernel, stride, pads)
    core = _row_folded_core(arith, in_shape, kernel, stride, pads)
    assert np.array_equal(to_int64(core(x)), want)
    assert np.array_equal(to_int64(core(x.astype(np.float32))), want)  # float mantissas from a float producer
    n_pix, patch = idx.shape
    if in_shape == (8, 8, 8):  # the cost model takes it where it is the fastest core (benchmarks/emulator.py)
        assert _conv_plans(int(np.prod(in_shape)), n_pix, patch, 6, (in_shape, kernel, stride, pads))[0] == "rows"
