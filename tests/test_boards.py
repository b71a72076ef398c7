"""Board files: all load, names are confined to boards/, errors name the file and field."""

import pytest

from fpgadl.core.boards import BoardError, custom_board, list_boards, load_board

ALL_BOARDS = {
    "pynq-z1",
    "pynq-z2",
    "zedboard",
    "arty-a7-100t",
    "ultra96-v2",
    "kv260",
    "zcu102",
    "zcu104",
    "vcu118",
    "alveo-u50",
    "alveo-u250",
    "alveo-u280",
}


def test_all_twelve_boards_load():
    """The twelve shipped boards, and every board file there is (adding a board is adding one YAML)."""
    from fpgadl.core.boards import boards_dir

    boards = list_boards()
    assert ALL_BOARDS <= {b.name for b in boards} == {p.stem for p in boards_dir().glob("*.yaml")}
    assert all(b.backend == "Vitis" and b.source for b in boards)


def test_pynq_z2_numbers():
    b = load_board("pynq-z2")
    assert b.part == "xc7z020clg400-1"
    assert b.resources.as_dict() == {"lut": 53200, "ff": 106400, "dsp": 220, "bram18k": 280, "uram": 0}
    assert b.clock_mhz == 100.0
    assert b.dsp_widths == (25, 18)
    assert b.shell == "axi_stream"


def test_ultrascale_dsp_and_uram():
    b = load_board("alveo-u250")
    assert b.dsp_widths == (27, 18)
    assert b.resources.uram == 1280
    assert b.shell == "alveo"


def test_unknown_board_lists_valid_names():
    with pytest.raises(BoardError) as exc:
        load_board("pynq-z3")
    msg = str(exc.value)
    assert "\n" not in msg
    assert all(name in msg for name in ALL_BOARDS)


@pytest.mark.parametrize(
    "name", ["../boards/pynq-z2", "boards/pynq-z2", "/etc/passwd", "..", "pynq-z2.yaml/.."]
)
def test_path_traversal_refused(name):
    with pytest.raises(BoardError, match="invalid board name|unknown board"):
        load_board(name)


def test_malformed_board_names_file_and_field(tmp_path, monkeypatch):
    good = load_board("pynq-z2").model_dump(mode="json")
    import yaml

    good["name"] = "bad"
    del good["resources"]["dsp"]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(good))
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    monkeypatch.setenv("FPGADL_BOARDS_DIR", str(tmp_path))
    with pytest.raises(BoardError, match=r"bad\.yaml: field 'resources\.dsp'"):
        load_board("bad")
    with pytest.raises(BoardError, match=r"broken\.yaml: not valid YAML"):
        load_board("broken")


def test_custom_board_known_part_with_override():
    b = custom_board("xc7z020clg400-1", dsp=100, clock_period_ns=5.0)
    assert b.resources.dsp == 100
    assert b.resources.lut == 53200
    assert b.clock_period_ns == 5.0


def test_custom_board_unknown_part_needs_resources():
    with pytest.raises(BoardError, match=r"lut=N,ff=N,dsp=N,bram18k=N\["):
        custom_board("xc7k325tffg900-2")
    with pytest.raises(BoardError, match=r"resources lut=N,ff=N\["):
        custom_board("xc7k325tffg900-2", dsp=840, bram18k=890)
    b = custom_board("xc7k325tffg900-2", lut=203800, ff=407600, dsp=840, bram18k=890)
    assert b.family == "kintex-7"
    assert b.dsp_widths == (25, 18)
    assert b.resources.uram == 0


def test_custom_board_rejects_unknown_override():
    with pytest.raises(BoardError, match="unknown override"):
        custom_board("xc7z020clg400-1", luts=1)
