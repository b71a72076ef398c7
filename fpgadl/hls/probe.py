"""The exactness probe: `fpgadl hls` measures, after conversion, whether the firmware computes what the model does.

The reference is qonnx's execution of the cleaned QONNX graph (the graph hls4ml reads, before any of
hls4ml's own passes): Quant nodes in numpy, every other op in onnxruntime, float32 like torch. The firmware
is the fast engine (bit-identical to csim). Both get the same generated inputs in the ONNX layout, through
the same host-side pre-processing: values off the input quantizer's grid, exact rounding ties of both
parities, values far out of the port's range, values on the grid, plus the user's `--sample`. The verdict
(identical rows, max |diff|, argmax agreement, the first diverging layer from `fpgadl.hls.diff`) goes into
`fpgadl.json`; `exact` is true only when nothing static rules it out AND every probed row is identical.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from fpgadl.core.artifacts import write_json
from fpgadl.core.errors import UsageError
from fpgadl.hls.hostops import invert_host_ops
from fpgadl.hls.project import META_FILE, ProjectMeta, quiet, rebatch_reshapes

ROWS_PER_KIND = 500  # four kinds: >= 2,000 generated inputs per model
DIFF_ROWS = 8  # mismatching rows handed to the layer-by-layer diff (per-sample qonnx execution is slow)


def _port_grid(meta: ProjectMeta) -> tuple[float, float, float]:
    """(lsb, lo, hi) of the input port, or a unit grid when the model has no input quantizer."""
    from fpgadl.emulator.fixed import FixedType

    if not meta.input_type:
        return 2.0**-8, -8.0, 8.0
    t = FixedType.parse(meta.input_type)
    lsb = 2.0**-t.frac
    return lsb, t.min_mantissa * lsb, t.max_mantissa * lsb


def probe_inputs(meta: ProjectMeta, rows_per_kind: int = ROWS_PER_KIND, seed: int = 0) -> dict[str, np.ndarray]:
    """Generated inputs in the ONNX layout, by kind; port-space values are mapped back through the host ops."""
    rng = np.random.default_rng(seed)
    shape = (rows_per_kind, *meta.input_shape_onnx)
    lsb, lo, hi = _port_grid(meta)
    span = max(hi - lo, lsb)
    k_lo, k_hi = int(np.floor(lo / lsb)) - 2, int(np.ceil(hi / lsb)) + 2
    kinds = {
        "off_grid": rng.uniform(lo - span / 8, hi + span / 8, size=shape) + lsb * rng.uniform(0.01, 0.49, size=shape),
        "ties": (rng.integers(k_lo, k_hi, size=shape) + 0.5) * lsb,
        "out_of_range": rng.standard_normal(shape) * span * 100,
        "on_grid": rng.integers(k_lo, k_hi, size=shape) * lsb,
    }
    return {k: invert_host_ops(v, meta.host_ops) for k, v in kinds.items()}


def reference_outputs(model_path: Path, x_firmware: np.ndarray) -> np.ndarray:
    """qonnx execution of the cleaned graph, linear layers in torch (fpgadl.hls.torchref), on a batch (firmware
    layout); row by row if the graph fixes batch 1."""
    import onnxruntime
    from qonnx.core.modelwrapper import ModelWrapper

    from fpgadl.hls.torchref import execute_like_torch

    onnxruntime.set_default_logger_severity(3)
    x = np.ascontiguousarray(x_firmware, dtype=np.float32)
    with quiet():
        mw = ModelWrapper(str(model_path))
        name, out = mw.graph.input[0].name, mw.graph.output[0].name
        constants = {i.name for i in mw.graph.initializer}
        for vi in [*mw.graph.input, *mw.graph.output, *mw.graph.value_info]:
            dims = vi.type.tensor_type.shape.dim
            if vi.name in constants:
                continue
            if len(dims) and dims[0].dim_value == 1:
                dims[0].dim_value = len(x)
        # bnn_pynq's `x.view(1, -1)` exports as [1, -1]: batched, the reference runs all rows at once (2,000
        # single-row qonnx runs took ~220 s on a TFC, one batch < 1 s)
        rebatch_reshapes(mw.graph, 1, len(x))
        try:
            y = execute_like_torch(mw, {name: x})[out]
            if len(y) == len(x):
                return y.reshape(len(x), -1)
        except Exception:  # a Reshape constant with batch 1, say: fall back to the exact per-row run
            pass
        mw = ModelWrapper(str(model_path))
        return np.concatenate([execute_like_torch(mw, {name: x[i : i + 1]})[out].reshape(1, -1) for i in range(len(x))])


def _measure(ref: np.ndarray, got: np.ndarray) -> dict:
    ref = ref.reshape(len(ref), -1).astype(np.float64)
    got = got.reshape(len(got), -1).astype(np.float64)
    same = np.all(ref == got, axis=1)
    return {
        "rows": int(len(ref)),
        "identical_rows": int(same.sum()),
        "identical_fraction": float(same.mean()) if len(ref) else 1.0,
        "max_abs_diff": float(np.max(np.abs(ref - got))) if ref.size else 0.0,
        "argmax_agreement": float(np.mean(ref.argmax(1) == got.argmax(1))) if ref.shape[1] > 1 else None,
    }


def run_probe(hls_dir: Path, sample: np.ndarray | None = None, engine=None, expect: np.ndarray | None = None) -> dict:
    """Probe a converted project (with `engine`, its already open fast engine); returns the measured
    verdict (also per input kind), and with `expect` (the user's model's own outputs on `sample`) the
    firmware measured against them too."""
    from fpgadl.hls.diff import qonnx_diff
    from fpgadl.hls.engines import check_input, from_firmware_layout, open_engine, to_firmware_layout

    start = time.perf_counter()
    engine = engine or open_engine(hls_dir, "fast")
    meta = engine.meta
    kinds = probe_inputs(meta)
    if sample is not None:
        kinds["sample"] = check_input(sample, meta, "--sample").astype(np.float32)
    x = np.concatenate(list(kinds.values()))
    got = engine.predict(x)
    ref = from_firmware_layout(reference_outputs(engine.hls_dir / meta.clean_model, to_firmware_layout(x, meta)), meta)
    verdict = _measure(ref, got)
    verdict["by_kind"] = {}
    offset = 0
    for kind, rows in kinds.items():
        verdict["by_kind"][kind] = _measure(ref[offset : offset + len(rows)], got[offset : offset + len(rows)])
        offset += len(rows)
    if expect is not None:
        rows = slice(len(x) - len(sample), len(x))
        verdict["expected"] = _measure(check_expected(expect, sample, meta), got[rows])
    verdict["first_divergent_layer"] = None
    bad = np.flatnonzero(~np.all(ref.reshape(len(x), -1) == got.reshape(len(x), -1), axis=1))
    if len(bad):
        with quiet():
            diff = qonnx_diff(hls_dir, x[bad[:DIFF_ROWS]])
        verdict["first_divergent_layer"] = diff.first_divergent
    verdict["seconds"] = round(time.perf_counter() - start, 2)
    return verdict


def check_expect_rows(expect: np.ndarray | None, sample: np.ndarray | None) -> None:
    """--expect holds the model's outputs on --sample: one row per sample row (checked before converting)."""
    if expect is not None and (sample is None or len(expect) != len(sample)):
        raise UsageError(
            "--expect needs --sample with one input row per expected output row "
            f"(got {'no --sample' if sample is None else f'{len(sample)} sample rows'}, {len(expect)} expected rows)"
        )


