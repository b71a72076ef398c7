"""The accelerator's AXI wrapper compiled with g++ vs `Device(bundle, "emulated")`: bit for bit.

Too slow for the test suite (hls4ml's firmware + wrapper + bridge compile for minutes on a busy machine), so
measured here: package a run for a board, compile the bundle's own `accelerator/` C++ (myproject_axi with
its T_in/T_out casts, through hls4ml's VivadoAccelerator bridge), feed it the test split and 10,000 stress
inputs on the input port's grid, and compare with the Device, which packs the raw floats itself.

    .venv/bin/python benchmarks/accelerator_wrapper.py RUN_DIR [--board pynq-z2]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    from fpgadl import api
    from fpgadl.emulator.fixed import to_float
    from fpgadl.flow.stages import stress_inputs
    from fpgadl.hls.project import load_project
    from fpgadl.runtime import Device, axi

    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--board", default="pynq-z2")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bundle, work = Path(tmp) / "bundle", Path(tmp) / "accel"
        api.package(args.run, board=args.board, out=bundle)
        shutil.copytree(bundle / "accelerator", work)
        model, _ = load_project(bundle / "project", output_dir=work)
        # compile the bundle's files as written (compile() would rewrite them): same library stamp
        model.config.config["Stamp"] = re.search(r"LIB_STAMP=(\w+)", (work / "build_lib.sh").read_text())[1]
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            model._compile()
        seconds = time.perf_counter() - t0
        device = Device(bundle)
        x = np.load(args.run / "data/x_test.npy")
        x = np.concatenate([x, stress_inputs(x)])
        port = device.manifest["ports"]["in"]
        on_grid = to_float(axi.quantize(x, port), port.fixed()).astype(np.float32)
        wrapper = np.asarray(model.predict(on_grid)).reshape(len(x), -1).astype(np.float32)
        same = np.all(wrapper == device.predict(x).reshape(len(x), -1), axis=1)
        print(f"compile {seconds:.1f} s; AXI wrapper (g++) == Device on {same.mean():.4%} of {len(x):,} samples")


if __name__ == "__main__":
    main()
