"""Building hls4ml's C simulation with a shared precompiled header (opt-in: ``FPGADL_CSIM_PCH_DIR``).

Every csim build parses the same ap_types headers twice (the firmware and the ctypes bridge), about a
third of a small project's g++ time. With ``FPGADL_CSIM_PCH_DIR`` set, those headers are compiled once
into a GCC precompiled header in that folder (keyed by the compiler, the build script's flags and the
headers' bytes) and every later build includes it first. hls4ml's own `build_lib.sh` still does the
build, with its own flags; the library is the same byte for byte (tests/test_csim_build.py). If the
header cannot be built, the build is hls4ml's unchanged; if g++ finds that it does not match, g++ says so
(-Winvalid-pch) and reads it as text.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

ENV_VAR = "FPGADL_CSIM_PCH_DIR"
HEADER = "fpgadl_csim_pch.h"
# What both of a project's translation units include first; ap_fixed.h is most of the parse time.
_HEADERS = ("<iostream>", "<array>", "<cstddef>", "<cstdio>", "<tuple>", '"ap_fixed.h"', '"ap_int.h"', '"hls_stream.h"')
_HEADER_TEXT = "".join(f"#include {h}\n" for h in _HEADERS)
_INCLUDE_LINE = 'INCFLAGS="-Ifirmware/ap_types/"'
# The lines of build_lib.sh that decide the flags; the precompiled header is built by the same lines.
_FLAG_LINES_END = "LDFLAGS="


def compile_model(hls_model) -> None:
    """``hls_model.compile()``, through the shared precompiled header when ``FPGADL_CSIM_PCH_DIR`` is set."""
    hls_model.write()
    prepare_build(Path(hls_model.config.get_output_dir()))
    hls_model._compile()  # hls4ml 1.3's compile() is write() then _compile(): the script is edited between


def use_shared_header(hls_model):
    """Make ``hls_model.compile()`` (and ``trace()``, which recompiles) go through ``compile_model``."""
    hls_model.compile = functools.partial(compile_model, hls_model)
    return hls_model


def prepare_build(project: Path) -> Path | None:
    """Point the written project's build_lib.sh at the shared precompiled header (built first if need be);
    returns the header included, or None (variable unset, or a build script or headers it does not know)."""
    cache = os.environ.get(ENV_VAR)
    if not cache:
        return None
    script = project / "build_lib.sh"
    text = script.read_text()
    ap_types = project / "firmware" / "ap_types"
    if _INCLUDE_LINE not in text or _FLAG_LINES_END not in text or not ap_types.is_dir():
        return None  # not the build script this was written for: build as hls4ml does
    flag_lines = text[: text.index(_FLAG_LINES_END)]
    folder = Path(cache) / _key(flag_lines, ap_types)
    _build(folder, flag_lines, ap_types)
    if not (folder / f"{HEADER}.gch").is_file():
        return None
    # -Winvalid-pch: a header g++ cannot use is named in the build's output, not skipped in silence
    include = f'INCFLAGS+=" -include {folder / HEADER} -Winvalid-pch"'
    script.write_text(text.replace(_INCLUDE_LINE, f"{_INCLUDE_LINE}\n{include}"))
    return folder / HEADER


def _key(flag_lines: str, ap_types: Path) -> str:
    h = hashlib.sha256(_compiler_id().encode() + flag_lines.encode() + _HEADER_TEXT.encode())
    for f in sorted(p for p in ap_types.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(ap_types)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:24]


@functools.cache
def _compiler_id() -> str:
    try:
        return subprocess.run(["g++", "--version"], capture_output=True, text=True).stdout
    except OSError:  # no g++: the header's own build fails and hls4ml's build reports it
        return ""


def _build(folder: Path, flag_lines: str, ap_types: Path) -> None:
    """Compile the header once into folder (built in a temporary folder, then renamed: concurrent
    builds of the same key cannot leave a half-written file behind)."""
    if (folder / f"{HEADER}.gch").is_file():
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".build-"))
    try:
        (tmp / HEADER).write_text(_HEADER_TEXT)
        script = flag_lines + f'${{CC}} ${{CFLAGS}} -I"{ap_types}" -x c++-header {HEADER} -o {HEADER}.gch\n'
        if subprocess.run(["bash", "-c", script], cwd=tmp, capture_output=True).returncode == 0:
            os.rename(tmp, folder)  # fails if another build of the same key got there first
    except OSError:
        pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
