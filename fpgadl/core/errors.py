"""Errors the tool reports to users as one line (exit 2 for bad input, exit 1 for a failed check).

Every message names the thing at fault and, where there is a choice, what would be valid. The CLI
prints `str(error)` alone unless `--debug` is given.
"""


class FpgadlError(Exception):
    """Base of the tool's own errors."""

    exit_code = 2


class UsageError(FpgadlError):
    """Bad input: an unknown name, a malformed file, an array of the wrong shape."""


class CheckFailed(FpgadlError):
    """A verification failed: not bit-exact, accuracy below the recipe's floor, does not fit."""

    exit_code = 1


class ToolUnavailable(FpgadlError):
    """An external tool (vitis_hls, g++) that the requested action needs is not on PATH."""


def validation_detail(exc) -> str:
    """pydantic's first complaint as "field 'a.b': message", for one-line errors about a file or option."""
    err = exc.errors()[0]
    return f"field '{'.'.join(str(p) for p in err['loc'])}': {err['msg']}"
