"""`python -m fpgadl.runtime BUNDLE --input X.npy [--output Y.npy] [--backend pynq|emulated]`: the host
driver's command line, for the board (pynq is the default there) and for CI (emulated)."""

from __future__ import annotations

import argparse
import sys

from fpgadl.core.errors import FpgadlError
from fpgadl.runtime.device import BACKENDS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fpgadl.runtime", description=__doc__.split(":")[0])
    parser.add_argument("bundle", help="bundle directory written by `fpgadl package`")
    parser.add_argument("--input", required=True, help=".npy float inputs in the ONNX model's layout")
    parser.add_argument("--output", help="write the float32 outputs to this .npy")
    parser.add_argument("--backend", default="pynq", choices=BACKENDS, help="pynq (the board) or emulated")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    try:
        import numpy as np

        from fpgadl.core.artifacts import write_npy
        from fpgadl.runtime import Device

        device = Device(args.bundle, args.backend)  # a bad bundle is named before a bad input
        y = device.predict(_load(args.input))
        if args.output:
            write_npy(args.output, y)
        summary = f"backend={args.backend} samples={len(y)} output_shape={list(y.shape)}"
        if y.ndim == 2 and y.shape[1] > 1:
            summary += f" argmax[:10]={np.argmax(y, axis=1)[:10].tolist()}"
        print(summary + (f" output={args.output}" if args.output else ""))
        return 0
    except FpgadlError as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code


def _load(path: str):
    import numpy as np

    from fpgadl.core.errors import UsageError

    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise UsageError(f"--input {path}: not a readable .npy array ({str(e).splitlines()[0]})") from e


if __name__ == "__main__":
    sys.exit(main())
