"""Fast paths for the hot conversions of ``fixed.py``: value-level numpy arithmetic.

``fixed.cast`` and ``fixed.from_float`` port ap_fixed's bit-level conversion statement by
statement, which is the reference but costs dozens of array passes.  For the common cases
(``saturation_bits == 0`` and values whose scaled magnitude stays below 2**52 / 2**62) the same
result is a floor/round on the scaled value followed by a wrap or clip; those elements take the
arithmetic path here and every other element goes to the reference implementation.  The
equivalence is tested exhaustively against ``fixed.py`` (tests/test_emulator_fastfixed.py).
"""

from __future__ import annotations

import numpy as np

from fpgadl.emulator import fixed
from fpgadl.emulator.fixed import FixedType

try:  # the ufunc np.clip ends in
    from numpy._core.umath import clip as _clip_ufunc  # numpy >= 2
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.umath import clip as _clip_ufunc

_LIM_FLOAT = float(2**52)
_LIM_INT = 2**62


def clip(v: np.ndarray, lo, hi, out: np.ndarray | None = None) -> np.ndarray:
    """``np.clip(v, lo, hi, out=out)`` without its Python wrapper, which costs several microseconds a call
    (as much as the pass itself over a recurrent step's or a small batch's arrays): the same ufunc."""
    return _clip_ufunc(v, lo, hi, out=out)


def _overflow(v: np.ndarray, t: FixedType) -> np.ndarray:
    """Apply t's overflow mode to already-quantized integer mantissas v (|v| < 2**63)."""
    lo, hi = t.min_mantissa, t.max_mantissa
    o = t.saturation
    if o == "WRAP":
        if t.signed:
            if t.width >= 64:
                return v
            half = np.int64(1 << (t.width - 1))
            return ((v + half) & np.int64((1 << t.width) - 1)) - half
        return v & np.int64((1 << t.width) - 1)
    if o == "SAT":
        return clip(v, lo, hi)
    if o == "SAT_SYM":
        return clip(v, lo + 1 if t.signed else lo, hi)
    # SAT_ZERO
    return np.where((v < lo) | (v > hi), 0, v)


def _round_int(m: np.ndarray, shift: int, rounding: str) -> np.ndarray:
    """Quantize the value m * 2**-shift (0 < shift < 62) to an integer with an ap_fixed rounding mode.

    Each mode is one biased arithmetic shift: floor((m + bias) / 2**shift), which needs
    |m| < 2**62 so that m + bias cannot overflow; larger values take the compare-based path.
    """
    if rounding == "TRN":
        return m >> shift
    half = np.int64(1 << (shift - 1))
    if m.size and (m.max() >= _LIM_INT or m.min() <= -_LIM_INT):
        return _round_int_compare(m, shift, rounding)
    if rounding == "RND":  # ties up
        return (m + half) >> shift
    if rounding == "RND_MIN_INF":  # ties down
        return (m + (half - 1)) >> shift
    if rounding == "RND_CONV":  # ties to even: add 1 more exactly when the kept LSB is odd
        return (m + (half - 1) + ((m >> shift) & 1)) >> shift
    if rounding == "RND_INF":  # ties away from zero
        return (m + half - (m < 0)) >> shift
    if rounding == "RND_ZERO":  # ties toward zero
        return (m + half - (m >= 0)) >> shift
    if rounding == "TRN_ZERO":  # toward zero
        return (m + (np.int64((1 << shift) - 1) * (m < 0))) >> shift
    raise ValueError(rounding)


def round_shift(m: np.ndarray, shift: int, rounding: str) -> np.ndarray:
    """int64 m * 2**-shift rounded to an integer with an ap_fixed rounding mode (no overflow)."""
    if not 0 < shift < 62:
        raise ValueError(f"shift {shift} outside 1..61")
    return _round_int(m, shift, rounding)


def _round_int_compare(m: np.ndarray, shift: int, rounding: str) -> np.ndarray:
    fl = m >> shift  # floor
    if rounding == "TRN":
        return fl
    r = m & np.int64((1 << shift) - 1)
    half = np.int64(1 << (shift - 1))
    if rounding == "TRN_ZERO":
        return fl + ((m < 0) & (r != 0))
    if rounding == "RND":
        return fl + (r >= half)
    if rounding == "RND_CONV":
        return fl + ((r > half) | ((r == half) & ((fl & 1) == 1)))
    if rounding == "RND_ZERO":
        return fl + ((r > half) | ((r == half) & (m < 0)))
    if rounding == "RND_MIN_INF":
        return fl + (r > half)
    if rounding == "RND_INF":
        return fl + ((r > half) | ((r == half) & (m >= 0)))
    raise ValueError(rounding)


