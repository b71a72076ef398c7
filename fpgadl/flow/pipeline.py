"""The stage runner: a run is a list of named stages over one run directory, recorded in manifest.json.

A stage is a plain function `stage(run, cfg) -> None` that reads its inputs from the run directory and
writes its outputs there (atomically). For each stage the manifest records status, wall seconds, the hash
of its inputs and options, and the outputs written. A stage whose input hash is unchanged and whose
outputs exist is skipped; `start` (`--from STAGE`) forces a restart there.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fpgadl.core.artifacts import write_json
from fpgadl.core.errors import FpgadlError, UsageError
from fpgadl.core.options import RUN_ENGINE_SETS, STRESS_SAMPLES
from fpgadl.ml.recipes import Recipe


@dataclass
class RunConfig:
    """Everything a run depends on besides the files in its directory (one validated object)."""

    recipe: Recipe
    engine: str = "both"  # one of fpgadl.core.options.RUN_ENGINES: which engines the emulate stage runs
    fit: bool = False  # choose reuse factors / strategies to meet the recipe's target (needs the estimator)
    board: str | None = None  # overrides the recipe's board
    stress: int = STRESS_SAMPLES  # generated inputs on which the emulate stage compares its two engines
    progress: Callable[[int, int, dict], None] | None = None  # per-epoch callback (not part of the hash)
    warn: Callable[[str], None] = print

    def options(self) -> dict:
        return {
            "recipe": self.recipe.model_dump(mode="json"),
            "engine": self.engine,
            "fit": self.fit,
            "board": self.board_name,
            "stress": self.stress,
        }

    @property
    def board_name(self) -> str:
        return self.board or self.recipe.board

    @property
    def engines(self) -> list[str]:
        return list(RUN_ENGINE_SETS[self.engine])

    @property
    def stress_compared(self) -> bool:
        """Whether the emulate stage compares its two engines on stress inputs (metrics/stress.json)."""
        return len(self.engines) > 1 and self.stress > 0


class RunDir:
    """A run directory (docs/design.md, "Run directory"): every file a run writes is named here, once.

    Names are relative (stages declare their inputs and outputs with them); `run / name` is the path."""

    RECIPE = "recipe.yaml"
    MODEL = "model.pt"  # the trained QAT model's state_dict
    TRAIN_INFO = "train.json"
    X_TEST, Y_TEST = "data/x_test.npy", "data/y_test.npy"
    QONNX, QCDQ = "model.qonnx.onnx", "model.qcdq.onnx"
    TWIN_ONNX = "model.twin.onnx"  # the PyTorch front end's float twin, for onnxruntime
    HLS = "hls"  # the project directory (fpgadl.hls.project)
    HLS_META = "hls/fpgadl.json"
    CONVERT_INFO = "convert.json"
    RTL_META = "rtl/rtl.json"  # `fpgadl rtl RUN` (and the verilator engine) write the project's Verilog to rtl/
    STRESS = "metrics/stress.json"
    SAMPLES = "samples.png"
    REPORT_MD, REPORT_JSON, REPORT_HTML = "report.md", "report.json", "report.html"

    @staticmethod
    def predictions(engine: str) -> str:
        return f"predictions/{engine}.npy"

    @staticmethod
    def metrics(engine: str) -> str:
        return f"metrics/{engine}.json"

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as e:
            raise UsageError(f"--out {path}: cannot be a run directory ({e.strerror}: {e.filename})") from e

    def __truediv__(self, rel: str) -> Path:
        return self.path / rel

    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    def manifest(self) -> dict:
        if self.manifest_path.is_file():
            try:
                return json.loads(self.manifest_path.read_text())
            except json.JSONDecodeError:
                return {"stages": {}}
        return {"stages": {}}

    def record(self, stage: str, entry: dict) -> None:
        m = self.manifest()
        m.setdefault("stages", {})[stage] = entry
        write_json(self.manifest_path, m)

    def read_json(self, rel: str) -> dict:
        return json.loads((self.path / rel).read_text())


@dataclass(frozen=True)
class Stage:
    name: str
    fn: Callable[[RunDir, RunConfig], None]
    inputs: Callable[[RunConfig], list[str]]  # run-relative files whose content the stage depends on
    outputs: Callable[[RunConfig], list[str]]  # run-relative files or folders it writes
    options: Callable[[RunConfig], dict] = field(default=lambda cfg: {})
    # fpgadl modules/packages whose source the stage's outputs depend on (its fingerprint covers them)
    sources: tuple[str, ...] = ("fpgadl",)


LIBRARIES = ("torch", "brevitas", "qonnx", "hls4ml", "onnx", "onnxruntime", "numpy")


@functools.cache
def toolchain_fingerprint(sources: tuple[str, ...]) -> str:
    """The source of the fpgadl modules a stage runs (`sources`: modules or packages) and the versions of
    the libraries the artifacts depend on: a stage reruns when the code that made its outputs changed,
    not when an unrelated module (the report, say) did."""
    import importlib.util
    from importlib.metadata import PackageNotFoundError, version

    h = hashlib.sha256()
    for name in sorted({"fpgadl.core", "fpgadl.flow.stages", "fpgadl.flow.pipeline", *sources}):
        spec = importlib.util.find_spec(name)
        origin = Path(spec.origin)
        files = sorted(origin.parent.rglob("*.py")) if origin.name == "__init__.py" else [origin]
        for f in files:
            h.update(str(f.relative_to(origin.parent)).encode())
            h.update(f.read_bytes())
    for lib in LIBRARIES:
        try:
            h.update(f"{lib}={version(lib)}".encode())
        except PackageNotFoundError:
            h.update(f"{lib}=missing".encode())
    return h.hexdigest()


def input_hash(run: RunDir, stage: Stage, cfg: RunConfig) -> str:
    h = hashlib.sha256()
    h.update(toolchain_fingerprint(stage.sources).encode())
    h.update(json.dumps({"stage": stage.name, "options": stage.options(cfg)}, sort_keys=True).encode())
    for rel in stage.inputs(cfg):
        p = run / rel
        h.update(rel.encode())
        if p.is_dir():
            for f in sorted(q for q in p.rglob("*") if q.is_file()):
                h.update(f.read_bytes())
        elif p.is_file():
            h.update(p.read_bytes())
        else:
            h.update(b"<missing>")
    return h.hexdigest()


Reporter = Callable[[str, str, dict], None]  # (stage, event: start|skip|done|fail, info)


def run_stages(
    run: RunDir,
    cfg: RunConfig,
    stages: list[Stage],
    *,
    start: str | None = None,
    reporter: Reporter | None = None,
) -> dict:
    names = [s.name for s in stages]
    if start is not None and start not in names:
        raise UsageError(f"--from {start!r}: not a stage; valid: {', '.join(names)}")
    forced = False
    for stage in stages:
        forced = forced or stage.name == start
        digest = input_hash(run, stage, cfg)
        prev = run.manifest().get("stages", {}).get(stage.name, {})
        outputs = stage.outputs(cfg)
        if (
            not forced
            and prev.get("status") == "ok"
            and prev.get("input_hash") == digest
            and all((run / o).exists() for o in outputs)
        ):
            if reporter:
                reporter(stage.name, "skip", prev)
            continue
        # A stage that runs makes every later stage's inputs new: they rerun by their hashes.
        if reporter:
            reporter(stage.name, "start", {})
        t0 = time.perf_counter()
        try:
            stage.fn(run, cfg)
        except BaseException as e:
            entry = {
                "status": "failed",
                "seconds": round(time.perf_counter() - t0, 3),
                "input_hash": digest,
                "error": str(e).splitlines()[0] if str(e) else type(e).__name__,
            }
            run.record(stage.name, entry)
            if reporter:
                reporter(stage.name, "fail", entry)
            raise
        entry = {
            "status": "ok",
            "seconds": round(time.perf_counter() - t0, 3),
            "input_hash": digest,
            "outputs": outputs,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        run.record(stage.name, entry)
        if reporter:
            reporter(stage.name, "done", entry)
    return run.manifest()


__all__ = ["FpgadlError", "RunConfig", "RunDir", "Stage", "run_stages"]
