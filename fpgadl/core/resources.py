"""Package data: the recipes, boards and fpgadl's own HLS C++ sources.

They live at the top of the repository (`quantize/`, `boards/`, `hls/`) and reach the installed package as
`fpgadl/_data/<name>`: symbolic links in the source tree (so an editable install reads the files in place),
real copies in a wheel (setuptools follows the links when it collects package data). Everything finds
them here, through `importlib.resources`, so a non-editable install knows every recipe and board.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

DATA_FOLDERS = ("quantize", "boards", "hls")


def package_data(name: str) -> Path:
    """The installed folder `name` (one of DATA_FOLDERS) as a filesystem path."""
    if name not in DATA_FOLDERS:
        raise ValueError(f"unknown package data folder {name!r}; valid: {', '.join(DATA_FOLDERS)}")
    return Path(str(files("fpgadl") / "_data" / name))
