"""The deployment bundle: what a board needs beyond the HLS project, written by `fpgadl package`.

    BUNDLE/bundle.json      the I/O manifest (ports, types, word width and packing, batch layout, clock)
                            and a sha256 of every file the host side reads
    BUNDLE/project/         an fpgadl project (fpgadl.json + model) whose conversion is the accelerator
                            backend's: `load_project` rebuilds exactly the firmware in accelerator/
    BUNDLE/accelerator/     hls4ml's VivadoAccelerator project (the IP, its AXI wrapper, board design)
    BUNDLE/build.sh         the vendor build: HLS IP -> Vivado block design -> bitstream (or v++ xclbin)
    BUNDLE/host/run.py      the host driver entry (`python -m fpgadl.runtime BUNDLE --input X.npy`)

Zynq boards (pynq-z2, zcu102) get the `axi_stream` design: the IP between an AXI DMA's two channels, driven
by PYNQ. hls4ml 1.3 has no separate Alveo backend: VivadoAccelerator itself wraps the same IP in an RTL
kernel (`krnl_rtl_src`: AXI-master readers/writers around the stream) and links it with `v++` into an
xclbin for an XRT platform, driven through PYNQ's XRT API; so Alveo cards use VivadoAccelerator too.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict
from pathlib import Path

from fpgadl.core.artifacts import atomic_dir, write_json, write_text
from fpgadl.core.errors import UsageError
from fpgadl.hls.project import META_FILE, TWIN_WEIGHTS, ProjectMeta, fix_project_paths, load_project, quiet
from fpgadl.runtime import axi
from fpgadl.runtime.axi import Port, make_port

BUNDLE_FORMAT = "fpgadl-bundle/1"
MANIFEST = "bundle.json"  # not manifest.json: a run directory has one (the stage manifest)
PROJECT, ACCELERATOR = "project", "accelerator"
ACCELERATOR_BACKEND = "VivadoAccelerator"
INTERFACE = "axi_stream"
# XRT platform v++ links an Alveo kernel against (hls4ml's own default is the u250's).
ALVEO_PLATFORMS = {
    "alveo-u250": "xilinx_u250_xdma_201830_2",
    "alveo-u200": "xilinx_u200_xdma_201830_2",
    "alveo-u50": "xilinx_u50_gen3x16_xdma_201920_3",
    "alveo-u280": "xilinx_u280_xdma_201920_3",
}


def hls4ml_accelerator_boards() -> dict[str, dict]:
    """hls4ml's own list (supported_boards.json of the installed VivadoAccelerator backend)."""
    import hls4ml.backends.vivado_accelerator as va

    return json.loads((Path(va.__file__).parent / "supported_boards.json").read_text())


def accelerator_board(board: str) -> str:
    """The hls4ml board name for one of fpgadl's boards, or a one-line error listing the valid boards."""
    from fpgadl.core.boards import list_boards, load_board

    supported = hls4ml_accelerator_boards()
    valid = sorted(b.name for b in list_boards() if b.accelerator_board in supported)
    target = load_board(board).accelerator_board
    if target not in supported:
        raise UsageError(
            f"--board {board}: no accelerator backend of hls4ml supports this board; valid: {', '.join(valid)}"
        )
    return target


def write_bundle(hls_dir: Path, board: str, out: Path) -> dict:
    """Write the bundle for the fpgadl project `hls_dir` on `board` to `out` (atomically); returns the manifest."""
    from fpgadl.core.boards import load_board
    from fpgadl.emulator.runner import plan

    accel = accelerator_board(board)
    spec = load_board(board)
    meta = ProjectMeta.load(hls_dir)
    p = plan(load_project(hls_dir)[0])
    (_, in_t, in_shape), out_name = p.inputs[0], p.outputs[0]
    out_t = p.out_types[out_name]
    ports = [make_port("in", in_t, list(in_shape)), make_port("out", out_t, list(meta.output_shape_hls))]
    accel_meta = asdict(meta) | {
        "board": spec.name,
        "board_spec": spec.model_dump(mode="json"),
        "part": spec.part,
        "convert_kwargs": _accelerator_kwargs(meta, accel, ports, spec.clock_period_ns),
    }
    out = Path(out)
    with atomic_dir(out) as tmp:
        _copy_project(Path(hls_dir), tmp / PROJECT, accel_meta)
        with quiet():
            load_project(tmp / PROJECT, output_dir=tmp / ACCELERATOR)[0].write()
        _fix_axi_types(tmp / ACCELERATOR, ports)
        _fix_dma_widths(tmp / ACCELERATOR, ports)
        _copy_tb_data(Path(hls_dir) / "tb_data", tmp / ACCELERATOR / "tb_data", ports[0])
        write_text(tmp / "build.sh", _build_script(accel, ALVEO_PLATFORMS.get(accel)))
        (tmp / "build.sh").chmod(0o755)
        write_text(tmp / "host" / "run.py", HOST_DRIVER)
        fix_project_paths(tmp, out)
        manifest = _manifest(tmp, spec, accel, ports, meta)
        write_json(tmp / MANIFEST, manifest)
    return manifest


