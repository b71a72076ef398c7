"""Run one corpus entry as a user would: export_qonnx -> `fpgadl hls` (fpgadl.api, or the CLI) -> emulate
(fast, csim) against the Brevitas model in torch, and classify the outcome.

Classes (issue 9): exact, exact-except-float32, twin-only (reason), refused (op), and the failures
CLAIMS-EXACT-BUT-DIFFERS, FAST!=CSIM, internal-error, export-error (Brevitas/torch could not export).
The tool's claim is read from the project's fpgadl.json: `exact` (bool) and, when the converter writes
them, `verdict` ('exact' | 'exact-except-float32' | 'twin-only') and `verdict_reason`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import traceback
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from tests.external.inputs import input_quantizer, make_inputs, typical

REPO = Path(__file__).resolve().parents[2]
# fpgadl's failures. "export-error" (Brevitas/torch could not export the model) is recorded apart: not fpgadl's.
FAILURES = ("CLAIMS-EXACT-BUT-DIFFERS", "FAST!=CSIM", "internal-error")
FLOAT32_FLOOR = 0.999  # exact-except-float32 must still equal torch on this share of rows
# rows of torch outputs given with --sample/--expect when the tool says "exact-vs-export" (folded constants)
EXPECT_ROWS = 64


@dataclass
class Outcome:
    model: str
    export: str
    expect: str
    klass: str = ""
    detail: str = ""
    claim: str | None = None  # the tool's verdict: exact / exact-except-float32 / twin-only
    reason: str = ""
    rows: int = 0
    torch_fast: int | None = None  # identical rows
    fast_csim: int | None = None
    torch_csim: int | None = None  # identical rows on the csim subset
    csim_rows: int = 0
    max_diff: float | None = None
    argmax: float | None = None
    per_set: dict = field(default_factory=dict)  # identical-row share torch vs fast per input set
    first_divergent: str | None = None
    seconds: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)  # the tool's warnings during `fpgadl hls`
    expect_rows: int = 0  # converted again with --sample/--expect (torch's outputs) on this many rows

    def failed(self) -> bool:
        return self.klass in FAILURES

    def to_dict(self) -> dict:
        return asdict(self)


def export(model: torch.nn.Module, entry, variant: str, path: Path) -> None:
    from brevitas.export import export_qonnx

    batch = 4 if variant.endswith("-b4") else 1
    args = tuple(torch.rand(batch, *entry.input_shape) for _ in range(entry.n_inputs))
    kw = {"dynamo": False} if variant.startswith("ts") else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_qonnx(model, args if entry.n_inputs > 1 else args[0], export_path=str(path), **kw)


def torch_reference(model: torch.nn.Module, x: np.ndarray, chunk: int = 512) -> np.ndarray:
    outs = []
    with torch.no_grad():
        for i in range(0, len(x), chunk):
            y = model(torch.from_numpy(x[i : i + chunk]))
            outs.append((y.value if hasattr(y, "value") else y).detach().numpy())
    return np.concatenate(outs).astype(np.float32)


def rows_equal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    return np.all(a == b, axis=1)


def claim_of(meta: dict) -> tuple[str, str]:
    """The tool's verdict and its stated reason, from fpgadl.json."""
    verdict = meta.get("verdict")
    reason = meta.get("verdict_reason") or ", ".join(meta.get("inexact_layers") or [])
    if verdict:
        return str(verdict), str(reason)
    return ("exact" if meta.get("exact") else "twin-only"), str(reason)


def convert_api(onnx_path: Path, prj: Path, notes: list[str], check: tuple | None = None) -> dict:
    from fpgadl import api

    sample, expect = check or (None, None)
    api.hls(onnx_path, out=prj, sample=sample, expect=expect, warn=notes.append)
    return json.loads((prj / "fpgadl.json").read_text())


