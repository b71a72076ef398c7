"""FPGA boards: the part, clock and resources a design is fitted to.

Each board is one YAML file in the top-level ``boards/`` folder (see docs/design.md). This module validates
those files once, at the boundary, into immutable ``Board`` objects; the estimator and the converter
then trust them. ``custom_board`` builds a ``Board`` for ``--part P`` from a known board with the same
part, or from resource numbers the user gives.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fpgadl.core.errors import UsageError, validation_detail
from fpgadl.core.resources import package_data

BOARDS_DIR = package_data("boards")

# DSP slice multiplier operand widths (signed A x B): DSP48E1 (7 series, UG479) is 25x18,
# DSP48E2 (UltraScale/UltraScale+, UG579) is 27x18.
_DSP_WIDTHS = {
    "zynq-7000": (25, 18),
    "artix-7": (25, 18),
    "kintex-7": (25, 18),
    "virtex-7": (25, 18),
    "spartan-7": (25, 18),
    "zynq-ultrascale-plus": (27, 18),
    "kintex-ultrascale": (27, 18),
    "kintex-ultrascale-plus": (27, 18),
    "virtex-ultrascale": (27, 18),
    "virtex-ultrascale-plus": (27, 18),
}

# Part-number prefixes → family, longest prefix first.
_FAMILY_PREFIXES = [
    ("xc7z", "zynq-7000"),
    ("xc7a", "artix-7"),
    ("xc7k", "kintex-7"),
    ("xc7v", "virtex-7"),
    ("xc7s", "spartan-7"),
    ("xczu", "zynq-ultrascale-plus"),
    ("xck", "zynq-ultrascale-plus"),
    ("xcku", "kintex-ultrascale"),
    ("xcvu", "virtex-ultrascale-plus"),
    ("xcu", "virtex-ultrascale-plus"),
]

RESOURCE_NAMES = ("lut", "ff", "dsp", "bram18k", "uram")
_REQUIRED_CUSTOM = ("lut", "ff", "dsp", "bram18k")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class BoardError(UsageError, ValueError):
    """A board name, file or part that cannot be used; the message is one line."""


class Resources(BaseModel):
    """Available programmable-logic resources of the whole device."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lut: int = Field(gt=0)
    ff: int = Field(gt=0)
    dsp: int = Field(ge=0)
    bram18k: int = Field(ge=0, description="18 Kb block RAMs (a 36 Kb block counts as two)")
    uram: int = Field(ge=0, default=0)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in RESOURCE_NAMES}


class Board(BaseModel):
    """One FPGA board (or a bare part) as the estimator and the HLS stage see it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    part: str = Field(description="vendor part, e.g. xc7z020clg400-1")
    family: str = Field(description="device family, e.g. zynq-7000, virtex-ultrascale-plus")
    speed_grade: str = ""
    clock_period_ns: float = Field(gt=0, description="default HLS clock period")
    resources: Resources
    backend: str = Field(default="Vitis", description="hls4ml backend that targets this board")
    shell: str | None = Field(default=None, description="accelerator shell: 'axi_stream' (Zynq) or 'alveo'")
    accelerator_board: str | None = Field(
        default=None, description="board name in hls4ml's VivadoAccelerator supported_boards.json"
    )
    source: str = Field(default="", description="datasheet the resource numbers come from")

    @property
    def clock_mhz(self) -> float:
        return 1000.0 / self.clock_period_ns

    @property
    def dsp_widths(self) -> tuple[int, int]:
        """Signed operand widths (A, B) one DSP slice multiplies: 25x18 on 7 series, 27x18 after."""
        return _DSP_WIDTHS.get(self.family, (25, 18))


def boards_dir() -> Path:
    """The folder board files are read from; ``FPGADL_BOARDS_DIR`` overrides it (tests, site boards)."""
    override = os.environ.get("FPGADL_BOARDS_DIR")
    return Path(override) if override else BOARDS_DIR


def board_names() -> list[str]:
    return sorted(p.stem for p in boards_dir().glob("*.yaml"))


def _parse_board_file(path: Path) -> Board:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise BoardError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise BoardError(f"{path}: expected a mapping of board fields, got {type(data).__name__}")
    try:
        board = Board.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise BoardError(f"{path}: field '{field}': {err['msg']}") from None
    if board.name != path.stem:
        raise BoardError(f"{path}: field 'name' is '{board.name}' but the file is named '{path.stem}.yaml'")
    return board


def load_board(name: str) -> Board:
    """The board called ``name`` (a file stem in the boards folder, never a path)."""
    valid = board_names()
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
        raise BoardError(f"invalid board name {name!r}: give one of {', '.join(valid)}")
    path = boards_dir() / f"{name}.yaml"
    if name not in valid:
        raise BoardError(f"unknown board '{name}': valid boards are {', '.join(valid)}")
    return _parse_board_file(path)


def list_boards() -> list[Board]:
    return [_parse_board_file(boards_dir() / f"{n}.yaml") for n in board_names()]


def family_of_part(part: str) -> str | None:
    p = part.lower()
    for prefix, family in sorted(_FAMILY_PREFIXES, key=lambda t: -len(t[0])):
        if p.startswith(prefix):
            return family
    return None


def custom_board(part: str, **overrides: object) -> Board:
    """A board for a bare ``part``: resources from a board file with that part, else from ``overrides``.

    Overrides may be any resource (lut, ff, dsp, bram18k, uram) or board field (clock_period_ns, family,
    speed_grade, name, description, shell).
    """
    if not part or not isinstance(part, str):
        raise BoardError("custom board needs a part, e.g. xc7z020clg400-1")
    unknown = set(overrides) - set(RESOURCE_NAMES) - set(Board.model_fields)
    if unknown:
        raise BoardError(
            f"unknown override(s) {', '.join(sorted(unknown))}: valid are "
            f"{', '.join(RESOURCE_NAMES + ('clock_period_ns', 'family', 'speed_grade', 'name'))}"
        )
    base = next((b for b in list_boards() if b.part.lower() == part.lower()), None)
    res_over = {k: v for k, v in overrides.items() if k in RESOURCE_NAMES}
    field_over = {k: v for k, v in overrides.items() if k not in RESOURCE_NAMES}
    if base is not None:
        fields = base.model_dump()
        fields["resources"].update(res_over)
        fields.update(name=f"custom-{part}", description=f"part {part} (resources of board {base.name})")
    else:
        missing = [r for r in _REQUIRED_CUSTOM if r not in res_over]
        if missing:
            raise BoardError(
                f"part '{part}' is not on any known board: give its resources "
                f"(--resources {','.join(m + '=N' for m in missing)}[,uram=N])"
            )
        family = family_of_part(part) or "unknown"
        fields = {
            "name": f"custom-{part}",
            "description": f"part {part} with user-given resources",
            "part": part,
            "family": family,
            "speed_grade": "",
            "clock_period_ns": 5.0,
            "resources": {"uram": 0, **res_over},
            "source": "user-given resource numbers",
        }
    fields.update(field_over)
    try:
        return Board.model_validate(fields)
    except ValidationError as exc:
        raise BoardError(f"custom board for part '{part}': {validation_detail(exc)}") from None