def _accelerator_kwargs(meta: ProjectMeta, accel: str, ports: list[Port], clock_ns: float) -> dict:
    kw = {
        "backend": ACCELERATOR_BACKEND,
        "io_type": meta.convert_kwargs["io_type"],
        "board": accel,
        "clock_period": clock_ns,
        "interface": INTERFACE,
        "driver": "python",
        # The AXI data fields carry the network's own port types (widened, see runtime.axi), never float:
        # the float <-> fixed conversion is the host's, with the quantizer's rounding (see runtime.device).
        "input_type": ports[0].axi_type,
        "output_type": ports[1].axi_type,
    }
    if accel in ALVEO_PLATFORMS:
        kw["platform"] = ALVEO_PLATFORMS[accel]
    return kw


def _copy_project(src: Path, dst: Path, meta: dict) -> None:
    dst.mkdir(parents=True)
    for name in (meta["clean_model"], TWIN_WEIGHTS):
        if name and (src / name).is_file():
            shutil.copy2(src / name, dst / name)
    write_json(dst / META_FILE, meta)


def _copy_tb_data(src: Path, dst: Path, port: Port) -> None:
    """The twin's test-bench files for the accelerator's own test bench. Its bridge converts floats to
    T_in, then the wrapper casts T_in to the port type: two roundings where the host does one. Inputs go
    in already on the port's grid, where both give the same value (and the firmware the same outputs)."""
    import numpy as np

    from fpgadl.emulator.fixed import to_float
    from fpgadl.hls.testbench import TB_INPUT, TB_OUTPUT, dat_lines

    if not (src / TB_INPUT).is_file():
        return
    x = np.loadtxt(src / TB_INPUT, dtype=np.float32, ndmin=2)
    write_text(dst / TB_INPUT, dat_lines(to_float(axi.quantize(x, port), port.fixed())))
    shutil.copy2(src / TB_OUTPUT, dst / TB_OUTPUT)


def _fix_axi_types(accel_dir: Path, ports: list[Port]) -> None:
    """The manifest's word types must be what hls4ml wrote into the wrapper, or the host packs wrongly.

    hls4ml 1.3 writes them in its own spelling (`typedef fixed<8,1,RND_CONV,SAT,0> T_in;`), which is no C++
    type: the wrapper compiles only with float ports. They are rewritten in ap_fixed's spelling."""
    from fpgadl.emulator.fixed import FixedType

    header_path = accel_dir / "firmware" / "myproject_axi.h"
    lines = header_path.read_text().splitlines()
    for port, name in zip(ports, ("T_in", "T_out")):
        i = next(k for k, ln in enumerate(lines) if ln.startswith("typedef") and ln.rstrip().endswith(f" {name};"))
        written = FixedType.parse(lines[i].split("typedef", 1)[1].rsplit(name, 1)[0])
        if written != port.axi_fixed():
            raise RuntimeError(f"hls4ml wrote {name} = {written.cpp()}, fpgadl expected {port.axi_type}")
        lines[i] = f"typedef {written.cpp()} {name};"
    header_path.write_text("\n".join(lines) + "\n")


def _fix_dma_widths(accel_dir: Path, ports: list[Port]) -> None:
    """hls4ml 1.3 writes the DMA stream widths swapped (input's into bit_width_hls_output) and unpadded
    (a 10-bit port type gives 10, its AXI data field is 16); the DMA's memory side needs 32 bits or more."""
    tcl = accel_dir / "project.tcl"
    lines = [ln for ln in tcl.read_text().splitlines() if not ln.startswith("set bit_width_hls_")]
    lines += [f"set bit_width_hls_input {ports[0].word_bits}", f"set bit_width_hls_output {ports[1].word_bits}"]
    tcl.write_text("\n".join(lines) + "\n")
    design = accel_dir / "design.tcl"
    text = design.read_text()
    for side, port in (("mm2s", ports[0]), ("s2mm", ports[1])):
        var = "input" if side == "mm2s" else "output"
        mm = max(32, port.word_bits)
        text = text.replace(
            f"CONFIG.c_m_axi_{side}_data_width ${{bit_width_hls_{var}}}", f"CONFIG.c_m_axi_{side}_data_width {mm}"
        )
        text = text.replace(
            f"CONFIG.c_s_axis_{side}_data_width ${{bit_width_hls_{var}}}", f"CONFIG.c_s_axis_{side}_data_width {mm}"
        )
    design.write_text(text)


