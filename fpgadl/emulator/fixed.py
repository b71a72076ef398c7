"""Bit-exact numpy model of Xilinx ``ap_fixed`` conversions, the core of the emulator.

A fixed-point value is an int64 *mantissa* ``m`` together with a number of fractional bits
``frac``: its value is ``m * 2**-frac``. :class:`FixedType` describes an
``ap_[u]fixed<W, I, Q, O, N>``; :func:`from_float` reproduces ``ap_fixed<...> v = (double)x;`` and
:func:`cast` reproduces the converting constructor/assignment from another ``ap_fixed``. Both are
vectorised ports of ``ap_fixed_base(double)`` and ``ap_fixed_base::operator=`` from the
``ap_fixed_base.h`` that hls4ml ships (``hls4ml/templates/vivado/ap_types``), statement for
statement, so that quirks of the header are reproduced rather than "corrected":

* the double is decoded as ``(-1)**s * 1.fraction * 2**(exponent-1023)`` with the implicit bit set
  unconditionally, so ``±0.0`` give 0, subnormals are read as if normal (exponent -1023), and
  ``±inf`` / NaN are read as ``±1.fraction * 2**1024`` (a huge value that saturates or wraps; the
  header only prints a warning for NaN). Every other double converts exactly (no intermediate
  rounding, any magnitude);
* ``AP_SAT_SYM`` gives ``-max`` instead of ``min`` for negative overflow *and* for a signed
  source whose rounded result is exactly ``min``; for unsigned targets it behaves as ``AP_SAT``;
* ``AP_WRAP`` with ``N > 0`` saturation bits: on overflow the top N bits are forced (signed: sign
  bit = source sign and the next N-1 bits = its complement; unsigned: the top N bits to 1, also on
  negative input); ``AP_SAT_ZERO`` gives 0 on any overflow.

Mantissas of a type are held in int64 (raw bits in uint64 internally); types that do not fit
(signed W > 64, unsigned W > 63) raise :class:`UnsupportedTypeError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

ROUNDING_MODES = ("TRN", "TRN_ZERO", "RND", "RND_ZERO", "RND_MIN_INF", "RND_INF", "RND_CONV")
SATURATION_MODES = ("WRAP", "SAT", "SAT_ZERO", "SAT_SYM")

# Keeps every shift/position computation far inside int64; real types are nowhere near this.
_MAX_ABS_EXPONENT = 1 << 20

_U64 = np.uint64
_ALL_ONES = np.uint64(0xFFFF_FFFF_FFFF_FFFF)


class UnsupportedTypeError(ValueError):
    """A type (or value) the int64 emulator cannot represent exactly."""


@dataclass(frozen=True)
class FixedType:
    """``ap_fixed<width, integer, AP_<rounding>, AP_<saturation>, saturation_bits>`` (or ap_ufixed)."""

    width: int  # total bits W
    integer: int  # integer bits I (may be negative or > W), like ap_fixed<W,I>
    signed: bool = True
    rounding: str = "TRN"  # quantization mode, without the AP_ prefix
    saturation: str = "WRAP"  # overflow mode, without the AP_ prefix
    saturation_bits: int = 0  # N of ap_fixed<W,I,Q,O,N> (only used with WRAP)

    def __post_init__(self) -> None:
        for name in ("width", "integer", "saturation_bits"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"FixedType.{name} must be an int, got {value!r}")
            object.__setattr__(self, name, int(value))
        object.__setattr__(self, "signed", bool(self.signed))
        rounding = _strip_mode(self.rounding)
        saturation = _strip_mode(self.saturation)
        if rounding not in ROUNDING_MODES:
            raise ValueError(f"rounding mode {self.rounding!r} is not one of {', '.join(ROUNDING_MODES)}")
        if saturation not in SATURATION_MODES:
            raise ValueError(
                f"saturation mode {self.saturation!r} is not one of {', '.join(SATURATION_MODES)}"
            )
        object.__setattr__(self, "rounding", rounding)
        object.__setattr__(self, "saturation", saturation)
        if self.width < 1:
            raise ValueError(f"width must be >= 1, got {self.width}")
        if not 0 <= self.saturation_bits <= self.width:
            raise ValueError(f"saturation_bits must be in 0..width={self.width}, got {self.saturation_bits}")

    @property
    def frac(self) -> int:
        """Number of fractional bits, W - I (negative when I > W)."""
        return self.width - self.integer

    @property
    def min_mantissa(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_mantissa(self) -> int:
        return (1 << (self.width - self.signed)) - 1

    def check_supported(self) -> None:
        """Raise UnsupportedTypeError unless every mantissa of this type fits an int64 exactly."""
        limit = 64 if self.signed else 63
        if self.width > limit:
            raise UnsupportedTypeError(
                f"{self.cpp()}: width {self.width} exceeds the {limit} bits an int64 mantissa holds "
                f"exactly for {'signed' if self.signed else 'unsigned'} types"
            )
        if abs(self.integer) > _MAX_ABS_EXPONENT:
            raise UnsupportedTypeError(
                f"{self.cpp()}: integer bits beyond ±{_MAX_ABS_EXPONENT} are not supported"
            )

    @classmethod
    def from_hls4ml(cls, precision) -> FixedType:
        """From an hls4ml FixedPrecisionType / IntegerPrecisionType, or a NamedType holding one."""
        from hls4ml.model.types import FixedPrecisionType, IntegerPrecisionType, NamedType, XnorPrecisionType

        if isinstance(precision, NamedType):
            precision = precision.precision
        if isinstance(precision, FixedPrecisionType):
            return cls(
                width=precision.width,
                integer=precision.integer,
                signed=precision.signed,
                rounding=precision.rounding_mode.name,
                saturation=precision.saturation_mode.name,
                saturation_bits=precision.saturation_bits or 0,
            )
        if isinstance(precision, XnorPrecisionType):  # a bipolar value as ap_uint<1> (0 means -1)
            return cls(width=1, integer=1, signed=False)
        if isinstance(precision, IntegerPrecisionType):
            return cls(width=precision.width, integer=precision.width, signed=precision.signed)
        raise UnsupportedTypeError(
            f"hls4ml precision {type(precision).__name__} ({precision}) is not a fixed-point or integer "
            "type; the emulator supports FixedPrecisionType, IntegerPrecisionType and XnorPrecisionType only"
        )

    @classmethod
    def parse(cls, text: str) -> FixedType:
        """Parse C++ or hls4ml spellings: ap_fixed<8,3,AP_RND_CONV,AP_SAT>, fixed<8,3,RND,SAT,0>, uint<4>..."""
        match = _TYPE_RE.fullmatch(text.strip())
        if match is None:
            raise ValueError(
                f"cannot parse fixed-point type {text!r}; expected e.g. 'ap_fixed<8,3>', "
                "'ap_ufixed<8,3,AP_RND,AP_SAT>', 'fixed<8,3,RND_CONV,SAT,0>', 'ap_int<8>', 'uint<4>'"
            )
        prefix, unsigned, kind, args = match.groups()
        if prefix == "ac_":
            raise UnsupportedTypeError(f"{text!r}: ac_fixed/ac_int (Catapult) types are not supported")
        params = [p.strip() for p in args.split(",")] if args.strip() else []
        signed = unsigned is None
        try:
            if kind == "int":
                if len(params) != 1:
                    raise ValueError("integer types take exactly one parameter <W>")
                width = int(params[0])
                return cls(width=width, integer=width, signed=signed)
            if not 2 <= len(params) <= 5:
                raise ValueError("fixed types take 2 to 5 parameters <W,I[,Q[,O[,N]]]>")
            return cls(
                width=int(params[0]),
                integer=int(params[1]),
                signed=signed,
                rounding=params[2] if len(params) > 2 else "TRN",
                saturation=params[3] if len(params) > 3 else "WRAP",
                saturation_bits=int(params[4]) if len(params) > 4 else 0,
            )
        except ValueError as err:
            if isinstance(err, UnsupportedTypeError):
                raise
            raise ValueError(f"cannot parse fixed-point type {text!r}: {err}") from None

    def cpp(self) -> str:
        """C++ spelling with every template parameter, e.g. 'ap_fixed<8,3,AP_RND_CONV,AP_SAT,0>'."""
        kind = "ap_fixed" if self.signed else "ap_ufixed"
        return f"{kind}<{self.width},{self.integer},AP_{self.rounding},AP_{self.saturation},{self.saturation_bits}>"


_TYPE_RE = re.compile(r"(ap_|ac_)?(u)?(fixed|int)\s*<([^<>]*)>", re.IGNORECASE)


def _strip_mode(mode) -> str:
    name = getattr(mode, "name", mode)  # accept hls4ml's RoundingMode / SaturationMode enums too
    if not isinstance(name, str):
        raise TypeError(f"mode must be a string, got {mode!r}")
    name = name.strip().upper()
    return name.removeprefix("AP_")


# --------------------------------------------------------------------------------------------------
# bit helpers over uint64 arrays (positions are int64 arrays; out-of-range lanes are masked by callers)


def _ones(n: np.ndarray | int) -> np.ndarray:
    """uint64 with the n (1..64) low bits set; n outside that range is clipped."""
    n = np.clip(np.asarray(n, dtype=np.int64), 1, 64)
    return _ALL_ONES >> (64 - n).astype(_U64)


def _bit(raw: np.ndarray, pos) -> np.ndarray:
    pos = np.clip(np.asarray(pos, dtype=np.int64), 0, 63).astype(_U64)
    return ((raw >> pos) & _U64(1)).astype(bool)


def _field(raw: np.ndarray, lo, hi) -> tuple[np.ndarray, np.ndarray]:
    """Bits lo..hi (inclusive, lo <= hi) shifted down, and the all-ones pattern of that width."""
    lo = np.clip(np.asarray(lo, dtype=np.int64), 0, 63)
    hi = np.clip(np.asarray(hi, dtype=np.int64), lo, 63)
    ones = _ones(hi - lo + 1)
    return (raw >> lo.astype(_U64)) & ones, ones


def _signed_value(raw: np.ndarray, width: int) -> np.ndarray:
    """Two's-complement reading of the low `width` bits as int64."""
    if width == 64:
        return raw.view(np.int64)
    sign = np.int64(1 << (width - 1))
    return (raw.astype(np.int64) ^ sign) - sign


