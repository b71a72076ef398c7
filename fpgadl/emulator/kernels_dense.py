"""Dense and convolution kernels (io_parallel, latency and resource strategies).

hls4ml's ``dense_latency`` (and the conv kernels, which run it on im2col patches) computes each
product ``data * weight`` in full precision, assigns it to ``accum_t`` (rounding and overflow of
``accum_t`` apply per product), starts every accumulator from ``(accum_t) bias``, adds the
products in input order with the sum assigned back to ``accum_t`` after every step, and finally
assigns the accumulator to the result type.  Here the same arithmetic runs on int64 mantissas.
Whole-array shortcuts are taken only where they are provably identical: a wrapping accumulator is
arithmetic modulo 2**width (so the order of additions is irrelevant), and when no partial sum can
leave the accumulator's range its overflow mode never acts.  Integer matrix products go through
float64 BLAS only when every partial sum is an integer below 2**53, where float64 is exact.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from fpgadl.emulator.fastfixed import FLOAT_BITS, cast, cast_float, convert, float_cast_ok, is_identity, round_shift
from fpgadl.emulator.fixed import FixedType
from fpgadl.emulator.registry import (
    UnsupportedLayerError,
    attr_type,
    input_types,
    register,
    require,
    result_type,
    weight_mantissas,
)

_EXACT_FLOAT = 2**53  # integers below this are exact in float64, and so are their sums
_EXACT_INT = 2**62
# Upper bound on elements of a (batch, n_in, n_out) product tensor materialised at once: a few
# passes run over it, faster while it stays in the L2 cache.
_MAX_PRODUCT_ELEMENTS = 1 << 16
# Narrow-integer products of the split per-product path materialised at once (int16: 512 KiB, in L2).
_MAX_NARROW_PRODUCTS = 1 << 18
# Bytes of per-product residues (``_modular_residues``) materialised at once.
_NARROW_BYTES = 1 << 19
# Largest im2col-folded conv weight matrix (elements) used instead of gathering patches.
_MAX_UNROLLED_WEIGHTS = 1 << 22


def _max_abs_mantissa(t: FixedType) -> int:
    return max(abs(t.min_mantissa), abs(t.max_mantissa))


def _is_modular(t: FixedType) -> bool:
    return t.saturation == "WRAP" and t.saturation_bits == 0


def _product_weights(layer, w: np.ndarray, w_t: FixedType) -> np.ndarray:
    """Effective weight mantissas of the C++ product function in the layer's generated config."""
    products = set(re.findall(r"nnet::product::(\w+)<", layer.get_attr("config_cpp") or ""))
    require(layer, len(products) == 1, f"cannot read the product function from the config ({products or 'none'})")
    (product,) = products
    if product == "weight_ternary":
        # product::weight_ternary: w == 0 -> 0, w == -1 -> -a, anything else -> +a
        return np.where(w == 0, 0, np.where(w == -1, -1, 1)).astype(np.int64)
    require(layer, product == "mult", f"product function nnet::product::{product}")
    return w


def _round_products(prod: np.ndarray, frac: int, t: FixedType) -> np.ndarray:
    """Products rounded onto t's grid (no overflow handling); TRN, the common case, in place."""
    shift = frac - t.frac
    if shift <= 0:
        return prod << -shift if shift else prod
    if t.rounding == "TRN":
        prod >>= shift
        return prod
    return round_shift(prod, shift, t.rounding)


def to_int64(y: np.ndarray) -> np.ndarray:
    """Exact-integer floats to int64 mantissas (float32 via int32: numpy's direct cast is slow)."""
    if y.dtype == np.float32:
        return y.astype(np.int32).astype(np.int64)
    return y.astype(np.int64)