def _manifest(root: Path, board, accel: str, ports: list[Port], meta: ProjectMeta) -> dict:
    zynq = not accel.startswith("alveo")
    files = sorted(p for p in (root / PROJECT).rglob("*") if p.is_file())
    return {
        "format": BUNDLE_FORMAT,
        "board": board.name,
        "accelerator_board": accel,
        "part": board.part,
        "backend": ACCELERATOR_BACKEND,
        "interface": INTERFACE,
        "shell": "zynq-axi-dma" if zynq else "alveo-rtl-kernel",
        "platform": ALVEO_PLATFORMS.get(accel),
        "clock_period_ns": board.clock_period_ns,
        "clock_mhz": round(1000.0 / board.clock_period_ns, 3),
        "io_type": meta.convert_kwargs["io_type"],
        "ports": {p.name: p.to_dict() for p in ports},
        "onnx_input_shape": meta.input_shape_onnx,
        "onnx_output_shape": meta.output_shape_onnx,
        "packing": {
            "element_order": "row-major over the port's shape (the firmware's channels-last layout); the host "
            "transposes from the ONNX layout",
            "word": "one element per AXI-stream beat: the mantissa of axi_type (the port type widened to 8, 16, "
            "32 or 64 "
            "bits, integer bits kept), two's complement, little-endian bytes in memory",
            "batch": "samples back to back (n * elements beats per transfer); TLAST on the batch's final beat",
        },
        "bitstream": "bitstream/fpgadl.bit" if zynq else "bitstream/fpgadl.xclbin",
        "files": {str(p.relative_to(root)): _sha256(p) for p in files},
    }


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_manifest(bundle: Path) -> dict:
    """The bundle's manifest, validated: a missing, unreadable or altered bundle is a one-line UsageError."""
    bundle = Path(bundle)
    path = bundle / MANIFEST
    if not path.is_file():
        raise UsageError(f"{bundle}: not an fpgadl bundle (no {MANIFEST}); create one with `fpgadl package`")
    try:
        manifest = json.loads(path.read_text())
        ports = {k: Port(**v) for k, v in manifest["ports"].items()}
        fmt, files = manifest["format"], manifest["files"]
    except (ValueError, KeyError, TypeError) as e:
        raise UsageError(f"{path}: corrupt bundle manifest ({type(e).__name__}: {e}); re-run `fpgadl package`") from e
    if fmt != BUNDLE_FORMAT:
        raise UsageError(f"{path}: bundle format {fmt!r}; this fpgadl reads {BUNDLE_FORMAT!r}")
    for rel, digest in files.items():
        f = bundle / rel
        if not f.is_file() or _sha256(f) != digest:
            raise UsageError(f"{bundle}: corrupt bundle ({rel} is missing or altered); re-run `fpgadl package`")
    manifest["ports"] = ports
    return manifest


def _build_script(accel: str, platform: str | None) -> str:
    last = (
        "cd accelerator && mkdir -p xo_files && vivado -mode batch -source design.tcl && \\\n"
        "  mkdir -p xclbin_files && cd xclbin_files && \\\n"
        f'  v++ -t hw --platform "${{PLATFORM:-{platform}}}" --link ../xo_files/myproject_kernel.xo \\\n'
        "    -o myproject_kernel.xclbin --user_ip_repo_paths ../myproject_prj/solution1/impl/ip\n"
        'cd "$HERE" && mkdir -p bitstream && \\\n'
        "  cp accelerator/xclbin_files/myproject_kernel.xclbin bitstream/fpgadl.xclbin\n"
        if platform
        else "cd accelerator && vivado -mode batch -source design.tcl\n"
        'cd "$HERE" && mkdir -p bitstream\n'
        "cp accelerator/myproject_vivado_accelerator/project_1.runs/impl_1/design_1_wrapper.bit bitstream/fpgadl.bit\n"
        "cp accelerator/myproject_vivado_accelerator/project_1.srcs/sources_1/bd/design_1/hw_handoff/design_1.hwh "
        "bitstream/fpgadl.hwh\n"
    )
    return (
        "#!/bin/sh\n"
        f"# Vendor build of the {accel} accelerator: HLS IP (C sim + synthesis + export), then the board design.\n"
        "# Needs vitis_hls or vivado_hls, and vivado (and v++ for Alveo) on PATH.\n"
        "set -e\n"
        'HERE="$(cd "$(dirname "$0")" && pwd)"\n'
        'cd "$HERE/accelerator"\n'
        'HLS="$(command -v vitis_hls || command -v vivado_hls)" || \\\n'
        '  { echo "vitis_hls/vivado_hls not on PATH" >&2; exit 2; }\n'
        '"$HLS" -f build_prj.tcl "csim=1 synth=1 cosim=0 export=1"\n'
        'cd "$HERE"\n' + last
    )


HOST_DRIVER = '''"""Host driver of this bundle (on the board: pip install fpgadl pynq).

    python host/run.py --input X.npy --output Y.npy          # the board (PYNQ)
    python host/run.py --input X.npy --backend emulated      # anywhere: the bit-exact twin
"""

import sys
from pathlib import Path

from fpgadl.runtime.__main__ import main

if __name__ == "__main__":
    sys.exit(main([str(Path(__file__).resolve().parent.parent), *sys.argv[1:]]))
'''