def _quantization_adjust(v, qb, r, s, t: FixedType):
    """ap_fixed_base::quantization_adjust: returns (new raw, carry out of the sign bit)."""
    w = t.width
    carry = _bit(v, w - 1)
    q = t.rounding
    if q == "RND_ZERO":
        qb = qb & (s | r)
    elif q == "RND_MIN_INF":
        qb = qb & r
    elif q == "RND_INF":
        qb = qb & (~s | r)
    elif q == "RND_CONV":
        qb = qb & (_bit(v, 0) | r)
    elif q == "TRN_ZERO":
        qb = s & (qb | r)
    v = (v + qb.astype(_U64)) & _ones(w)
    return v, carry & ~_bit(v, w - 1)


def _overflow_adjust(v, underflow, overflow, sign, t: FixedType):
    """ap_fixed_base::overflow_adjust (lD only matters for AP_WRAP_SM, which is not modelled)."""
    w, n, o = t.width, t.saturation_bits, t.saturation
    hit = underflow | overflow
    mask_w = _ones(w)
    if o == "WRAP":
        if n == 0:
            return v
        if t.signed:
            top = _U64(1) << _U64(w - 1)
            adj = np.where(sign, v | top, v & ~top)
            if n > 1:
                band = _ones(n - 1) << _U64(w - n)  # bits w-n .. w-2
                adj = np.where(sign, adj & ~band, adj | band)
        else:
            band = _ones(n) << _U64(w - n)  # bits w-n .. w-1
            adj = v | band
    elif o == "SAT_ZERO":
        adj = np.zeros_like(v)
    else:  # SAT, SAT_SYM
        if t.signed:
            max_raw = _ones(w - 1) if w > 1 else _U64(0)
            min_raw = _U64(1) << _U64(w - 1)
            if o == "SAT_SYM":
                min_raw = min_raw | _U64(1)
            adj = np.where(overflow, max_raw, np.where(underflow, min_raw, v))
        else:
            adj = np.where(overflow, mask_w, np.where(underflow, _U64(0), v))
    return np.where(hit, adj, v).astype(_U64)