def _round_float(v: np.ndarray, rounding: str) -> np.ndarray:
    """Quantize float64 values (exactly scaled, |v| < 2**52) to integers; float64 result."""
    if rounding == "RND_CONV":
        return np.rint(v)
    fl = np.floor(v)
    if rounding == "TRN":
        return fl
    if rounding == "TRN_ZERO":
        return np.trunc(v)
    # v - trunc(v) is exact (v - floor(v) is not for small negative v); the rounding remainder
    # r = v - floor(v) is frac for frac >= 0 and 1 + frac otherwise, so compare against
    # 0.5 or -0.5 instead of forming r.
    frac = v - np.trunc(v)
    th = 0.5 - (frac < 0)
    above = frac > th
    tie = frac == th
    if rounding == "RND":
        return fl + (above | tie)
    if rounding == "RND_ZERO":
        return fl + (above | (tie & (v < 0)))
    if rounding == "RND_MIN_INF":
        return fl + above
    if rounding == "RND_INF":
        return fl + (above | (tie & (v > 0)))
    raise ValueError(rounding)


def _reference_only(t: FixedType) -> bool:
    # WRAP with saturation bits, wide types and 1-bit SAT_SYM (max == 0) keep the bit-level path.
    return bool(t.saturation_bits) or t.width > 62 or (t.saturation == "SAT_SYM" and t.width == 1)


def cast(m: np.ndarray, frac: int, t: FixedType) -> np.ndarray:
    """Same result as ``fixed.cast(m, frac, t)``."""
    m = np.asarray(m, dtype=np.int64)
    if _reference_only(t):
        return fixed.cast(m, frac, t)
    shift = frac - t.frac
    if shift > 0:
        if shift >= 62:
            return fixed.cast(m, frac, t)
        return _overflow(_round_int(m, shift, t.rounding), t)
    if shift == 0:
        return _overflow(m, t)
    up = -shift
    if up >= 62:
        return fixed.cast(m, frac, t)
    bound = np.int64(_LIM_INT >> up)
    if m.size and (m.max() >= bound or m.min() <= -bound):
        safe = (m < bound) & (m > -bound)
        out = np.empty_like(m)
        out[safe] = _overflow(m[safe] << up, t)
        out[~safe] = fixed.cast(m[~safe], frac, t)
        return out
    return _overflow(m << up, t)


def from_float(x: np.ndarray, t: FixedType) -> np.ndarray:
    """Same result as ``fixed.from_float(x, t)``."""
    x = np.asarray(x, dtype=np.float64)
    if _reference_only(t) or abs(t.frac) > 900:
        return fixed.from_float(x, t)
    with np.errstate(over="ignore", invalid="ignore"):
        v = np.ldexp(x, t.frac)  # exact while in the normal range
    ok = np.abs(v) < _LIM_FLOAT  # also False for nan / inf
    if t.frac < 0:
        # ldexp by a negative power may round subnormal results; only trust clearly normal ones
        ok &= (x == 0) | (np.abs(x) >= np.ldexp(1.0, -1021 - t.frac))
    all_ok = bool(ok.all())
    q = _round_float(v if all_ok else np.where(ok, v, 0.0), t.rounding).astype(np.int64)
    out = _overflow(q, t)
    if not all_ok:
        out[~ok] = fixed.from_float(x[~ok], t)
    return out


def keeps_values(src: FixedType, dst: FixedType) -> bool:
    """``dst_t y = x;`` is a left shift for every value of src (or nothing): dst's grid holds src's, its range
    holds src's, and its overflow mode leaves every such value alone. AP_SAT_SYM does not: a signed source
    equal to the signed target's minimum becomes -max (ap_fixed.h; found by the g++ harness on
    ap_fixed<28,14> -> ap_fixed<30,14,AP_RND_INF,AP_SAT_SYM>, -8192 -> -8192 + 2**-16)."""
    up = dst.frac - src.frac
    lo = dst.min_mantissa + (1 if dst.saturation == "SAT_SYM" and dst.signed and src.signed else 0)
    return 0 <= up < 62 and lo <= src.min_mantissa << up and src.max_mantissa << up <= dst.max_mantissa


def is_identity(src: FixedType, dst: FixedType) -> bool:
    """``dst_t y = x;`` changes no mantissa: the same grid, and dst keeps every value of src."""
    return src.frac == dst.frac and keeps_values(src, dst)


def convert(m: np.ndarray, src: FixedType, dst: FixedType) -> np.ndarray:
    """Mantissas m of type src assigned to type dst (``dst_t y = x;`` with x of src_t).

    When every value of src is kept (`keeps_values`) the assignment is a left shift (or nothing), which
    skips rounding and overflow handling altogether.
    """
    if keeps_values(src, dst):
        up = dst.frac - src.frac
        return m << up if up else m
    return cast(m, src.frac, dst)


# ---- float64-domain conversions: mantissas held as exactly-integral float64 ---------------------
# A BLAS product of integer mantissas is an exact integer in float64 while every partial sum stays
# below 2**53.  Rounding and saturating it there (power-of-two scaling is exact, floor/rint/clip
# are exact on integers) skips the int64 round trip between a GEMM and its result type.

EXACT_FLOAT = 2**53  # integers of smaller magnitude, and their sums below this, are exact in float64
# significand bits of the float dtypes the fast engine computes in
FLOAT_BITS = {np.dtype(np.float32): 24, np.dtype(np.float64): 53}