def check_expected(expect: np.ndarray, sample: np.ndarray | None, meta: ProjectMeta) -> np.ndarray:
    """The user's expected outputs, one row per --sample row, each the model's output size."""
    check_expect_rows(expect, sample)
    size = int(np.prod(meta.output_shape_onnx))
    if expect[0].size != size:
        raise UsageError(
            f"--expect: shape {list(expect.shape)} does not match --sample's {len(sample)} rows of the model's "
            f"{size} outputs (expected [{len(sample)}, {', '.join(map(str, meta.output_shape_onnx))}])"
        )
    return np.asarray(expect, dtype=np.float32).reshape(len(sample), size)


def record_probe(
    hls_dir: Path, sample: np.ndarray | None = None, engine=None, expect: np.ndarray | None = None
) -> ProjectMeta:
    """Run the probe and write its verdict into the project's fpgadl.json: `exact` = static AND measured
    (AND equal to the user's expected outputs, where given; required when the exporter folded constants)."""
    hls_dir = Path(hls_dir)
    meta = ProjectMeta.load(hls_dir)
    if meta.frontend != "onnx":
        raise UsageError(
            f"{hls_dir}: the probe needs a QONNX project (this one comes from the {meta.frontend} front end)"
        )
    verdict = run_probe(hls_dir, sample, engine, expect)
    if meta.static_exact is None:
        meta.static_exact = meta.exact
    meta.probe = verdict
    expected = verdict.get("expected")
    vs_torch = expected["identical_rows"] == expected["rows"] if expected else not meta.folded_constants
    meta.exact = bool(meta.static_exact and verdict["identical_rows"] == verdict["rows"] and vs_torch)
    _classify(meta)
    write_json(hls_dir / META_FILE, asdict(meta))
    return meta