def _convert(raw: np.ndarray, w2: int, f2: np.ndarray, s2: bool, t: FixedType) -> np.ndarray:
    """ap_fixed_base<t>::operator=(ap_fixed_base<w2, w2-f2, s2>) on raw source bits.

    `raw` holds the source's w2-bit patterns in uint64; `f2` its fractional bits, an int64 scalar
    (cast) or one per element (the double constructor: one exponent per value).
    Returns the target's raw bits.
    """
    w, f, s = t.width, t.frac, t.signed
    mask_w = _ones(w)
    i2 = w2 - f2
    signbit = _bit(raw, w2 - 1)
    isneg = signbit & s2
    sval = _signed_value(raw, w2) if s2 else raw.astype(np.int64)
    rounds = t.rounding != "TRN" and not (t.rounding == "TRN_ZERO" and not s2)
    quan_inc = (f2 > f) & rounds

    v = np.zeros(raw.shape, dtype=_U64)
    carry = np.zeros(raw.shape, dtype=bool)

    # each branch is computed only where some element takes it (cast: exactly one of them)
    same = f2 == f
    if np.any(same):
        v = np.where(same, sval.view(_U64) & mask_w, v)

    # fewer fractional bits: shift right, then quantize
    down = f2 > f
    if np.any(down):
        sh = np.where(down, f2 - f, 0)
        shifted = (sval >> np.clip(sh, 0, 63)).view(_U64) & mask_w
        fill = np.where(isneg, mask_w, _U64(0))
        v = np.where(down, np.where(sh < w2, shifted, fill), v)
        if rounds:
            qbit = _bit(raw, sh - 1)
            qb = np.where(sh > w2, s2 & signbit, qbit)
            rest, _ = _field(raw, 0, np.minimum(sh - 2, w2 - 1))
            r = (sh > 1) & (rest != 0)
            vq, cq = _quantization_adjust(v, qb, r, isneg, t)
            v = np.where(down, vq, v)
            carry = down & cq

    # more fractional bits: shift left, no quantization
    up = f2 < f
    if np.any(up):
        shl = np.where(up, f - f2, 0)
        lifted = (sval.view(_U64) << np.clip(shl, 0, 63).astype(_U64)) & mask_w
        v = np.where(up, np.where(shl < w, lifted, _U64(0)), v)

    if t.saturation == "WRAP" and t.saturation_bits == 0:
        return v
    check = (not s and s2) | (t.integer - s < i2 - s2 + (quan_inc | (s2 and t.saturation == "SAT_SYM")))
    if not np.any(check):
        return v

    newsignbit = _bit(v, w - 1)
    pos1 = f2 - f + w
    pos2 = pos1 + 1
    ld = (pos1 >= 0) & (pos1 < w2) & _bit(raw, pos1)
    in_src = pos1 < w2

    r2, r2_ones_pat = _field(raw, pos2, w2 - 1)
    range2_all_ones = np.where((pos2 >= 0) & (pos2 < w2), r2 == r2_ones_pat, pos2 >= 0)
    r1, r1_ones_pat = _field(raw, pos1, w2 - 1)
    case_a = (pos1 >= 0) & (pos2 < w2)
    case_b = ~case_a & (pos2 == w2)
    case_c = ~case_a & ~case_b & (pos1 < 0)
    range1_all_ones = np.select([case_a, case_b, case_c], [r1 == r1_ones_pat, ld, False], True)
    range1_all_zeros = np.select([case_a, case_b, case_c], [r1 == 0, ~ld, raw == 0], True)

    dz0 = np.ones(raw.shape, dtype=bool) if s2 else ~carry
    deleted_zeros = np.where(in_src, dz0 & np.where(carry, range1_all_ones, range1_all_zeros), dz0)
    deleted_ones = np.where(
        in_src, np.where(carry, range2_all_ones & ((pos1 < 0) | ~ld), range1_all_ones), True
    )
    neg_src = np.where(in_src, isneg & ~(carry & range1_all_ones), isneg & newsignbit)
    neg_trg = newsignbit & s
    overflow = (neg_trg | ~deleted_zeros) & ~isneg
    underflow = (~neg_trg | ~deleted_ones) & neg_src
    if t.saturation == "SAT_SYM" and s2 and s:
        low_zero = (_field(v, 0, w - 2)[0] == 0) if w > 1 else True
        underflow = underflow | (neg_src & low_zero)
    adjusted = _overflow_adjust(v, underflow, overflow, neg_src, t)
    return np.where(check, adjusted, v)


