"""fastfixed (the conversions the fast engine's kernels run) against ap_fixed.h itself, compiled with g++.

tests/test_fixed.py holds the bit-level port fixed.py to the header over one seeded type set; this
file holds fastfixed's shortcuts (``from_float``, ``cast``, ``convert`` and the float-domain
``cast_float`` the GEMM epilogues use) to the same header over types hypothesis draws: every
example compiles one harness with a target type per signedness x rounding x overflow mode, so
each example covers every mode.  Values: the target grid, exact ties and one LSB off them, the
range edges, far outside the range, random doubles and the special doubles.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fpgadl.emulator import fastfixed
from fpgadl.emulator.fixed import ROUNDING_MODES, SATURATION_MODES, FixedType

CPP_DIR = Path(__file__).resolve().parent.parent / "hls" / "harness"
MODES = [(q, o) for q in ROUNDING_MODES for o in SATURATION_MODES]


def _ap_types_dir() -> Path:
    import hls4ml

    return Path(hls4ml.__file__).parent / "templates" / "vivado" / "ap_types"


@st.composite
def _target(draw, rounding: str, saturation: str) -> FixedType:
    signed = draw(st.booleans())
    width = draw(st.integers(1 if signed else 2, 40))
    integer = draw(st.one_of(st.integers(-8, width + 8), st.sampled_from([0, width, width - 1])))
    sat_bits = draw(st.sampled_from([0, 0, 0, 1, 2])) if saturation == "WRAP" else 0
    return FixedType(width, integer, signed, rounding, saturation, min(sat_bits, width))


@st.composite
def _source(draw) -> FixedType:
    signed = draw(st.booleans())
    width = draw(st.integers(2, 62 if signed else 62))
    return FixedType(width, draw(st.integers(-10, width + 10)), signed)


# one target per mode, and one source type per target for the casts
_type_sets = st.tuples(
    st.tuples(*(_target(q, o) for q, o in MODES)),
    st.lists(_source(), min_size=len(MODES), max_size=len(MODES)),
    st.integers(0, 2**32 - 1),
)


def _build(targets, sources, build: Path) -> Path:
    gxx = shutil.which("g++")
    fd = ",\n".join(f"&from_double<{t.cpp()} >" for t in targets)
    ff = ",\n".join(f"&from_fixed<{s.cpp()}, {t.cpp()} >" for s, t in zip(sources, targets))
    text = (
        '#include "fixed_harness.h"\n'
        f"extern const FromDouble FROM_DOUBLE[] = {{{fd}}};\nextern const int N_FROM_DOUBLE = {len(targets)};\n"
        f"extern const FromFixed FROM_FIXED[] = {{{ff}}};\nextern const int N_FROM_FIXED = {len(targets)};\n"
    )
    (build / "tables.cpp").write_text(text)
    exe = build / "harness"
    # -O0: template instantiation dominates the compile; the header's arithmetic is the same.
    # NDEBUG: drawn pairs include casts on which ap_private asserts (a bit beyond the source's MSB
    # is read, then unused); fixed.cast and fastfixed return the NDEBUG header's value there
    # (test_fixed.py), and elsewhere the asserts change no result.
    cmd = [gxx, "-O0", "-DNDEBUG", "-std=c++17", f"-I{_ap_types_dir()}", f"-I{CPP_DIR}"]
    cmd += [str(CPP_DIR / "fixed_harness_main.cpp"), str(build / "tables.cpp"), "-o", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return exe


def _run(exe: Path, lines: list[str]) -> list[int]:
    proc = subprocess.run([str(exe)], input="\n".join(lines) + "\n", capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout.split("\n")[:-1]
    assert len(out) == len(lines)
    return [int(row.split()[0], 16) for row in out]


def _mantissa(raw: int, t: FixedType) -> int:
    raw &= (1 << t.width) - 1
    return raw - (1 << t.width) if t.signed and raw >> (t.width - 1) else raw


def _doubles(rng: np.random.Generator, t: FixedType, n: int = 300) -> np.ndarray:
    lo, hi = t.min_mantissa, t.max_mantissa
    k = np.concatenate(
        [[lo - 2, lo - 1, lo, lo + 1, hi - 1, hi, hi + 1, hi + 2, -1, 0, 1], rng.integers(2 * lo - 3, 2 * hi + 3, n)]
    )
    grid = np.ldexp(k.astype(np.float64) + rng.choice([0.0, 0.5, -0.5, 0.25, 0.75], k.size), -t.frac)
    nudged = np.nextafter(grid, rng.choice([-np.inf, np.inf], grid.size))
    wide = np.ldexp(rng.uniform(-1, 1, n), rng.integers(-t.frac - 40, t.integer + 40, n))
    special = [0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -1e-300, 1e300, 2.0**63, -(2.0**52)]
    return np.concatenate([grid, nudged, wide, special])


def _mantissas(rng: np.random.Generator, src: FixedType, dst: FixedType, n: int = 300) -> np.ndarray:
    lo, hi = src.min_mantissa, src.max_mantissa
    shift = src.frac - dst.frac
    k = rng.integers(2 * dst.min_mantissa - 3, 2 * dst.max_mantissa + 3, n)
    if shift > 0:  # exact ties of the target grid and one source LSB either side
        m = (k << min(shift, 62 - dst.width)) + (1 << (min(shift, 62 - dst.width) - 1)) * (shift <= 62 - dst.width)
        m = m + rng.integers(-1, 2, n)
    else:
        m = k >> min(-shift, 62)
    extra = np.array([lo, lo + 1, hi, hi - 1, 0, 1, -1], dtype=np.int64)
    return np.clip(np.concatenate([m, extra, rng.integers(lo, hi, n, endpoint=True)]), lo, hi)


def _bits(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", float(x)))[0]


def _check(targets, sources, seed, exe) -> list[str]:
    rng = np.random.default_rng(seed)
    doubles = [_doubles(rng, t) for t in targets]
    mants = [_mantissas(rng, s, t) for s, t in zip(sources, targets)]
    lines = [f"F {k} {_bits(x):x}" for k, xs in enumerate(doubles) for x in xs]
    lines += [f"C {k} {int(m)}" for k, ms in enumerate(mants) for m in ms]
    raw = iter(_run(exe, lines))
    problems = []
    for t, xs in zip(targets, doubles):
        want = np.array([_mantissa(next(raw), t) for _ in xs], dtype=np.int64)
        got = fastfixed.from_float(xs, t)
        problems += [
            f"from_float {t.cpp()} <- {xs[j]!r}: header {want[j]}, fast {got[j]}" for j in np.flatnonzero(got != want)
        ]
        problems += _float_input_problems(t, xs, want)
    for s, t, ms in zip(sources, targets, mants):
        want = np.array([_mantissa(next(raw), t) for _ in ms], dtype=np.int64)
        results = {"cast": fastfixed.cast(ms, s.frac, t), "convert": fastfixed.convert(ms, s, t)}
        bound = int(np.abs(ms).max())
        for dtype in (np.float32, np.float64):
            if fastfixed.float_cast_ok(bound, s.frac, t, dtype):
                results[f"cast_float[{np.dtype(dtype)}]"] = fastfixed.cast_float(ms.astype(dtype), s.frac, t).astype(
                    np.int64
                )
        for label, got in results.items():
            problems += [
                f"{label} {t.cpp()} <- {s.cpp()} m={ms[j]}: header {want[j]}, fast {got[j]}"
                for j in np.flatnonzero(got != want)
            ]
    return problems


def _float_input_problems(t: FixedType, xs: np.ndarray, want: np.ndarray) -> list[str]:
    """The runner's input conversion into float mantissas (types it accepts), float64 and float32 inputs."""
    if not fastfixed.float_input_ok(t):
        return []
    problems = []
    for dtype in (np.float64, np.float32):
        keep = xs.astype(dtype) == xs  # values the dtype holds exactly (NaN drops out: it makes the call None)
        got = fastfixed.from_float_mantissas(xs[keep].astype(dtype), t).astype(np.int64)
        problems += [
            f"from_float_mantissas[{np.dtype(dtype)}] {t.cpp()} <- {xs[keep][j]!r}: header {want[keep][j]}, "
            f"fast {got[j]}"
            for j in np.flatnonzero(got != want[keep])
        ]
    return problems