FLOAT32_FLOOR = 0.999  # "exact except float32 rounding in torch" needs this fraction of probe rows identical


def _classify(meta: ProjectMeta) -> None:
    p = meta.probe
    expected = p.get("expected")
    against_file = meta.verdict if meta.verdict == "exact-except-float32" else "exact"
    file_ok = p["identical_rows"] == p["rows"] if against_file == "exact" else p["identical_fraction"] >= FLOAT32_FLOOR
    if meta.exact:
        meta.verdict, meta.verdict_reason = "exact", None
    elif file_ok and (meta.static_exact or against_file != "exact") and meta.folded_constants and not expected:
        meta.verdict = "exact-vs-export"
        meta.verdict_reason = (
            f"{against_file} against the exported file; the exporter folded "
            f"{'; '.join(meta.folded_constants)}, which torch computes at run time: give --sample with --expect "
            "(torch's outputs on it), or export with dynamo=False"
        )
    elif (
        against_file == "exact-except-float32"
        and file_ok
        and (not expected or expected["identical_fraction"] >= FLOAT32_FLOOR)
    ):
        pass  # the static reason (float biases) stands, and the probe agrees
    else:
        meta.verdict, meta.verdict_reason = "twin-only", _twin_only_reason(meta, file_ok)


def _twin_only_reason(meta: ProjectMeta, file_ok: bool) -> str:
    """What rules the claim out: the file-level probe or static analysis, and/or the user's --expect rows."""
    p, expected = meta.probe, meta.probe.get("expected")
    parts = []
    if not file_ok and meta.verdict == "exact-except-float32":  # the static verdict: only torch's float32 sums
        parts.append(
            f"{meta.verdict_reason} changes {p['rows'] - p['identical_rows']}/{p['rows']} probe rows (the class "
            f"needs {FLOAT32_FLOOR:.1%} identical), first diverging layer {p['first_divergent_layer']}"
        )
    elif not file_ok or not meta.static_exact:
        layers = ", ".join(meta.inexact_layers) or "none named statically"
        parts.append(
            f"probe: {p['identical_rows']}/{p['rows']} rows identical, first diverging layer "
            f"{p['first_divergent_layer']}; inexact layers: {layers}"
        )
    if expected and expected["identical_rows"] != expected["rows"]:
        folded = f": the exporter folded {'; '.join(meta.folded_constants)}" if meta.folded_constants else ""
        parts.append(
            f"{expected['identical_rows']}/{expected['rows']} rows equal --expect (max |diff| "
            f"{expected['max_abs_diff']:.3g}){folded}"
        )
        if file_ok and meta.static_exact:
            parts.append(f"the firmware equals the exported file on {p['identical_rows']}/{p['rows']} probe rows")
    return "; ".join(parts)


def summary_line(meta: ProjectMeta) -> str:
    """One line for the terminal: the static verdict and what the probe measured."""
    p = meta.probe or {}
    if not p:
        return f"exact: {meta.exact} (not probed)"
    measured = f"{p['identical_rows']}/{p['rows']} probe rows identical to the QONNX reference"
    if p["identical_rows"] != p["rows"]:
        measured += f", max |diff| {p['max_abs_diff']:.3g}, first diverging layer {p['first_divergent_layer']}"
    expected = p.get("expected")
    if expected:
        measured += f"; {expected['identical_rows']}/{expected['rows']} rows equal --expect"
    static = "" if meta.static_exact else f" (inexact layers: {', '.join(meta.inexact_layers) or 'none named'})"
    if meta.verdict == "exact-vs-export":
        static = f" ({meta.verdict_reason})"
    return f"exact: {meta.exact} ({meta.verdict}){static}; {measured} ({p['seconds']} s)"