def _raw_to_mantissa(v: np.ndarray, t: FixedType) -> np.ndarray:
    return _signed_value(v, t.width) if t.signed else v.astype(np.int64)


# --------------------------------------------------------------------------------------------------
# public conversions

_DOUBLE_MAN = 52
_DOUBLE_BIAS = 1023


def from_float(x: np.ndarray, t: FixedType) -> np.ndarray:
    """int64 mantissas m such that m * 2**-t.frac == t(x) exactly as C++ `ap_fixed<...> v = (double)x;` gives.

    float32 inputs are widened to double first, as ``ap_fixed_base(float)`` does. ±inf and NaN
    convert as the header reads them (a huge magnitude; see the module docstring), so callers that
    must refuse them check at their boundary.
    """
    t.check_supported()
    x = np.asarray(x)
    if x.dtype.kind in "iu" and x.size and int(np.max(np.abs(x.astype(np.float64)))) >= 1 << 53:
        raise UnsupportedTypeError(
            "integers of 2**53 and more do not convert to double exactly; use cast(m, 0, t) for integer inputs"
        )
    x = np.asarray(x, dtype=np.float64)
    if not x.flags.c_contiguous:
        x = x.copy()
    bits = x.view(_U64)
    isneg = (bits >> _U64(63)).astype(bool)
    exp = ((bits >> _U64(_DOUBLE_MAN)) & _U64(0x7FF)).astype(np.int64) - _DOUBLE_BIAS
    man = ((bits & _U64((1 << _DOUBLE_MAN) - 1)) | _U64(1 << _DOUBLE_MAN)).astype(np.int64)
    man = np.where(isneg, -man, man)
    w2 = _DOUBLE_MAN + 2  # the header holds the significand in a signed 54-bit ap_int
    raw = man.view(_U64) & _ones(w2)
    f2 = w2 - (exp + 2)
    v = _convert(raw, w2, f2, True, t)
    v = np.where((bits & _U64(0x7FFF_FFFF_FFFF_FFFF)) == 0, _U64(0), v)
    return _raw_to_mantissa(v, t)