# Assignments fastfixed shortcuts (fastfixed.keeps_values: convert and the dense and pool kernels skip rounding
# and overflow) next to the same pairs into AP_SAT_SYM, which keeps no signed minimum: hypothesis found
# ap_fixed<28,14> -> ap_fixed<30,14,AP_RND_INF,AP_SAT_SYM> giving min instead of -max. Every example checks them.
_KEPT_SOURCES = [FixedType.parse(s) for s in ("fixed<28,14,TRN,WRAP>", "fixed<8,3,TRN,WRAP>", "ufixed<8,3,TRN,WRAP>")]
_KEPT_PLAIN = [FixedType.parse(s) for s in ("fixed<30,14,RND_INF,SAT>", "fixed<8,3,TRN,WRAP>", "fixed<9,4,RND,SAT>")]
_KEPT_SYM = [
    FixedType.parse(s) for s in ("fixed<30,14,RND_INF,SAT_SYM>", "fixed<8,3,TRN,SAT_SYM>", "fixed<9,4,RND,SAT_SYM>")
]


def test_sat_sym_keeps_no_signed_minimum():
    assert all(fastfixed.keeps_values(s, t) for s, t in zip(_KEPT_SOURCES, _KEPT_PLAIN))
    assert [fastfixed.keeps_values(s, t) for s, t in zip(_KEPT_SOURCES, _KEPT_SYM)] == [False, False, True]


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not found: the ap_fixed harness cannot be compiled")
@settings(
    max_examples=2, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(type_set=_type_sets)
def test_fastfixed_matches_header_every_mode(tmp_path, type_set):
    targets, sources, seed = type_set
    assert {(t.rounding, t.saturation) for t in targets} == set(MODES)
    targets, sources = [*targets, *_KEPT_PLAIN, *_KEPT_SYM], [*sources, *_KEPT_SOURCES, *_KEPT_SOURCES]
    build = Path(tempfile.mkdtemp(dir=tmp_path))  # one per example: tmp_path is shared by them
    problems = _check(targets, sources, seed, _build(targets, sources, build))
    assert not problems, f"{len(problems)} mismatches, first:\n" + "\n".join(problems[:20])