def float_cast_ok(bound: int, frac: int, t: FixedType, dtype=np.float64) -> bool:
    """True when ``cast_float`` is exact for every |mantissa| <= bound (frac fractional bits) into t.

    Every intermediate must stay an integer (or a power-of-two fraction) below 2**(p-1), p the
    dtype's significand bits: then scaling, rounding, clipping and WRAP's modulo are exact.
    """
    lim = 1 << (FLOAT_BITS[np.dtype(dtype)] - 1)
    if _reference_only(t) or (1 << t.width) >= lim or bound >= lim:
        return False
    up = t.frac - frac
    if up < -(FLOAT_BITS[np.dtype(dtype)] - 1):  # v * 2**up and RND's v + 0.5 stay exact
        return False
    return up <= 0 or (bound << up) + (1 << t.width) < lim


def cast_float(v: np.ndarray, frac: int, t: FixedType) -> np.ndarray:
    """``cast(v, frac, t)`` on float32/float64 arrays of exact integers, same dtype; v may be overwritten.

    Exact when ``float_cast_ok(max|v|, frac, t, v.dtype)``; callers establish that bound from the types.
    """
    shift = frac - t.frac
    if shift:
        np.multiply(v, v.dtype.type(np.ldexp(1.0, -shift)), out=v)  # exact: a power of two, no underflow here
    return round_saturate_float(v, shift, t)


def round_saturate_float(v: np.ndarray, shift: int, t: FixedType) -> np.ndarray:
    """``cast_float(v * 2**shift, t.frac + shift, t)`` for v already scaled onto t's grid (a caller that
    folded the power of two into its weights or tables): the rounding and overflow alone, in place.

    Exact under the same condition as ``cast_float`` on the unscaled values (``float_cast_ok``)."""
    if shift > 0:
        v = _round_float_inplace(v, t.rounding)
    return _overflow_float(v, t)


def _round_float_inplace(v: np.ndarray, rounding: str) -> np.ndarray:
    if rounding == "TRN":
        return np.floor(v, out=v)
    if rounding == "RND_CONV":
        return np.rint(v, out=v)
    if rounding == "RND":  # ties up: v + 0.5 is exact (float_cast_ok bounds v and the shift)
        v += v.dtype.type(0.5)
        return np.floor(v, out=v)
    return _round_float(v, rounding)


def _overflow_float(v: np.ndarray, t: FixedType) -> np.ndarray:
    lo, hi = v.dtype.type(t.min_mantissa), v.dtype.type(t.max_mantissa)
    o = t.saturation
    if o == "SAT":
        return clip(v, lo, hi, out=v)
    if o == "SAT_SYM":
        return clip(v, lo + 1 if t.signed else lo, hi, out=v)
    if o == "SAT_ZERO":
        v[(v < lo) | (v > hi)] = 0.0
        return v
    # WRAP: v - 2**W * floor((v - lo) / 2**W); every step is exact on integers below 2**53
    span = v.dtype.type(1 << t.width)
    k = np.subtract(v, lo)
    k *= v.dtype.type(1.0) / span
    np.floor(k, out=k)
    k *= span
    v -= k
    return v


# Input conversions straight into float mantissas: the bridge's `input_t v = (double)x;` computed in
# x's own float dtype.  x * 2**frac is exact (frac >= 0: no underflow; an overflow to inf saturates
# as the huge value it stands for), rint/floor are exact, and a clip saturates; every mantissa of a
# type this narrow is exact in float32, so the first GEMM reads the result without another pass.
_FLOAT_INPUT_ROUNDINGS = ("RND_CONV", "TRN", "RND")
_FLOAT_INPUT_MAX_WIDTH = 22  # every mantissa, and the clip bounds, exact in float32 with room to spare


def float_input_ok(t: FixedType) -> bool:
    """True when ``from_float_mantissas`` applies to type t (x float32 or float64)."""
    return (
        not _reference_only(t)
        and t.saturation in ("SAT", "SAT_SYM")
        and t.rounding in _FLOAT_INPUT_ROUNDINGS
        and 0 <= t.frac <= 100
        and t.width <= _FLOAT_INPUT_MAX_WIDTH
    )


def from_float_mantissas(x: np.ndarray, t: FixedType) -> np.ndarray | None:
    """``from_float(x, t)`` as exact-integer floats of x's dtype (a new array), or None when x holds a NaN.

    Requires ``float_input_ok(t)`` and x float32/float64.
    """
    v = np.multiply(x, x.dtype.type(2.0**t.frac))
    if t.rounding == "TRN":
        np.floor(v, out=v)
    elif t.rounding == "RND_CONV":
        np.rint(v, out=v)
    else:  # RND, ties up: v + 0.5 would round (0.5 - 2**-54 + 0.5 == 1.0); v - rint(v) is exact
        r = np.rint(v)
        v -= r
        r += v == 0.5  # the ties rint sent down to even
        v = r
    lo = t.min_mantissa + (1 if t.saturation == "SAT_SYM" and t.signed else 0)
    clip(v, x.dtype.type(lo), x.dtype.type(t.max_mantissa), out=v)
    # NaN survives rint and clip, and a min-reduction returns it: the cheapest pass that sees one
    if v.size and np.isnan(np.minimum.reduce(v, axis=None)):
        return None
    return v