def cast(m: np.ndarray, frac: int, t: FixedType, *, src: FixedType | None = None) -> np.ndarray:
    """value m * 2**-frac (m int64, frac any int) converted to type t, exactly as ap_fixed's converting
    assignment/constructor from another ap_fixed does (quantization then overflow). Returns int64 mantissa of t.

    `src` optionally names the source ap_fixed type (then ``frac == src.frac`` and m must fit it);
    by default the source is taken to be a signed 64-bit container with `frac` fractional bits,
    which gives the same result as any narrower source holding the same value (tested against
    the header for random source types). One divergence from csim: when the source has more than
    ``src.width`` fractional bits beyond the target's and the target rounds, the header reads a
    bit beyond the source's MSB and ap_private's assert aborts the (non-NDEBUG) csim build; here
    the value the header computes with NDEBUG is returned.
    """
    t.check_supported()
    frac = int(frac)
    if abs(frac) > _MAX_ABS_EXPONENT:
        raise UnsupportedTypeError(f"frac={frac} is beyond ±{_MAX_ABS_EXPONENT}")
    m = np.asarray(m)
    if m.dtype.kind not in "iu":
        raise TypeError(f"mantissas must be an integer array, got dtype {m.dtype}")
    if m.dtype == np.uint64 and m.size and int(m.max()) > np.iinfo(np.int64).max:
        raise UnsupportedTypeError("mantissas above 2**63-1 do not fit int64")
    m = m.astype(np.int64)
    if src is None:
        w2, s2 = 64, True
        raw = m.view(_U64)
    else:
        src.check_supported()
        if src.frac != frac:
            raise ValueError(f"frac={frac} does not match the source type {src.cpp()} (frac {src.frac})")
        if m.size and (int(m.min()) < src.min_mantissa or int(m.max()) > src.max_mantissa):
            raise ValueError(f"mantissas outside the range of the source type {src.cpp()}")
        w2, s2 = src.width, src.signed
        raw = m.view(_U64) & _ones(w2)
    return _raw_to_mantissa(_convert(raw, w2, np.int64(frac), s2, t), t)


def to_float(m: np.ndarray, t_or_frac: FixedType | int) -> np.ndarray:
    """float64 values m * 2**-frac.

    Exact while |m| <= 2**53 and the result is a normal double; larger mantissas round to nearest,
    ties to even, which is also what ``ap_fixed::to_double()`` does.
    """
    frac = t_or_frac.frac if isinstance(t_or_frac, FixedType) else int(t_or_frac)
    return np.ldexp(np.asarray(m, dtype=np.int64).astype(np.float64), -frac)
