"""fpgadl.emulator.fixed against the ap_fixed headers hls4ml ships, compiled with g++.

The reference is hls/harness/fixed_harness*.{h,cpp} instantiated for a fixed, seeded set of target
types and (source, target) pairs: C++ template parameters cannot vary at run time, so the types
are drawn once per session (every signedness x rounding x overflow mode, widths 1..40 plus the
int64 limits, integer bits below 0 and above the width, saturation bits) and compiled into one
binary; hypothesis and a bulk numpy sweep then vary the values. Results are compared as raw bits.
Like hls4ml's csim build, the main binary keeps ap_private's asserts; the few casts on which the
header asserts run in a second, NDEBUG binary.
Set FPGADL_FIXED_SEED to draw a different type set.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import struct
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fpgadl.emulator.fixed import (
    ROUNDING_MODES,
    SATURATION_MODES,
    FixedType,
    UnsupportedTypeError,
    cast,
    from_float,
    to_float,
)

CPP_DIR = Path(__file__).resolve().parent.parent / "hls" / "harness"


def _ap_types_dir() -> Path:
    import hls4ml

    return Path(hls4ml.__file__).parent / "templates" / "vivado" / "ap_types"


# --------------------------------------------------------------------------------------------------
# the type set compiled into the harness


def _random_type(rng: random.Random, signed: bool, rounding: str, saturation: str) -> FixedType:
    width = rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 24, 32, 33, 40, rng.randint(1, 40)])
    if not signed and width == 1 and rng.random() < 0.5:
        width = 2
    integer = rng.choice([rng.randint(-12, width + 12), rng.randint(-3, 3), width, width - 1, 0])
    if saturation == "WRAP":
        n = rng.choice([0, 0, 1, 2, rng.randint(1, width)])
    else:
        n = rng.choice([0, 0, 0, rng.randint(0, width)])  # ignored by the header unless WRAP
    return FixedType(width, integer, signed, rounding, saturation, min(n, width))


_SPECIAL_TARGETS = [
    "ap_fixed<8,3,AP_RND_CONV,AP_SAT>",
    "ap_fixed<16,6>",
    "ap_fixed<8,3,AP_TRN,AP_SAT_SYM>",
    "ap_fixed<8,3,AP_TRN,AP_WRAP,1>",
    "ap_fixed<8,3,AP_TRN,AP_WRAP,2>",
    "ap_ufixed<8,3,AP_RND,AP_WRAP,3>",
    "ap_int<8>",
    "ap_uint<4>",
    "ap_fixed<1,1,AP_RND,AP_SAT>",
    "ap_fixed<1,-3,AP_RND_CONV,AP_SAT_SYM>",
    "ap_ufixed<1,0,AP_RND_INF,AP_SAT>",
    "ap_fixed<64,32,AP_RND,AP_SAT>",
    "ap_fixed<64,-5,AP_RND_CONV,AP_WRAP>",
    "ap_fixed<64,64,AP_TRN_ZERO,AP_SAT_SYM>",
    "ap_ufixed<63,40,AP_RND_INF,AP_SAT>",
    "ap_ufixed<63,0,AP_RND_MIN_INF,AP_WRAP,5>",
    "ap_fixed<54,2,AP_RND_ZERO,AP_SAT>",
    "ap_fixed<53,53,AP_RND_CONV,AP_SAT>",
    "ap_fixed<8,1030,AP_TRN,AP_SAT>",  # around the largest doubles and inf
    "ap_fixed<12,1100,AP_RND,AP_WRAP>",
    "ap_ufixed<10,1025,AP_RND,AP_SAT_ZERO>",
    "ap_fixed<10,-1064,AP_RND,AP_SAT>",  # LSB 2**-1074: subnormal doubles
    "ap_fixed<24,-1000,AP_RND_CONV,AP_WRAP,2>",
]


@dataclass(frozen=True)
class TypeSet:
    float_targets: list[FixedType]  # for `T v = (double)x`
    cast_pairs: list[tuple[FixedType, FixedType]]  # (source, target) for `T v = s`
    assert_pairs: list[tuple[FixedType, FixedType]]  # the same, where the header asserts (see below)


def _header_asserts(src: FixedType, dst: FixedType) -> bool:
    """operator= reads bit F2-F-1 of the source even when it lies beyond the source's MSB.

    ap_private's get_bit asserts on that (hls4ml builds csim without NDEBUG, so csim aborts);
    the bit is then unused, so with NDEBUG the conversion is well defined.
    """
    rounds = dst.rounding != "TRN" and not (dst.rounding == "TRN_ZERO" and not src.signed)
    return rounds and src.frac - dst.frac > src.width


def _make_type_set(seed: int) -> TypeSet:
    rng = random.Random(seed)
    combos = [(s, q, o) for s in (True, False) for q in ROUNDING_MODES for o in SATURATION_MODES]
    # one type per mode combination and a second for a random half of them: every instantiation
    # costs ~50 ms of compile time
    float_targets = [FixedType.parse(text) for text in _SPECIAL_TARGETS]
    for signed, q, o in combos + rng.sample(combos, len(combos) // 2):
        float_targets.append(_random_type(rng, signed, q, o))

    cast_pairs, assert_pairs = [], []
    for signed, q, o in combos + rng.sample(combos, len(combos) // 2):
        dst = _random_type(rng, signed, q, o)
        src_signed = rng.random() < 0.7
        src = _random_type(rng, src_signed, rng.choice(ROUNDING_MODES), rng.choice(SATURATION_MODES))
        if rng.random() < 0.1:  # the widest sources an int64 mantissa holds
            width = 64 if src_signed else 63
            src = FixedType(width, rng.randint(-8, width + 8), src_signed)
        (assert_pairs if _header_asserts(src, dst) else cast_pairs).append((src, dst))
    while len(assert_pairs) < 16:
        dst = _random_type(
            rng, rng.random() < 0.5, rng.choice(ROUNDING_MODES[1:]), rng.choice(SATURATION_MODES)
        )
        width = rng.randint(1, 24)
        src = FixedType(width, dst.integer - rng.randint(width + 1, width + 20), rng.random() < 0.7)
        if _header_asserts(src, dst):
            assert_pairs.append((src, dst))
    identity = FixedType.parse("ap_fixed<8,3,AP_RND_CONV,AP_SAT>")
    cast_pairs += [
        (FixedType(16, 6), identity),
        (FixedType(8, 3), FixedType(8, 3, True, "RND", "SAT_SYM")),  # min of a signed source
        (FixedType(12, 4, False), FixedType(8, 3, True, "RND", "SAT")),
        (FixedType(40, 20), FixedType(8, 8, False, "RND_CONV", "WRAP", 3)),
        (FixedType(64, 30), FixedType(64, 40, True, "RND", "SAT")),
    ]
    return TypeSet(float_targets, cast_pairs, assert_pairs)


TYPES = _make_type_set(int(os.environ.get("FPGADL_FIXED_SEED", "20250611")))


# --------------------------------------------------------------------------------------------------
# building and running the harness


def _table_source(name: str, kind: str, entries: list[str]) -> str:
    entries = entries or ["0"]
    body = "".join(f"    {e},\n" for e in entries)
    return (
        '#include "fixed_harness.h"\n'
        f"extern const {kind} {name}[] = {{\n{body}}};\n"
        f"extern const int N_{name} = {len(entries)};\n"
    )


def _from_double_entry(t: FixedType) -> str:
    return f"&from_double<{t.cpp()} >"


def _from_fixed_entry(src: FixedType, dst: FixedType) -> str:
    return f"&from_fixed<{src.cpp()}, {dst.cpp()} >"


class Harness:
    def __init__(self, exe: Path):
        self.exe = exe

    def run(self, lines: list[str]) -> list[tuple[int, int]]:
        proc = subprocess.run(
            [str(self.exe)], input="\n".join(lines) + "\n", capture_output=True, text=True, check=False
        )
        # NaN inputs make the header print "WARNING: assign NaN..." on stderr; anything else is fatal.
        assert proc.returncode == 0, f"harness failed ({proc.returncode}): {proc.stderr[-2000:]}"
        out = proc.stdout.split("\n")[:-1]
        assert len(out) == len(lines), proc.stderr[-2000:]
        return [tuple(int(word, 16) for word in row.split()) for row in out]

    def from_double(self, cases: list[tuple[int, float]]) -> list[tuple[int, int]]:
        return self.run([f"F {k} {_double_bits(x):x}" for k, x in cases])

    def from_fixed(self, cases: list[tuple[int, int]]) -> list[tuple[int, int]]:
        return self.run([f"C {k} {m}" for k, m in cases])


def _compile(jobs: list[list[str]]) -> None:
    def run(cmd: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, capture_output=True, text=True, check=False)

    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        for cmd, proc in zip(jobs, pool.map(run, jobs)):
            assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr[-4000:]}"


@pytest.fixture(scope="session")
def harnesses(tmp_path_factory) -> tuple[Harness, Harness]:
    """(csim-like build, NDEBUG build for the pairs on which the header asserts)."""
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ not found: the ap_fixed reference harness cannot be compiled")
    ap_types = _ap_types_dir()
    if not (ap_types / "ap_fixed_base.h").exists():
        pytest.skip(f"hls4ml's ap_types headers not found under {ap_types}")
    build = tmp_path_factory.mktemp("ap_fixed_harness")
    # hls4ml compiles csim without NDEBUG, so ap_private's asserts are live in the main build.
    flags = ["-O1", "-std=c++17", f"-I{ap_types}", f"-I{CPP_DIR}"]
    sources = {
        "fd": _table_source(
            "FROM_DOUBLE", "FromDouble", [_from_double_entry(t) for t in TYPES.float_targets]
        ),
        "ff": _table_source(
            "FROM_FIXED", "FromFixed", [_from_fixed_entry(s, d) for s, d in TYPES.cast_pairs]
        ),
        "nd": _table_source("FROM_DOUBLE", "FromDouble", [])
        + _table_source("FROM_FIXED", "FromFixed", [_from_fixed_entry(s, d) for s, d in TYPES.assert_pairs]),
    }
    for name, text in sources.items():
        (build / f"{name}.cpp").write_text(text)
    main = str(CPP_DIR / "fixed_harness_main.cpp")
    _compile(
        [
            [gxx, *flags, "-c", str(build / "fd.cpp"), "-o", str(build / "fd.o")],
            [gxx, *flags, "-c", str(build / "ff.cpp"), "-o", str(build / "ff.o")],
            [gxx, *flags, "-c", main, "-o", str(build / "main.o")],
            [gxx, *flags, "-DNDEBUG", main, str(build / "nd.cpp"), "-o", str(build / "harness_ndebug")],
        ]
    )
    _compile([[gxx, *(str(build / f) for f in ("main.o", "fd.o", "ff.o")), "-o", str(build / "harness")]])
    return Harness(build / "harness"), Harness(build / "harness_ndebug")


# --------------------------------------------------------------------------------------------------
# helpers


def _double_bits(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def _mantissa(raw: int, t: FixedType) -> int:
    raw &= (1 << t.width) - 1
    if t.signed and raw >> (t.width - 1):
        raw -= 1 << t.width
    return raw


def _ldexp(k: float, e: int) -> float:
    try:
        return math.ldexp(k, e)
    except OverflowError:
        return math.copysign(math.inf, k)


def _check_to_double(m: np.ndarray, t: FixedType, dbits: np.ndarray) -> list[str]:
    """to_float agrees with ap_fixed::to_double() wherever the latter is defined (normal doubles)."""
    with np.errstate(over="ignore"):
        ours = to_float(m, t)
    normal = (ours == 0) | ((np.abs(ours) > 2.0**-1000) & (np.abs(ours) < 2.0**1000))
    bad = normal & (ours.view(np.uint64) != dbits)
    return [
        f"to_double {t.cpp()} m={m[i]}: header {dbits[i]:#x}, ours {ours[i]!r}" for i in np.flatnonzero(bad)
    ]


def _compare_from_double(harness: Harness, cases: list[tuple[int, float]]) -> list[str]:
    results = harness.from_double(cases)
    by_type: dict[int, list[int]] = {}
    for i, (k, _) in enumerate(cases):
        by_type.setdefault(k, []).append(i)
    problems = []
    for k, idx in by_type.items():
        t = TYPES.float_targets[k]
        x = np.array([cases[i][1] for i in idx], dtype=np.float64)
        want = np.array([_mantissa(results[i][0], t) for i in idx], dtype=np.int64)
        got = from_float(x, t)
        for j in np.flatnonzero(got != want):
            problems.append(
                f"{t.cpp()} <- {x[j]!r} ({_double_bits(x[j]):#x}): header {want[j]}, ours {got[j]}"
            )
        dbits = np.array([results[i][1] for i in idx], dtype=np.uint64)
        problems += _check_to_double(want, t, dbits)
    return problems


def _compare_from_fixed(harness: Harness, pairs, cases: list[tuple[int, int]]) -> list[str]:
    results = harness.from_fixed(cases)
    by_pair: dict[int, list[int]] = {}
    for i, (k, _) in enumerate(cases):
        by_pair.setdefault(k, []).append(i)
    problems = []
    for k, idx in by_pair.items():
        src, dst = pairs[k]
        m = np.array([cases[i][1] for i in idx], dtype=np.int64)
        want = np.array([_mantissa(results[i][0], dst) for i in idx], dtype=np.int64)
        for label, got in (
            ("cast", cast(m, src.frac, dst)),
            ("cast(src=)", cast(m, src.frac, dst, src=src)),
        ):
            for j in np.flatnonzero(got != want):
                problems.append(
                    f"{label} {dst.cpp()} <- {src.cpp()} m={m[j]}: header {want[j]}, ours {got[j]}"
                )
        dbits = np.array([results[i][1] for i in idx], dtype=np.uint64)
        problems += _check_to_double(want, dst, dbits)
    return problems


def _report(problems: list[str], n_cases: int) -> str:
    return f"{len(problems)} mismatches in {n_cases} cases, first ones:\n" + "\n".join(problems[:20])


# --------------------------------------------------------------------------------------------------
# value generators: on the grid, exact ties, just inside/outside the range, random doubles, specials

_SPECIAL_DOUBLES = [
    0.0,
    -0.0,
    math.inf,
    -math.inf,
    math.nan,
    -math.nan,
    5e-324,
    -5e-324,
    2.0**-1022,
    2.0**-1023,
    -(2.0**-1074) * 3,
    1e-300,
    -1e-300,
    1e300,
    -1e300,
    1.7976931348623157e308,
    -1.7976931348623157e308,
    2.0**63,
    -(2.0**63),
    2.0**64 - 2048,
    0.5,
    -0.5,
    1.0,
    -1.0,
]


def _bulk_doubles(rng: np.random.Generator, t: FixedType, n: int) -> np.ndarray:
    lsb_exp = -t.frac
    lo = max(t.min_mantissa, -(1 << 60))
    hi = min(t.max_mantissa, 1 << 60)
    span = hi - lo + 1
    edges = np.array([lo - 2, lo - 1, lo, lo + 1, hi - 1, hi, hi + 1, hi + 2, -1, 0, 1], dtype=np.float64)
    k = np.concatenate(
        [
            np.tile(edges, n // (4 * len(edges)) + 1),
            rng.integers(max(lo - 2 * span, -(1 << 62)), min(hi + 2 * span, 1 << 62), n // 4).astype(
                np.float64
            ),
        ]
    )
    offsets = rng.choice([0.0, 0.5, -0.5, 0.25, 0.75, 1 / 3, 0.999], size=k.size)
    with np.errstate(over="ignore"):
        grid = np.ldexp(k + offsets, lsb_exp)
    nudged = np.nextafter(grid, rng.choice([-np.inf, np.inf], size=grid.size))
    with np.errstate(over="ignore"):
        wide = np.ldexp(rng.uniform(-1, 1, n // 4), rng.integers(lsb_exp - 60, t.integer + 60, n // 4))
    random_bits = rng.integers(0, 1 << 63, n // 8, dtype=np.int64).view(np.float64)
    random_bits = np.concatenate([random_bits, -random_bits])
    return np.concatenate([grid, nudged, wide, random_bits, np.array(_SPECIAL_DOUBLES)])


def _bulk_mantissas(rng: random.Random, src: FixedType, dst: FixedType, n: int) -> list[int]:
    lo, hi = src.min_mantissa, src.max_mantissa
    shift = src.frac - dst.frac  # one LSB of dst in units of the source's LSB is 2**shift
    out = [lo, lo + 1, hi, hi - 1, 0, 1, -1]
    for _ in range(n):
        k = rng.choice(
            [
                dst.min_mantissa + rng.randint(-3, 3),
                dst.max_mantissa + rng.randint(-3, 3),
                rng.randint(-4, 4),
                rng.randint(dst.min_mantissa, dst.max_mantissa),
            ]
        )
        if shift > 0:
            half = 1 << (shift - 1)
            m = (k << shift) + rng.choice([0, half, half - 1, half + 1, rng.randrange(1 << shift), -1, 1])
        else:
            m = k >> -shift
        if rng.random() < 0.2:
            m = rng.randint(lo, hi)
        out.append(m)
    return [min(max(m, lo), hi) for m in out]


# --------------------------------------------------------------------------------------------------
# reference tests against the compiled header


def test_from_float_matches_header_bulk(harnesses):
    rng = np.random.default_rng(7)
    cases = [(k, float(x)) for k, t in enumerate(TYPES.float_targets) for x in _bulk_doubles(rng, t, 1000)]
    problems = _compare_from_double(harnesses[0], cases)
    assert not problems, _report(problems, len(cases))
    assert len(cases) > 100_000


def test_cast_matches_header_bulk(harnesses):
    rng = random.Random(11)
    cases = [(k, m) for k, (s, d) in enumerate(TYPES.cast_pairs) for m in _bulk_mantissas(rng, s, d, 600)]
    problems = _compare_from_fixed(harnesses[0], TYPES.cast_pairs, cases)
    assert not problems, _report(problems, len(cases))


def test_cast_where_the_header_asserts_matches_ndebug_build(harnesses):
    rng = random.Random(13)
    pairs = TYPES.assert_pairs
    cases = [(k, m) for k, (s, d) in enumerate(pairs) for m in _bulk_mantissas(rng, s, d, 300)]
    problems = _compare_from_fixed(harnesses[1], pairs, cases)
    assert not problems, _report(problems, len(cases))


@st.composite
def _double_case(draw):
    k = draw(st.integers(0, len(TYPES.float_targets) - 1))
    t = TYPES.float_targets[k]
    lo, hi = t.min_mantissa, t.max_mantissa
    grid_k = draw(
        st.one_of(
            st.integers(lo - 3, lo + 3),
            st.integers(hi - 3, hi + 3),
            st.integers(-3, 3),
            st.integers(2 * lo - 1, 2 * hi + 1),
        )
    )
    offset = draw(st.sampled_from([0.0, 0.5, -0.5, 0.25, 0.75, 1 / 3]))
    x = _ldexp(grid_k + offset, -t.frac)
    nudge = draw(st.sampled_from([0, 0, 1, -1]))
    if nudge:
        x = float(np.nextafter(x, nudge * math.inf))
    x = draw(
        st.one_of(
            st.just(x), st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(_SPECIAL_DOUBLES)
        )
    )
    return k, x


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases=st.lists(_double_case(), min_size=1, max_size=40))
def test_from_float_matches_header_hypothesis(harnesses, cases):
    problems = _compare_from_double(harnesses[0], cases)
    assert not problems, _report(problems, len(cases))


@st.composite
def _fixed_case(draw):
    k = draw(st.integers(0, len(TYPES.cast_pairs) - 1))
    src, dst = TYPES.cast_pairs[k]
    shift = src.frac - dst.frac
    m = draw(st.integers(src.min_mantissa, src.max_mantissa))
    if shift > 0 and draw(st.booleans()):  # an exact tie, or one LSB off it
        k_dst = draw(st.integers(2 * dst.min_mantissa - 2, 2 * dst.max_mantissa + 2))
        m = (k_dst << shift) + (1 << (shift - 1)) + draw(st.sampled_from([0, 0, 1, -1]))
        m = min(max(m, src.min_mantissa), src.max_mantissa)
    return k, m


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases=st.lists(_fixed_case(), min_size=1, max_size=40))
def test_cast_matches_header_hypothesis(harnesses, cases):
    problems = _compare_from_fixed(harnesses[0], TYPES.cast_pairs, cases)
    assert not problems, _report(problems, len(cases))


def test_type_set_covers_every_mode():
    seen = {(t.signed, t.rounding, t.saturation) for t in TYPES.float_targets}
    assert len(seen) == 2 * len(ROUNDING_MODES) * len(SATURATION_MODES)
    seen = {(d.signed, d.rounding, d.saturation) for _, d in TYPES.cast_pairs + TYPES.assert_pairs}
    assert len(seen) == 2 * len(ROUNDING_MODES) * len(SATURATION_MODES)
    assert any(t.integer < 0 for t in TYPES.float_targets)
    assert any(t.integer > t.width for t in TYPES.float_targets)
    assert any(t.saturation == "WRAP" and t.saturation_bits > 0 for t in TYPES.float_targets)
    assert any(not s.signed for s, _ in TYPES.cast_pairs)


# --------------------------------------------------------------------------------------------------
# hand-computed values


def _ff(text: str, *xs: float) -> list[int]:
    return from_float(np.array(xs), FixedType.parse(text)).tolist()


def test_rounding_modes_on_ties_by_hand():
    # LSB 2**-5: 2.640625 = 84.5 LSB, 2.671875 = 85.5 LSB
    assert _ff("ap_fixed<8,3,AP_RND_CONV,AP_SAT>", 2.6875, 2.640625, 2.671875, -2.640625) == [86, 84, 86, -84]
    assert _ff("ap_fixed<8,3,AP_RND>", 2.640625, -2.640625, 2.65) == [85, -84, 85]
    assert _ff("ap_fixed<8,3,AP_RND_ZERO>", 2.640625, -2.640625, -2.66) == [84, -84, -85]
    assert _ff("ap_fixed<8,3,AP_RND_MIN_INF>", 2.640625, -2.640625) == [84, -85]
    assert _ff("ap_fixed<8,3,AP_RND_INF>", 2.640625, -2.640625) == [85, -85]
    assert _ff("ap_fixed<8,3,AP_TRN>", 2.66, -2.66) == [85, -86]
    assert _ff("ap_fixed<8,3,AP_TRN_ZERO>", 2.66, -2.66) == [85, -85]


def test_overflow_modes_by_hand():
    assert _ff("ap_fixed<8,3,AP_TRN,AP_SAT>", 5.0, -5.0, -4.0) == [127, -128, -128]
    assert _ff("ap_fixed<8,3,AP_TRN,AP_SAT_SYM>", 5.0, -5.0, -4.0) == [127, -127, -127]
    assert _ff("ap_fixed<8,3,AP_TRN,AP_SAT_ZERO>", 5.0, -5.0, 3.0) == [0, 0, 96]
    assert _ff("ap_fixed<8,3>", 5.0, -5.0) == [-96, 96]  # 160 and -160 wrapped mod 256
    # N saturation bits: sign bit forced to the source's sign, the next N-1 bits to its complement
    assert _ff("ap_fixed<8,3,AP_TRN,AP_WRAP,1>", 5.0, -5.0) == [32, -32]
    assert _ff("ap_fixed<8,3,AP_TRN,AP_WRAP,2>", 5.0, -5.0) == [96, -96]
    # unsigned: the top N bits are set to 1 on overflow and on negative input alike
    assert _ff("ap_ufixed<4,4,AP_TRN,AP_WRAP,2>", -16.0, 20.0, 5.0, -9.0) == [12, 12, 5, 15]
    assert _ff("ap_ufixed<4,4,AP_TRN,AP_WRAP,1>", -16.0, 20.0) == [8, 12]
    assert _ff("ap_ufixed<4,2>", -0.25, 4.5) == [15, 2]
    assert _ff("ap_ufixed<4,2,AP_TRN,AP_SAT>", -0.25, 4.5) == [0, 15]
    assert _ff("ap_ufixed<4,2,AP_TRN,AP_SAT_SYM>", -0.25, 4.5) == [0, 15]


def test_integer_bits_outside_width_and_integer_types_by_hand():
    assert _ff("ap_fixed<4,6>", 9.0, -9.0, 40.0) == [2, -3, -6]  # LSB 4, range [-32, 28]
    assert _ff("ap_fixed<4,6,AP_RND,AP_SAT>", 9.0, 10.0, 40.0) == [2, 3, 7]
    assert _ff("ap_fixed<4,-2>", 0.1, -0.1, 0.125) == [6, -7, -8]  # LSB 2**-6
    assert _ff("ap_int<8>", 3.7, -3.7, 300.0) == [3, -4, 44]
    assert _ff("ap_uint<4>", 17.0, -1.0) == [1, 15]


def test_extreme_doubles_by_hand():
    assert _ff("ap_fixed<8,3>", 1e-300, -1e-300, -0.0, 0.0) == [0, -1, 0, 0]
    assert _ff("ap_fixed<8,3,AP_RND>", 1e-300, -1e-300) == [0, 0]
    assert _ff("ap_fixed<16,6,AP_TRN,AP_SAT>", 1e300, -1e300, math.inf, -math.inf) == [32767, -32768] * 2
    assert _ff("ap_fixed<16,6>", 1e300, math.inf, math.nan) == [0, 0, 0]  # multiples of 2**16 LSB
    # the header reads a subnormal as if its exponent were -1023 and the implicit bit set:
    # 5e-324 = 2**-1074 is read as (2**52 + 1) * 2**-1075, i.e. 2**51 + 0.5 LSB of 2**-1074
    assert _ff("ap_fixed<64,-1010>", 5e-324) == [1 << 51]
    assert _ff("ap_fixed<64,-1010,AP_RND>", 5e-324, -5e-324) == [(1 << 51) + 1, -(1 << 51)]


def test_cast_by_hand():
    rnd_conv_sat = FixedType.parse("ap_fixed<8,3,AP_RND_CONV,AP_SAT>")
    # ap_fixed<16,6> mantissas (LSB 2**-10) of 2.640625, 2.671875, 2.6416, 100.0, -100.0
    m = np.array([2704, 2736, 2705, 102400, -102400])
    assert cast(m, 10, rnd_conv_sat).tolist() == [84, 86, 85, 127, -128]
    assert cast(m, 10, FixedType(8, 3, True, "RND", "SAT_SYM")).tolist() == [85, 86, 85, 127, -127]
    assert cast(np.array([-128]), 5, FixedType(8, 3, True, "TRN", "SAT_SYM")).tolist() == [-127]
    assert cast(np.array([5, -5]), 0, FixedType(4, 6)).tolist() == [1, -2]  # 5 -> floor(5/4)
    assert cast(np.array([3]), -4, FixedType(8, 8)).tolist() == [48]  # 3 * 2**4
    assert cast(np.array([300]), 0, FixedType(8, 8, False, "TRN", "WRAP")).tolist() == [44]
    assert to_float(np.array([86, -128]), rnd_conv_sat).tolist() == [2.6875, -4.0]
    assert to_float(np.array([3]), -4).tolist() == [48.0]


# --------------------------------------------------------------------------------------------------
# types: parse, cpp, hls4ml, limits


def test_parse_and_cpp():
    t = FixedType.parse("ap_fixed<8,3,AP_RND_CONV,AP_SAT>")
    assert t == FixedType(8, 3, True, "RND_CONV", "SAT", 0)
    assert (t.frac, t.min_mantissa, t.max_mantissa) == (5, -128, 127)
    assert t.cpp() == "ap_fixed<8,3,AP_RND_CONV,AP_SAT,0>"
    assert FixedType.parse("fixed<8,3,RND_CONV,SAT,0>") == t
    assert FixedType.parse(" ufixed<6, -2, RND, WRAP, 2> ") == FixedType(6, -2, False, "RND", "WRAP", 2)
    assert FixedType.parse("ap_ufixed<6,8>").cpp() == "ap_ufixed<6,8,AP_TRN,AP_WRAP,0>"
    assert FixedType.parse("ap_int<8>") == FixedType(8, 8)
    assert FixedType.parse("uint<4>") == FixedType(4, 4, False)
    assert (FixedType(4, 4, False).min_mantissa, FixedType(4, 4, False).max_mantissa) == (0, 15)
    assert FixedType.parse("ap_uint<4>").frac == 0
    for t in TYPES.float_targets:
        assert FixedType.parse(t.cpp()) == t
    for bad in ("ap_fixed<8>", "float", "ap_fixed<8,3,AP_ROUND>", "ap_int<4,2>", "ap_fixed<0,0>"):
        with pytest.raises(ValueError, match="ap_|fixed|width|mode|float"):
            FixedType.parse(bad)
    with pytest.raises(UnsupportedTypeError, match="ac_fixed"):
        FixedType.parse("ac_fixed<8,3,true>")
    with pytest.raises(ValueError, match="saturation_bits"):
        FixedType(4, 2, saturation_bits=5)


def test_from_hls4ml_round_trip():
    from hls4ml.model.types import (
        ExponentPrecisionType,
        FixedPrecisionType,
        FloatPrecisionType,
        IntegerPrecisionType,
        NamedType,
        RoundingMode,
        SaturationMode,
        XnorPrecisionType,
    )

    for rounding in RoundingMode:
        for saturation in SaturationMode:
            for signed in (True, False):
                p = FixedPrecisionType(12, -3, signed, rounding, saturation, 2)
                t = FixedType.from_hls4ml(p)
                assert t == FixedType(12, -3, signed, rounding.name, saturation.name, 2)
                assert FixedType.parse(str(p)) == t  # hls4ml's own spelling, e.g. fixed<12,-3,RND,SAT,2>
                assert FixedType.parse(t.cpp()) == t
    assert FixedType.from_hls4ml(FixedPrecisionType(16, 6)) == FixedType(16, 6)
    assert FixedType.from_hls4ml(NamedType("layer2_t", FixedPrecisionType(8, 3, False))) == FixedType(
        8, 3, False
    )
    assert FixedType.from_hls4ml(IntegerPrecisionType(5, signed=False)) == FixedType(5, 5, False)
    assert FixedType.parse(str(IntegerPrecisionType(5, signed=False))) == FixedType(5, 5, False)
    # hls4ml's XNOR type (binary layers) holds a bipolar value as ap_uint<1>, 0 meaning -1
    assert FixedType.from_hls4ml(XnorPrecisionType()) == FixedType(1, 1, False)
    for other in (ExponentPrecisionType(), FloatPrecisionType()):
        with pytest.raises(UnsupportedTypeError, match=type(other).__name__):
            FixedType.from_hls4ml(other)


def test_types_beyond_int64_are_refused():
    x = np.array([1.0])
    for t in (FixedType(65, 10), FixedType(64, 10, signed=False), FixedType(200, 100)):
        with pytest.raises(UnsupportedTypeError, match="int64"):
            from_float(x, t)
        with pytest.raises(UnsupportedTypeError, match="int64"):
            cast(np.array([1]), 0, t)
    with pytest.raises(UnsupportedTypeError, match="int64"):
        cast(np.array([1]), 0, FixedType(8, 3), src=FixedType(70, 3))
    assert from_float(x, FixedType(64, 10)).tolist() == [1 << 54]
    assert from_float(x, FixedType(63, 10, signed=False)).tolist() == [1 << 53]


def test_cast_validates_its_source():
    with pytest.raises(ValueError, match="frac"):
        cast(np.array([1]), 4, FixedType(8, 3), src=FixedType(8, 3))
    with pytest.raises(ValueError, match="range"):
        cast(np.array([200]), 5, FixedType(8, 3), src=FixedType(8, 3))
    with pytest.raises(TypeError, match="integer"):
        cast(np.array([1.5]), 5, FixedType(8, 3))


def test_shapes_and_dtypes_are_kept():
    t = FixedType(8, 3, True, "RND", "SAT")
    x = np.linspace(-5, 5, 24, dtype=np.float32).reshape(2, 3, 4)
    m = from_float(x, t)
    assert m.shape == (2, 3, 4) and m.dtype == np.int64
    assert np.array_equal(m, from_float(x.astype(np.float64), t))
    c = cast(m, t.frac, FixedType(6, 2, True, "RND_CONV", "SAT"))
    assert c.shape == (2, 3, 4) and c.dtype == np.int64
    assert from_float(np.float64(1.5), t).shape == ()