def convert_cli(onnx_path: Path, prj: Path, notes: list[str], check: tuple | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    extra = []
    if check:
        for flag, array in zip(("--sample", "--expect"), check):
            np.save(prj.parent / f"{prj.name}{flag[1:]}.npy", array)
            extra += [flag, str(prj.parent / f"{prj.name}{flag[1:]}.npy")]
    proc = subprocess.run(
        [sys.executable, "-m", "fpgadl.cli", "hls", str(onnx_path), "--out", str(prj), "--json", *extra],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    notes.extend(proc.stderr.strip().splitlines())
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        internal = "Traceback" in proc.stderr or "internal" in last or bool(WRAPPED_CRASH.search(last))
        raise CliFailure(proc.returncode, last, internal)
    return json.loads((prj / "fpgadl.json").read_text())


# A "refusal" that only wraps a library crash (qonnx clean-up's IndexError, hls4ml's KeyError) names no
# op the user could change: it is the tool's failure, counted as internal.
WRAPPED_CRASH = re.compile(
    r"\((IndexError|KeyError|AttributeError|RuntimeError|TypeError|ValueError|AssertionError|"
    r"ZeroDivisionError|NotImplementedError|Exception)\b"
)


class CliFailure(Exception):
    def __init__(self, code: int, line: str, internal: bool):
        super().__init__(f"exit {code}: {line}")
        self.code, self.line, self.internal = code, line, internal


def reclassify(o: Outcome) -> Outcome:
    """A recorded 'refused' whose message only wraps a library crash is an internal error (see WRAPPED_CRASH)."""
    if o.klass == "refused" and WRAPPED_CRASH.search(o.detail):
        o.klass = "internal-error"
    return o


def _error_class(e: BaseException) -> tuple[str, str]:
    """refused (the tool's own one-line error) or internal-error (anything else)."""

    if isinstance(e, CliFailure):
        return ("internal-error" if e.internal or e.code != 2 else "refused"), str(e)
    # by name: fpgadl's errors module moves between package layouts (fpgadl.errors, fpgadl.core.errors)
    if any(c.__name__ == "FpgadlError" for c in type(e).__mro__):
        msg = f"{type(e).__name__}: {e}"
        wrapped = WRAPPED_CRASH.search(str(e))
        return ("refused" if e.exit_code == 2 and not wrapped else "internal-error"), msg[:400]
    tb = traceback.extract_tb(e.__traceback__)[-1]
    where = f" at {Path(tb.filename).name}:{tb.lineno}"
    return "internal-error", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}{where}"[:400]


def emulate_api(prj: Path, x: np.ndarray, engine: str) -> np.ndarray:
    from fpgadl import api

    return api.emulate(prj, x, engine=engine)


def emulate_cli(prj: Path, x: np.ndarray, engine: str) -> np.ndarray:
    xin, yout = prj.parent / f"{prj.name}-x.npy", prj.parent / f"{prj.name}-y-{engine}.npy"
    np.save(xin, x)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [
        sys.executable,
        "-m",
        "fpgadl.cli",
        "emulate",
        str(prj),
        "--input",
        str(xin),
        "--output",
        str(yout),
        "--engine",
        engine,
    ]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise CliFailure(proc.returncode, last, "Traceback" in proc.stderr or "internal" in last)
    return np.load(yout)


@dataclass
class Prepared:
    """An entry exported and converted, with its torch reference on the generated inputs."""

    entry: object
    variant: str
    workdir: Path
    model: torch.nn.Module | None = None
    onnx: Path | None = None
    prj: Path | None = None
    meta: dict | None = None
    x: np.ndarray | None = None
    sets: dict = field(default_factory=dict)  # set name -> row slice
    y_torch: np.ndarray | None = None
    outcome: Outcome | None = None


def prepare(entry, variant: str, workdir: Path, n: int = 2000, via: str = "api") -> Prepared:
    """Build, export, generate inputs, compute torch's outputs, convert. Failures land in `outcome`."""
    p = Prepared(entry, variant, Path(workdir) / f"{entry.name}-{variant}-{via}")
    p.workdir.mkdir(parents=True, exist_ok=True)
    out = p.outcome = Outcome(entry.name, variant if via == "api" else f"{variant} (CLI)", entry.expect)
    t = time.perf_counter()
    p.onnx = p.workdir / "model.onnx"
    try:
        p.model = entry.build()
        export(p.model, entry, variant, p.onnx)
    except Exception as e:  # Brevitas/torch's failure, not fpgadl's: recorded, not blamed
        out.klass, out.detail = "export-error", _error_class(e)[1]
        return p
    out.seconds["export"] = round(time.perf_counter() - t, 2)
    if entry.n_inputs == 1:
        sets = make_inputs(entry, input_quantizer(p.onnx), n)
        p.x = np.concatenate(list(sets.values()))
        start = 0
        for name, v in sets.items():
            p.sets[name] = slice(start, start + len(v))
            start += len(v)
        p.y_torch = torch_reference(p.model, p.x)
        out.rows = len(p.x)
    t = time.perf_counter()
    notes: list[str] = []
    p.prj = p.workdir / "prj"
    convert = convert_api if via == "api" else convert_cli
    try:
        p.meta = convert(p.onnx, p.prj, notes)
        if p.meta.get("verdict") == "exact-vs-export" and p.x is not None:
            # as the tool asks: the model's own outputs on a sample of typical inputs (not the measured rows)
            sample = typical(p.entry.typical, p.entry.input_shape, EXPECT_ROWS, np.random.default_rng(1))
            sample = np.asarray(sample, dtype=np.float32)
            p.meta = convert(p.onnx, p.prj, notes, (sample, torch_reference(p.model, sample)))
            out.expect_rows = len(sample)
    except Exception as e:
        out.klass, out.detail = _error_class(e)
    out.seconds["hls"] = round(time.perf_counter() - t, 2)
    out.notes = [n[:300] for n in notes if n.strip()][:6]
    if p.meta is not None:
        out.claim, out.reason = claim_of(p.meta)
    return p


def run_engine(p: Prepared, engine: str, rows: slice | None = None, via: str = "api") -> np.ndarray | None:
    """Emulate p.x[rows] on `engine`; an error becomes the outcome's class (refused / internal-error)."""
    out = p.outcome
    t = time.perf_counter()
    try:
        x = p.x if rows is None else p.x[rows]
        return (emulate_api if via == "api" else emulate_cli)(p.prj, x, engine)
    except Exception as e:
        klass, detail = _error_class(e)
        out.klass, out.detail = klass, f"emulate --engine {engine}: {detail}"
        return None
    finally:
        out.seconds[engine] = round(time.perf_counter() - t, 2)


def classify(out: Outcome, same: np.ndarray) -> None:
    """Class from the tool's claim and the measured torch-vs-fast row equality (fast == csim checked apart)."""
    share = float(same.mean()) if same.size else 0.0
    if out.claim == "exact":
        out.klass = "exact" if share == 1.0 else "CLAIMS-EXACT-BUT-DIFFERS"
    elif out.claim == "exact-except-float32":
        out.klass = "exact-except-float32" if share >= FLOAT32_FLOOR else "CLAIMS-EXACT-BUT-DIFFERS"
    elif out.claim == "exact-vs-export":  # claims the exported file only; the runner answers with --expect
        out.klass = "exact-vs-export"
    else:
        out.klass = "twin-only"
        if share == 1.0:
            out.detail = "equals torch on every row, but the tool does not claim it (false alarm)"
    if out.klass == "CLAIMS-EXACT-BUT-DIFFERS":
        out.detail = f"claims {out.claim}, {share:.1%} rows equal torch"


def first_divergent_layer(p: Prepared, bad: np.ndarray) -> str | None:
    """Which firmware layer first departs from qonnx's execution of the cleaned graph, on failing rows."""
    from fpgadl import api

    try:
        res = api.diff(p.prj, p.x[bad][:8], against="qonnx")[0]
    except Exception as e:
        return f"(diff failed: {type(e).__name__})"
    if res.get("first_divergent"):
        return f"{res['first_divergent']} (max |diff| {res['max_abs_diff']:.3g})"
    return "none vs qonnx: the QONNX graph itself differs from torch (export/clean-up or pre-processing)"


def evaluate(p: Prepared, csim_rows: int | None = 0, via: str = "api") -> Outcome:
    """Emulate (fast on all rows, csim on the first `csim_rows` of every input set, None = all rows).

    csim runs even when the fast engine failed: its agreement with torch is then the only measurement."""
    out = p.outcome
    if out.klass or p.x is None:
        if not out.klass:
            out.klass, out.detail = "refused", "multi-input model was converted; emulate cannot feed it"
        return out
    y_fast = run_engine(p, "fast", via=via)
    if y_fast is not None:
        _measure_fast(p, y_fast)
    if csim_rows != 0:
        _measure_csim(p, y_fast, csim_rows, via)
    return out


def _measure_fast(p: Prepared, y_fast: np.ndarray) -> None:
    out = p.outcome
    same = rows_equal(y_fast, p.y_torch)
    out.torch_fast = int(same.sum())
    out.max_diff = float(np.max(np.abs(y_fast.astype(np.float64) - p.y_torch))) if y_fast.size else 0.0
    flat_fast, flat_torch = y_fast.reshape(len(y_fast), -1), p.y_torch.reshape(len(y_fast), -1)
    out.argmax = float(np.mean(flat_fast.argmax(1) == flat_torch.argmax(1)))
    out.per_set = {k: round(float(same[s].mean()), 4) for k, s in p.sets.items()}
    classify(out, same)
    if not same.all():
        out.first_divergent = first_divergent_layer(p, ~same)


def _measure_csim(p: Prepared, y_fast: np.ndarray | None, csim_rows: int | None, via: str) -> None:
    out = p.outcome
    idx = np.concatenate([np.arange(s.start, s.stop)[:csim_rows] for s in p.sets.values()])
    klass, detail = out.klass, out.detail
    y_csim = run_engine(p, "csim", rows=idx, via=via)
    if y_csim is None:
        if klass == "internal-error":  # the fast engine's failure stays the headline; csim's is appended
            out.klass, out.detail = klass, f"{detail}; {out.detail}"
        return
    out.csim_rows = len(idx)
    out.torch_csim = int(rows_equal(y_csim, p.y_torch[idx]).sum())
    if y_fast is None:
        return
    out.fast_csim = int(rows_equal(y_csim, y_fast[idx]).sum())
    if not np.array_equal(y_csim, y_fast[idx]):
        out.klass, out.detail = "FAST!=CSIM", f"{out.fast_csim}/{len(idx)} rows equal; " + out.detail


def run_entry(
    entry, variant: str, workdir: Path, n: int = 2000, csim_rows: int | None = 0, via: str = "api"
) -> Outcome:
    p = prepare(entry, variant, workdir, n=n, via=via)
    return evaluate(p, csim_rows=csim_rows, via=via)