class DenseArithmetic:
    """``acc = (accum_t) bias; acc += (accum_t)(x_i * w_ij); res = (result_t) acc``, vectorised.

    ``w`` has shape (n_in, n_out), index ``i * n_out + j`` as in the firmware's weight array.
    """

    def __init__(
        self,
        layer,
        x_t: FixedType,
        w: np.ndarray,
        w_t: FixedType,
        b: np.ndarray | None,
        b_t: FixedType | None,
        accum_t: FixedType,
        res_t: FixedType,
    ):
        w_eff = _product_weights(layer, w.astype(np.int64), w_t)
        if b is None:
            b_acc = np.zeros(w_eff.shape[1], dtype=np.int64)
        else:
            b_acc = cast(b.astype(np.int64), b_t.frac, accum_t)  # acc = (accum_t) bias
        self._setup(layer, x_t, w_eff, x_t.frac + w_t.frac, b_acc, accum_t, res_t)

    @classmethod
    def from_accum_bias(cls, other: DenseArithmetic, w: np.ndarray, b_acc: np.ndarray) -> DenseArithmetic:
        """Same types as `other`, new effective weights and bias already in accum_t."""
        new = cls.__new__(cls)
        new._setup(other.layer, other.x_t, w, other.p_frac, b_acc, other.accum_t, other.res_t)
        return new

    @classmethod
    def exact_sum(cls, layer, x_t, w: np.ndarray, p_frac: int, b_acc: np.ndarray, accum_t, res_t) -> DenseArithmetic:
        """Products of frac `p_frac` summed into `accum_t` (bias already in it), then assigned to res_t."""
        new = cls.__new__(cls)
        new._setup(layer, x_t, w, p_frac, b_acc, accum_t, res_t)
        return new

    def _setup(self, layer, x_t, w, p_frac, b_acc, accum_t, res_t):
        self.layer = layer
        self.x_t, self.accum_t, self.res_t = x_t, accum_t, res_t
        self.w = w
        self.p_frac = p_frac
        self.b_acc = b_acc
        self.shift = accum_t.frac - self.p_frac
        xmax = _max_abs_mantissa(x_t)
        # exact Python ints: the largest |sum of products| any output column can reach
        absw = np.abs(self.w)
        if int(absw.max(initial=0)) * max(1, absw.shape[0]) < 2**62:
            colsum = int(absw.sum(axis=0).max(initial=0))
        else:
            colsum = int(max(absw.astype(object).sum(axis=0), default=0))
        col_bound = xmax * colsum
        self.colsum = colsum  # exact Python int: max over columns of sum |w|
        self.fits_float = col_bound < _EXACT_FLOAT
        # float32 BLAS is exact too while every partial sum stays below 2**24
        self.blas_dtype = np.float32 if col_bound < 2**24 else np.float64
        self.w_float = self.w.astype(self.blas_dtype)
        self.fast = False
        self.accum_identity = False
        if self.shift >= 0 and col_bound * 2**self.shift < _EXACT_INT:
            # Products are exact on accum_t's grid, so only overflow could act per product/step.
            worst = int(np.abs(self.b_acc).max(initial=0)) + col_bound * 2**self.shift
            never_overflows = accum_t.signed and worst <= min(accum_t.max_mantissa, -accum_t.min_mantissa)
            self.fast = _is_modular(accum_t) or never_overflows
            # Without overflow every assignment to accum_t is the identity.
            self.accum_identity = bool(never_overflows)
        if not self.fast and col_bound >= _EXACT_INT:
            raise UnsupportedLayerError(layer, "accumulator sums wider than 62 bits")
        self.float_plan = self._float_plan(col_bound) if self.fast else None

    def _float_plan(self, col_bound: int):
        """(dtype, casts, bound) to run the whole layer in float: one GEMM, bias, casts; or None.

        The weights are pre-scaled by 2**shift (exact), so the GEMM lands on accum_t's grid;
        float32 is chosen when every value stays below 2**23, float64 below 2**52; without casts
        (the sum is the result) one bit more: every integer below 2**24 (2**53) is exact.
        """
        bound = col_bound * 2**self.shift + int(np.abs(self.b_acc).max(initial=0))
        fa = self.accum_t.frac
        casts, b = [], bound
        if not self.accum_identity:
            casts.append(self.accum_t)
            b = _max_abs_mantissa(self.accum_t)
        if not is_identity(self.accum_t, self.res_t):
            casts.append(self.res_t)
            b = _max_abs_mantissa(self.res_t)
        for dtype in (np.float32, np.float64):
            lim = 1 << (FLOAT_BITS[np.dtype(dtype)] - (1 if casts else 0))
            if bound >= lim:
                continue
            if all(
                float_cast_ok(bound if i == 0 else _max_abs_mantissa(casts[i - 1]), fa, t, dtype)
                for i, t in enumerate(casts)
            ):
                return dtype, casts, b
        return None

    @property
    def float_dtype(self):
        return self.float_plan[0] if self.float_plan else None

    def float_weights(self, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Weights pre-scaled onto accum_t's grid and the bias, both times `scale` (a power of two), in the
        float plan's dtype (cached per scale)."""
        cache = self.__dict__.setdefault("_fw", {})
        if scale not in cache:
            dtype = np.dtype(self.float_plan[0]).type
            cache[scale] = (
                (self.w << self.shift).astype(dtype) * dtype(scale),
                self.b_acc.astype(dtype) * dtype(scale),
            )
        return cache[scale]

    def epilogue(self, y: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """Bias and the accum_t / result-type assignments on the float GEMM output y (in place); a `scale`
        other than 1 is only for a layer without assignments (the sum is the result, times scale)."""
        if scale != 1.0 and self.float_plan[1]:
            raise ValueError(f"{self.layer.name}: a scaled float GEMM with casts after it would round off-grid")
        y += self.float_weights(scale)[1]
        for t in self.float_plan[1]:
            y = cast_float(y, self.accum_t.frac, t)
        return y

    def call_float(self, x: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """The layer on x (any numeric dtype, exact integers), result mantissas (times `scale`) as floats."""
        w, _ = self.float_weights(scale)
        return self.epilogue(np.matmul(x.astype(w.dtype, copy=False), w), scale)

    def _products_int(self, x: np.ndarray) -> np.ndarray:
        """Exact x @ w as int64 (x: (N, n_in))."""
        if self.fits_float:
            y = x.astype(self.blas_dtype) @ self.w_float
            # float32 -> int64 is slow in numpy; via int32 (exact: |y| < 2**24) it is not
            return y.astype(np.int32).astype(np.int64) if self.blas_dtype == np.float32 else y.astype(np.int64)
        return x @ self.w

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.float_plan:
            return to_int64(self.call_float(x))
        if self.fast:
            s = self._products_int(x)
            if self.shift:
                s = s << self.shift
            acc = s + self.b_acc
            if not self.accum_identity:
                acc = cast(acc, self.accum_t.frac, self.accum_t)
            return convert(acc, self.accum_t, self.res_t)
        return convert(self._sequential(x), self.accum_t, self.res_t)

    def _sequential(self, x: np.ndarray) -> np.ndarray:
        if _is_modular(self.accum_t) and self.shift < 0:
            exact = self._modular_exact(x)
            if exact is not None:
                return exact
            if self._residue_lanes is not None:
                return self._modular_residues(x)
            if self._split_dtype is not None:
                return self._modular_split(x)
        n, n_in = x.shape
        n_out = self.w.shape[1]
        acc_out = np.empty((n, n_out), dtype=np.int64)
        step = max(1, _MAX_PRODUCT_ELEMENTS // max(1, n_in * n_out))
        for lo in range(0, n, step):
            xs = x[lo : lo + step]
            prod = xs[:, :, None] * self.w[None, :, :]  # full-precision products, frac p_frac
            acc = np.broadcast_to(self.b_acc, (xs.shape[0], n_out)).copy()
            if _is_modular(self.accum_t):
                # wrapping each product too changes nothing modulo 2**width: only the rounding acts
                q = _round_products(prod, self.p_frac, self.accum_t)
                acc = cast(acc + q.sum(axis=1), self.accum_t.frac, self.accum_t)
            else:
                q = cast(prod, self.p_frac, self.accum_t)  # each product assigned to accum_t
                for i in range(n_in):  # acc += mult: the sum is assigned back every step
                    acc = cast(acc + q[:, i, :], self.accum_t.frac, self.accum_t)
            acc_out[lo : lo + step] = acc
        return acc_out

    @property
    def _split_dtype(self):
        """Narrowest integer dtype holding every low-part product and column sum of ``_modular_split``, or None."""
        if getattr(self, "_split", None) is None:
            k, wmax = -self.shift, int(np.abs(self.w).max(initial=0))
            n_in = self.w.shape[0]
            self._split = (None,)
            if self.accum_t.rounding == "TRN" and 0 < k < 31:
                for dtype in (np.int16, np.int32):
                    lim = int(np.iinfo(dtype).max)
                    if ((1 << k) - 1) * wmax <= lim and n_in * wmax <= lim:
                        self._split = (dtype,)
                        break
        return self._split[0]

    def _modular_split(self, x: np.ndarray) -> np.ndarray:
        """Per-product truncation onto a wrapping accumulator, as one GEMM plus a narrow-integer correction.

        With x = hi * 2**k + lo (0 <= lo < 2**k, k the bits every product drops),
        floor(x * w / 2**k) = hi * w + floor(lo * w / 2**k) exactly: the first term is an integer GEMM,
        the second has small operands, so its per-product floors run in int16/int32 (4x/2x the int64
        lanes).  Sums are taken modulo 2**64, which the wrapping accumulator's modulus divides.
        """
        k, dtype = -self.shift, self._split_dtype
        hi = x >> k
        lo = (x - (hi << k)).astype(dtype)
        hi_bound = (_max_abs_mantissa(self.x_t) >> k) + 1
        bits = next((b for b in (24, 53) if hi_bound * self.colsum < 1 << b), None)
        if bits is not None:  # every partial sum an integer float32 (24 bits) / float64 (53) holds exactly
            if getattr(self, "_w_hi", None) is None:
                self._w_hi = self.w.astype(np.float32 if bits == 24 else np.float64)
            acc = to_int64(hi.astype(self._w_hi.dtype) @ self._w_hi)
        else:
            acc = hi @ self.w  # int64 wraps modulo 2**64: harmless under a modulus of 2**width
        if getattr(self, "_w_narrow", None) is None:
            self._w_narrow = self.w.astype(dtype)
        n, (n_in, n_out) = x.shape[0], self.w.shape
        step = max(1, _MAX_NARROW_PRODUCTS // max(1, n_in * n_out))
        buf = np.empty((min(n, step), n_in, n_out), dtype=dtype)  # one buffer: a fresh one per chunk page-faults
        for a in range(0, n, step):
            prod = buf[: min(step, n - a)]
            np.multiply(lo[a : a + step, :, None], self._w_narrow[None, :, :], out=prod)
            np.right_shift(prod, k, out=prod)
            acc[a : a + step] += np.add.reduce(prod, axis=1, dtype=dtype)
        return self._wrap_truncated_sum(acc)

    def _wrap_truncated_sum(self, acc: np.ndarray) -> np.ndarray:
        """Bias added (in place) and the sum of truncated products assigned to the wrapping accum_t: the
        identity when |floor(x * w / 2**k)| <= |x * w| / 2**k + 1 per product keeps every sum in range."""
        acc += self.b_acc
        k, n_in = -self.shift, self.w.shape[0]
        worst = (_max_abs_mantissa(self.x_t) * self.colsum >> k) + n_in + int(np.abs(self.b_acc).max(initial=0))
        if worst <= min(self.accum_t.max_mantissa, -self.accum_t.min_mantissa):
            return acc
        return cast(acc, self.accum_t.frac, self.accum_t)

    def residue_kernel(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """The layer as ``_modular_residues`` alone (no per-batch probe for products that drop no bits, which
        costs a pass and rarely succeeds on a recurrent state's mantissas), when that path applies; else None."""
        if _is_modular(self.accum_t) and self.shift < 0 and self._residue_lanes is not None:
            return lambda x: convert(self._modular_residues(x), self.accum_t, self.res_t)
        return None

    @property
    def _residue_lanes(self):
        """Unsigned dtype of ``_modular_residues``' per-product residues (uint8 for k <= 8, uint16 for k <= 16),
        or None when that path does not apply (rounding other than TRN, x @ w beyond float64's exact integers,
        residue sums beyond the next wider unsigned type)."""
        if getattr(self, "_residues", None) is None:
            k, n_in = -self.shift, self.w.shape[0]
            self._residues = (None,)
            exact = _max_abs_mantissa(self.x_t) * self.colsum < _EXACT_FLOAT
            if self.accum_t.rounding == "TRN" and 0 < k <= 16 and exact:
                lanes, sums = (np.uint8, np.uint16) if k <= 8 else (np.uint16, np.uint32)
                if n_in * ((1 << k) - 1) <= np.iinfo(sums).max:
                    self._residues = (lanes,)
        return self._residues[0]

    def _modular_residues(self, x: np.ndarray) -> np.ndarray:
        """Per-product truncation onto a wrapping accumulator as one exact GEMM minus the products' residues.

        floor(x * w / 2**k) = (x * w - r) / 2**k with r = (x * w) mod 2**k = (x mod 2**k)(w mod 2**k) mod 2**k,
        which an unsigned multiply of the low bytes computes in one pass (it wraps modulo 2**8 or 2**16 by
        itself; a mask keeps k bits when k is narrower): the residues are 1-2 bytes a product where the
        split path's floors are 2-4, and sum_i r < 2**16 (2**32) sums them without a carry.  x @ w is exact
        in float64 (checked from the types), so (x @ w - sum_i r) / 2**k is an exact shift."""
        k, lanes = -self.shift, self._residue_lanes
        sums = np.uint16 if lanes == np.uint8 else np.uint32
        if getattr(self, "_w_res", None) is None:
            self._w_res = (self.w.astype(lanes), self.w.astype(np.float64))
        w_low, w64 = self._w_res
        acc = (x.astype(np.float64) @ w64).astype(np.int64)
        low = x.astype(lanes)  # x mod 2**8 (2**16): the C cast keeps the low bits, two's complement
        n, (n_in, n_out) = x.shape[0], self.w.shape
        step = max(1, _NARROW_BYTES // (np.dtype(lanes).itemsize * max(1, n_in * n_out)))
        half = n_in // 2
        res = np.empty((min(n, step), n_in, n_out), dtype=lanes)  # reused: a fresh buffer per chunk page-faults
        pairs = np.empty((min(n, step), half, n_out), dtype=sums)
        r_sum = np.empty((n, n_out), dtype=sums)
        for a in range(0, n, step):
            m = min(step, n - a)
            r, p = res[:m], pairs[:m]
            np.multiply(low[a : a + m, :, None], w_low[None, :, :], out=r)
            if k < 8 * np.dtype(lanes).itemsize:
                np.bitwise_and(r, lanes((1 << k) - 1), out=r)
            np.add(r[:, :half], r[:, half : 2 * half], out=p, dtype=sums)  # widen while halving the rows
            np.add.reduce(p, axis=1, out=r_sum[a : a + m])
            if n_in % 2:
                r_sum[a : a + m] += r[:, -1]
        acc -= r_sum
        acc >>= k
        return self._wrap_truncated_sum(acc)

    def _modular_exact(self, x: np.ndarray) -> np.ndarray | None:
        """With a wrapping accumulator coarser than the products: when every x of this batch is a
        multiple of 2**-shift (e.g. 8-bit data held in a wide port type), no product has bits below
        accum_t's LSB, rounding never acts and the layer is one exact integer GEMM; else None."""
        k = -self.shift
        bits = int(np.bitwise_or.reduce(x, axis=None)) if x.size else 0
        if bits & ((1 << k) - 1):
            return None
        xs = x >> k
        bound = int(np.abs(xs).max(initial=0)) * self.colsum
        if bound >= _EXACT_FLOAT:
            return None
        if getattr(self, "_w64", None) is None:
            self._w64 = self.w.astype(np.float64)
        s = (xs.astype(np.float64) @ self._w64).astype(np.int64)
        return cast(s + self.b_acc, self.accum_t.frac, self.accum_t)


def check_strategy(layer, arith: DenseArithmetic) -> None:
    strategy = str(layer.get_attr("strategy", "latency")).lower()
    require(layer, strategy in ("latency", "resource", "distributed_arithmetic"), f"strategy {strategy}")
    if strategy == "resource":
        # Resource kernels add the same per-product accum_t values in another order; that order
        # is irrelevant when the accumulator wraps or provably never overflows.
        require(
            layer,
            _is_modular(arith.accum_t) or arith.accum_identity,
            "resource strategy with an accum_t that can saturate (accumulation order not modelled)",
        )


def matrix(layer, key: str) -> tuple[np.ndarray, FixedType]:
    """A weight matrix as (n_in, n_out) mantissas, index ``i * n_out + j`` as dense_latency reads it.

    The resource strategy stores the transpose (hls4ml's ApplyResourceStrategy moves the output
    axis first); dense_resource indexes that layout, so the arithmetic is the same matrix.
    """
    w, w_t = weight_mantissas(layer, key)
    if layer.get_attr("_weights_transposed", False):
        return w.reshape(w.shape[0], -1).T.copy(), w_t
    return w.reshape(-1, w.shape[-1]), w_t


def _exact_mantissas(layer, data: np.ndarray, what: str) -> tuple[np.ndarray, int]:
    """(m, frac) with m * 2**-frac == data exactly, m int64 below 2**53 (the fewest fractional bits)."""
    data = np.asarray(data, dtype=np.float64)
    for frac in range(-8, 61):
        m = np.ldexp(data, frac)
        if np.all(m == np.round(m)) and np.all(np.abs(m) < 2**53):
            return m.astype(np.int64), frac
    raise UnsupportedLayerError(layer, f"{what} values are not fixed-point numbers of at most 53 bits")


def _da_arith(layer) -> DenseArithmetic:
    """hls4ml's distributed_arithmetic: da4ml's adder graph computes sum(x * w) + b exactly (every
    intermediate type is as wide as its interval) from the float weights as da4ml's solver reads them
    (float32) and the float bias, and assigns the exact sum to the result type once; accum_t is unused."""
    (x_t,) = input_types(layer)
    data, bias = layer.get_attr("da_weight"), layer.get_attr("da_bias")
    require(layer, data is not None, "distributed-arithmetic constants not kept (load the project with fpgadl)")
    data = np.asarray(data)
    w, w_frac = _exact_mantissas(layer, data.reshape(-1, data.shape[-1]).astype(np.float32), "weight")
    b, b_frac = np.zeros(w.shape[1], dtype=np.int64), 0
    if bias is not None:
        b, b_frac = _exact_mantissas(layer, np.asarray(bias).ravel(), "bias")
    p_frac = x_t.frac + w_frac
    frac = max(p_frac, b_frac)
    exact_t = FixedType(63, 63 - frac)  # wide enough for any sum DenseArithmetic accepts as exact
    b_acc = b << (frac - b_frac)
    return DenseArithmetic.exact_sum(layer, x_t, w, p_frac, b_acc, exact_t, result_type(layer))


def layer_arith(layer) -> DenseArithmetic:
    if str(layer.get_attr("strategy", "")).lower() == "distributed_arithmetic":
        arith = _da_arith(layer)
        require(layer, arith.accum_identity, "distributed-arithmetic sums wider than 62 bits")
        return arith
    (x_t,) = input_types(layer)
    accum_t = attr_type(layer, "accum_t")
    w, w_t = matrix(layer, "weight")
    b, b_t = (None, None)
    if "bias" in layer.weights:
        b, b_t = weight_mantissas(layer, "bias")
    arith = DenseArithmetic(layer, x_t, w, w_t, b, b_t, accum_t, result_type(layer))
    check_strategy(layer, arith)
    return arith


def float_kernel(make_core, arith: DenseArithmetic, out_shape: tuple[int, ...]):
    """A kernel around ``make_core(scale)(x) -> (n, ...) exact-integer floats`` (times `scale`), with a ``fuse`` hook.

    The kernel returns float mantissas (the runner turns them into int64 only for a reader that
    needs them) and takes float ones (``float_in``) when every value of its input type is exact
    in the GEMM's dtype.  ``kernel.fuse(next_kernel)`` returns a kernel that also applies the
    following element-wise layer in the float domain (its ``float_stage``), or None when that
    layer has no exact float form for this input bound.  A stage that starts by scaling by a power
    of two (``prescale``) has it folded into the weights and bias when no cast follows the GEMM:
    scaled integers sum exactly where the integers do, and the stage's pass over the output is saved.
    """
    dtype, casts, bound = arith.float_plan
    float_in = _max_abs_mantissa(arith.x_t) < 1 << FLOAT_BITS[np.dtype(dtype)]
    core = make_core(1.0)

    def kernel(x: np.ndarray) -> np.ndarray:
        return core(x).reshape((x.shape[0], *out_shape))

    def fuse(next_kernel):
        make = getattr(next_kernel, "float_stage", None)
        post = make(bound, dtype) if make else None
        if post is None:
            return None
        fused_core, prescale = core, None
        if getattr(post, "prescale", None) is not None and not casts:
            fused_core, prescale, post = make_core(post.prescale), post.prescale, post.prescaled

        def fused(x: np.ndarray) -> np.ndarray:
            return post(fused_core(x))

        fused.float_in = float_in
        fused.prescale = prescale  # the power of two folded into the weights (None: none)
        return fused

    kernel.fuse = fuse
    kernel.float_in = float_in
    return kernel


@register("Dense")
def dense(layer):
    from fpgadl.emulator.kernels_binary import binary_dense, is_xnor

    weight_t = layer.types.get("weight_t")  # distributed arithmetic has none
    if is_xnor(layer.get_input_variable().type.precision) or (weight_t is not None and is_xnor(weight_t.precision)):
        return binary_dense(layer)
    arith = layer_arith(layer)
    out_shape = tuple(layer.get_output_variable().shape)
    n_in = arith.w.shape[0]
    if arith.float_plan:
        return float_kernel(lambda scale: lambda x: arith.call_float(x.reshape(-1, n_in), scale), arith, out_shape)

    def kernel(x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        # hls4ml Dense on a multi-dimensional input applies to the last axis.
        y = arith(x.reshape(-1, n_in))
        return y.reshape((n, *out_shape))

    return kernel


def im2col_index(in_shape, kernel, stride, pads):
    """Flat input indices (or -1 for zero padding) of every patch, patch order (f..., c)."""
    *spatial, n_chan = in_shape
    grids = []
    out_spatial = []
    for size, k, s, (p0, p1) in zip(spatial, kernel, stride, pads):
        out = (size + p0 + p1 - k) // s + 1
        out_spatial.append(out)
        pos = np.arange(out)[:, None] * s + np.arange(k)[None, :] - p0  # (out, k)
        grids.append(pos)
    idx = np.zeros([*out_spatial, *kernel, n_chan], dtype=np.int64)
    valid = np.ones(idx.shape, dtype=bool)
    ndim = len(spatial)
    strides_in = np.cumprod([1, n_chan, *spatial[::-1][:-1]])[::-1]  # elements per step of each spatial dim
    for d, pos in enumerate(grids):
        shape = [1] * (2 * ndim + 1)
        shape[d] = pos.shape[0]
        shape[ndim + d] = pos.shape[1]
        p = pos.reshape(shape)
        idx = idx + p * int(strides_in[d])
        valid &= (p >= 0) & (p < spatial[d])
    idx = idx + np.arange(n_chan)
    idx = np.where(valid, idx, -1)
    return idx.reshape(int(np.prod(out_spatial)), -1), out_spatial


def conv_geometry(layer, ndim: int):
    """(input shape channels-last, kernel, stride, (before, after) pads) of a Conv1D/2D layer."""
    data_format = layer.get_attr("data_format", "channels_last")
    require(layer, data_format == "channels_last", f"data_format {data_format}")
    for attr in ("dilation", "dilation_width", "dilation_height"):
        require(layer, layer.get_attr(attr, 1) in (1, None), "dilated convolution")
    if ndim == 1:
        in_shape = (layer.get_attr("in_width"), layer.get_attr("n_chan"))
        kernel = (layer.get_attr("filt_width"),)
        stride = (layer.get_attr("stride_width"),)
        pads = ((layer.get_attr("pad_left"), layer.get_attr("pad_right")),)
    else:
        in_shape = (layer.get_attr("in_height"), layer.get_attr("in_width"), layer.get_attr("n_chan"))
        kernel = (layer.get_attr("filt_height"), layer.get_attr("filt_width"))
        stride = (layer.get_attr("stride_height"), layer.get_attr("stride_width"))
        pads = (
            (layer.get_attr("pad_top"), layer.get_attr("pad_bottom")),
            (layer.get_attr("pad_left"), layer.get_attr("pad_right")),
        )
    in_var = layer.get_input_variable()
    require(layer, int(np.prod(in_var.shape)) == int(np.prod(in_shape)), "input shape mismatch")
    return in_shape, kernel, stride, pads


# hls4ml turns 1x1 convolutions into Pointwise classes; their kernels (pointwise_conv_1d_latency_cl,
# and conv_2d_latency_cl for 2-D) compute the same per-product accum_t sums over the channels.
CONV_DIMS = {"Conv1D": 1, "PointwiseConv1D": 1, "Conv2D": 2, "PointwiseConv2D": 2}
DEPTHWISE_DIMS = {"DepthwiseConv1D": 1, "DepthwiseConv2D": 2}


def layer_conv_geometry(layer):
    """conv_geometry of a registered convolution class (Conv, Pointwise or Depthwise, 1-D or 2-D)."""
    return conv_geometry(layer, CONV_DIMS.get(layer.class_name) or DEPTHWISE_DIMS[layer.class_name])


def conv_patches(layer) -> tuple[np.ndarray, tuple[int, ...]]:
    """A Conv layer's im2col index (flat input index per output pixel and patch position, -1 for zero
    padding) and its channels-last input shape: what the fast engine and the RTL tracer gather."""
    in_shape, kernel, stride, pads = layer_conv_geometry(layer)
    idx, _ = im2col_index(in_shape, kernel, stride, pads)
    return idx, tuple(in_shape)


@register(*CONV_DIMS)
def conv(layer):
    return _binary_conv(layer) or _conv_builder(layer, layer_arith(layer))


def _conv_builder(layer, arith: DenseArithmetic):
    geometry = layer_conv_geometry(layer)
    in_shape = geometry[0]
    idx, _ = im2col_index(*geometry)
    pad = idx < 0
    gather = np.where(pad, 0, idx)
    out_shape = tuple(layer.get_output_variable().shape)
    n_pix, patch = idx.shape
    require(layer, arith.w.shape[0] == patch, "weight shape does not match the patch size")
    in_size = int(np.prod(in_shape))

    if arith.float_plan:
        return float_kernel(lambda scale: _float_conv_core(arith, idx, in_size, geometry, scale), arith, out_shape)

    def kern(x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        flat = x.reshape(n, -1)
        cols = flat[:, gather]  # (n, n_pix, patch)
        if pad.any():
            cols = np.where(pad, 0, cols)
        y = arith(cols.reshape(n * n_pix, patch))
        return y.reshape((n, *out_shape))

    return kern


def _conv_plans(in_size: int, n_pix: int, patch: int, n_filt: int, geometry=None) -> list[str]:
    """The float convolution cores ("folded", "rows", "patches") that apply, cheapest first by a cost model in
    nanoseconds per sample, fitted to single-threaded OpenBLAS sgemm on the benchmark's convolutions (benchmarks/
    emulator.py: on its 8 layers the first choice is the fastest core measured, or within the timing noise
    of it: the CNN's 8x8x1 rows vs folded, 0.25 us either way).

    The folded GEMM runs near full speed (~33 multiply-adds/ns) whatever the shape; the patch path pays
    ~1 ns per copied patch element, and its GEMM slows down with few rows per patch (BLAS kernels need
    K >= ~64 to run at ~18 multiply-adds/ns): a 3x3 kernel over one channel folds, over eight it does not.
    Row folding (2-D only) sits between: its banded GEMM runs at full speed over kernel_h whole input rows
    per output row, and copies those rows (contiguous blocks)."""
    costs = {"patches": n_pix * patch * (1 + n_filt / (18 * min(1.0, patch / 64)))}
    if in_size * n_pix * n_filt <= _MAX_UNROLLED_WEIGHTS:
        costs["folded"] = in_size * n_pix * n_filt / 33
    if geometry is not None and len(geometry[1]) == 2:
        (h, w, c), (kh, _), _, _ = geometry
        oh, ow = _out_spatial(geometry)
        band = kh * w * c * ow * n_filt
        if band <= _MAX_UNROLLED_WEIGHTS:
            costs["rows"] = oh * band / 33 + oh * kh * w * c
    return sorted(costs, key=costs.get)


def _unrolled_core(unrolled: DenseArithmetic, in_size: int, scale: float):
    return lambda x: unrolled.call_float(x.reshape(x.shape[0], in_size), scale)


def _out_spatial(geometry) -> list[int]:
    in_shape, kernel, stride, pads = geometry
    return [(size + p0 + p1 - k) // s + 1 for size, k, s, (p0, p1) in zip(in_shape[:-1], kernel, stride, pads)]


def _row_folded_core(arith: DenseArithmetic, in_shape, kernel, stride, pads, scale: float = 1.0):
    """2-D convolution with the width axis folded into the weights, or None when that matrix's float plan
    differs from arith's: each output row is one GEMM row over the kernel_h input rows it reads (whole rows,
    contiguous in channels-last), the width's taps, stride and padding live in a banded
    (kernel_h * W * C, out_w * F) matrix whose zeros add exact zero products (the sums are unchanged)."""
    (h, w_in, c), (kh, kw), (sy, sx), ((pt, pb), (pl, _)) = in_shape, kernel, stride, pads
    oh, ow = _out_spatial((in_shape, kernel, stride, pads))
    n_filt = arith.w.shape[1]
    taps = arith.w.reshape(kh, kw, c, n_filt)  # im2col's patch order: (dy, dx, channel)
    band = np.zeros((kh, w_in, c, ow, n_filt), dtype=np.int64)
    for ox in range(ow):
        for dx in range(kw):
            ix = ox * sx + dx - pl
            if 0 <= ix < w_in:
                band[:, ix, :, ox, :] = taps[:, dx]
    rows = DenseArithmetic.from_accum_bias(arith, band.reshape(kh * w_in * c, -1), np.tile(arith.b_acc, ow))
    if not rows.float_plan or rows.float_plan[:2] != arith.float_plan[:2]:
        return None
    dtype, row = arith.float_dtype, w_in * c

    def core(x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        if pt or pb:
            buf = np.zeros((n, h + pt + pb, row), dtype=dtype)
            buf[:, pt : pt + h] = x.reshape(n, h, row)
        else:
            buf = np.ascontiguousarray(x.reshape(n, h, row), dtype=dtype)
        st = buf.strides
        view = np.lib.stride_tricks.as_strided(
            buf, shape=(n, oh, kh, row), strides=(st[0], st[1] * sy, st[1], st[2]), writeable=False
        )
        return rows.call_float(view.reshape(n * oh, kh * row), scale).reshape(n, oh * ow * n_filt)

    return core


def _float_conv_core(arith: DenseArithmetic, idx: np.ndarray, in_size: int, geometry=None, scale: float = 1.0):
    """Convolution as one float GEMM (its sums times `scale`, see ``float_kernel``): im2col-folded weights,
    row-folded weights (2-D, given the geometry) or patches, whichever ``_conv_plan`` prices cheapest.

    Folding im2col into an (in_size, n_pix * n_filt) weight matrix adds only exact zero
    products, so the sums are unchanged; it wins while that matrix is a few times the patch GEMM.
    Otherwise, given the ``geometry`` (in_shape, kernel, stride, pads), the patches are copied
    from a strided view of the zero-padded input; without it they are gathered with one ``take``
    plus a zero column standing for the padding.
    """
    n_pix, patch = idx.shape
    n_filt = arith.w.shape[1]
    pad = idx < 0
    for choice in _conv_plans(in_size, n_pix, patch, n_filt, geometry):
        if choice == "patches":
            break
        core = _row_folded_core(arith, *geometry, scale=scale) if choice == "rows" else None
        if choice == "folded":
            w_big = np.zeros((in_size, n_pix, n_filt), dtype=np.int64)
            pix, pos = np.nonzero(~pad)
            w_big[idx[pix, pos], pix, :] = arith.w[pos, :]
            unrolled = DenseArithmetic.from_accum_bias(arith, w_big.reshape(in_size, -1), np.tile(arith.b_acc, n_pix))
            if unrolled.float_plan and unrolled.float_plan[:2] == arith.float_plan[:2]:
                core = _unrolled_core(unrolled, in_size, scale)
        if core is not None:
            return core
    if geometry is not None:
        return _strided_conv_core(arith, *geometry, scale=scale)
    dtype = arith.float_dtype
    gather = np.where(pad, in_size, idx).ravel()

    def core(x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        flat = np.empty((n, in_size + 1), dtype=dtype)
        flat[:, :in_size] = x.reshape(n, in_size)
        flat[:, in_size] = 0
        cols = np.take(flat, gather, axis=1).reshape(n * n_pix, patch)
        return arith.call_float(cols, scale).reshape(n, n_pix * n_filt)

    return core


def depthwise_arith(layer, n_chan: int) -> DenseArithmetic:
    """depthwise_conv_*_latency_cl is dense_latency on a block-diagonal matrix: each product x[k, c] * w[k, c]
    is assigned to accum_t, acc[c] starts at (accum_t) bias[c] and adds its products in kernel order. The
    zero products of the other channels add nothing, so the dense arithmetic over the patch (k, c) with
    W[k * C + c, c] = w[k, c] is the same computation."""
    (x_t,) = input_types(layer)
    require(layer, layer.get_attr("n_filt", n_chan) == n_chan, "a depth multiplier other than 1")
    w, w_t = weight_mantissas(layer, "weight")
    w = w.reshape(-1, n_chan)  # hls4ml's depthwise weights: (filt_height, filt_width, n_chan), channel fastest
    taps = w.shape[0]
    block = np.zeros((taps * n_chan, n_chan), dtype=np.int64)
    block[np.arange(taps)[:, None] * n_chan + np.arange(n_chan), np.arange(n_chan)] = w
    b, b_t = weight_mantissas(layer, "bias") if "bias" in layer.weights else (None, None)
    arith = DenseArithmetic(layer, x_t, block, w_t, b, b_t, attr_type(layer, "accum_t"), result_type(layer))
    require(layer, str(layer.get_attr("strategy", "latency")).lower() == "latency", "depthwise resource strategy")
    return arith


def _strided_conv_core(arith: DenseArithmetic, in_shape, kernel, stride, pads, scale: float = 1.0):
    """Patches (pixel, (f..., c)) as im2col_index orders them, copied from a strided view of the input.

    In a channels-last layout each patch row is a run of contiguous (kernel_w * channels) blocks,
    so the copy moves blocks where a ``take`` reads one index per element; padding is a zeroed
    border of a scratch buffer.
    """
    *spatial, n_chan = in_shape
    nd = len(spatial)
    padded = [size + p0 + p1 for size, (p0, p1) in zip(spatial, pads)]
    out = [(size - k) // s + 1 for size, k, s in zip(padded, kernel, stride)]
    n_pix, patch, n_filt = int(np.prod(out)), int(np.prod(kernel)) * n_chan, arith.w.shape[1]
    has_pad = any(p0 or p1 for p0, p1 in pads)
    interior = (slice(None), *(slice(p0, p0 + size) for size, (p0, _) in zip(spatial, pads)), slice(None))
    dtype = arith.float_dtype

    def core(x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        if has_pad:
            buf = np.zeros((n, *padded, n_chan), dtype=dtype)
            buf[interior] = x.reshape(n, *spatial, n_chan)
        else:
            buf = np.ascontiguousarray(x.reshape(n, *spatial, n_chan), dtype=dtype)
        st = buf.strides
        view = np.lib.stride_tricks.as_strided(
            buf,
            shape=(n, *out, *kernel, n_chan),
            strides=(st[0], *(st[1 + d] * stride[d] for d in range(nd)), *st[1 : 1 + nd], st[-1]),
            writeable=False,
        )
        cols = view.reshape(n * n_pix, patch)  # the one copy
        return arith.call_float(cols, scale).reshape(n, n_pix * n_filt)

    return core


@register(*DEPTHWISE_DIMS)
def depthwise_conv(layer):
    _, in_shape = conv_patches(layer)
    return _conv_builder(layer, depthwise_arith(layer, in_shape[-1]))


def _binary_conv(layer):
    """The XNOR kernel for a convolution with binary (ap_uint<1>) data or weights, else None."""
    from fpgadl.emulator.kernels_binary import binary_conv, is_xnor

    weight_t = layer.types.get("weight_t")
    if is_xnor(layer.get_input_variable().type.precision) or (weight_t is not None and is_xnor(weight_t.precision)):
        return binary_conv(layer)
    return None
