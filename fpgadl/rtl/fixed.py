"""ap_fixed assignments as da4ml operations: the traced counterpart of ``emulator/fastfixed.py``.

da4ml's own ``quantize`` knows two rounding modes (TRN, RND) and applies saturation before rounding;
the firmware's ``ap_fixed`` assignment rounds first (seven modes) and then wraps or saturates.  Here
each rounding mode is one bias added to the exact value before a truncation, exactly as
``fastfixed._round_int`` does on mantissas, and saturation is a clip after it, so the traced
program computes what ``fastfixed.cast`` computes.  Every value a traced variable can take lies in
its interval (da4ml's interval analysis), so steps that cannot act cost no hardware.
"""

from __future__ import annotations

import numpy as np
from da4ml.trace import FixedVariable, FixedVariableArray

from fpgadl.emulator.fixed import FixedType

# Integer bits of the intermediate "no overflow yet" truncation: da4ml narrows it to the operand's
# interval, so it only has to exceed any width a real design reaches.
_WIDE = 96


class NotTraceable(ValueError):
    """A type or operation that has no exact traced form (the layer is refused)."""


def kif(t: FixedType) -> tuple[int, int, int]:
    """da4ml's (keep_negative, integer bits without sign, fractional bits) of an ap_fixed type."""
    return int(t.signed), t.integer - int(t.signed), t.frac


def _select_negative(x: FixedVariable, if_neg, if_not):
    """if_neg where x < 0 else if_not; decided at trace time when x's interval has one sign."""
    if x.low >= 0:
        return if_not
    if x.high < 0:
        return if_neg
    return x.msb_mux(if_neg, if_not)


def _kept_lsb(x: FixedVariable, frac: int) -> FixedVariable:
    """The bit of weight 2**-frac of x, as the value 0 or 2**-frac (a 1-bit unsigned wrap)."""
    return x.quantize(0, 1 - frac, frac, "WRAP", "TRN")


def _round_bias(x: FixedVariable, src_frac: int, dst_frac: int, rounding: str) -> FixedVariable:
    """x plus the bias that makes a floor to 2**-dst_frac round with `rounding` (fastfixed._round_int)."""
    e = 2.0**-src_frac  # one unit of the source
    h = 2.0 ** -(dst_frac + 1)  # half a unit of the target
    if rounding == "RND":  # ties up
        return x + h
    if rounding == "RND_MIN_INF":  # ties down
        return x + (h - e)
    if rounding == "RND_CONV":  # ties to even: one unit more when the kept LSB is odd
        return x + (h - e) + _kept_lsb(x, dst_frac) * 2.0 ** (dst_frac - src_frac)
    if rounding == "RND_INF":  # ties away from zero
        return _select_negative(x, x + (h - e), x + h)
    if rounding == "RND_ZERO":  # ties toward zero
        return _select_negative(x, x + h, x + (h - e))
    if rounding == "TRN_ZERO":  # toward zero
        return _select_negative(x, x + (2.0**-dst_frac - e), x)
    raise NotTraceable(f"rounding mode {rounding}")


def _overflow(x: FixedVariable, t: FixedType) -> FixedVariable:
    k, i, f = kif(t)
    lo, hi = t.min_mantissa * 2.0**-f, t.max_mantissa * 2.0**-f
    if t.saturation == "WRAP":
        return x.quantize(k, i, f, "WRAP", "TRN")
    if t.saturation == "SAT_SYM" and t.signed:
        lo = -hi
    elif t.saturation not in ("SAT", "SAT_SYM"):
        raise NotTraceable(f"overflow mode {t.saturation}")
    if x.low < lo:
        x = x.max_of(lo)
    if x.high > hi:
        x = x.min_of(hi)
    return x.quantize(k, i, f, "WRAP", "TRN")  # the value fits: only narrows the recorded width


def check_traceable(t: FixedType) -> None:
    if t.saturation_bits:
        raise NotTraceable(f"{t.cpp()}: AP_WRAP with saturation bits")
    if t.saturation == "SAT_ZERO":
        raise NotTraceable(f"{t.cpp()}: AP_SAT_ZERO")
    if t.saturation == "SAT_SYM" and t.width == 1:
        raise NotTraceable(f"{t.cpp()}: 1-bit AP_SAT_SYM")


def cast_var(x: FixedVariable, src_frac: int, dst: FixedType) -> FixedVariable:
    """``dst_t y = x;`` for x exact on the grid 2**-src_frac: round (dst's mode), then overflow."""
    if src_frac > dst.frac and dst.rounding != "TRN":
        x = _round_bias(x, src_frac, dst.frac, dst.rounding)
    if src_frac > dst.frac:
        x = x.quantize(1, _WIDE, dst.frac, "WRAP", "TRN")  # floor to the target grid, no wrap yet
    return _overflow(x, dst)


def cast(x: FixedVariableArray, src_frac: int, dst: FixedType) -> FixedVariableArray:
    """Element-wise ``cast_var`` over an array (the shape is kept)."""
    check_traceable(dst)
    flat = [cast_var(v, src_frac, dst) for v in x._vars.ravel()]
    out = np.empty(len(flat), dtype=object)
    out[:] = flat
    return FixedVariableArray(out.reshape(x.shape), x.solver_options, hwconf=x.hwconf)


def convert(x: FixedVariableArray, src: FixedType, dst: FixedType) -> FixedVariableArray:
    """Assignment from type src to type dst (nothing when the types are equal)."""
    return x if src == dst else cast(x, src.frac, dst)
