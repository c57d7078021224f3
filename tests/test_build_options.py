"""`lockstep build --rows R --cols C`: the core that would be built, without the FPGA tools."""

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from boards import build as board_build
from boards.build import parse_report
from boards.catalog import get_board
from lockstep import cli

REPORT = {"fmax": {"clk": {"achieved": 30.0, "constraint": 25.0}},
          "utilization": {"TRELLIS_COMB": {"available": 83640, "used": 9000},
                          "MULT18X18D": {"available": 156, "used": 24},
                          "DP16KD": {"available": 208, "used": 120}}}


@pytest.fixture
def fake_build(monkeypatch):
    """Replace the real build with one that records its arguments and reports REPORT."""
    calls = []

    def build(board_name, build_dir=None, core=None, **kwargs):
        calls.append({"board": board_name, "build_dir": build_dir, "core": core, **kwargs})
        board = get_board(board_name)
        if core is not None:
            board = replace(board, core=core)
        folder = Path(build_dir or "build")
        return parse_report(REPORT, board, build_dir=str(folder),
                            bitstream=None if calls[-1].get("seed") == 13 else
                            str(folder / "lockstep.bit"))

    monkeypatch.setattr(board_build, "build", build)
    return calls


def test_rows_and_cols_override_only_the_array_shape(fake_build, tmp_path, capsys):
    out_json = tmp_path / "r.json"
    assert cli.main(["build", "--board", "ulx3s-85f", "--rows", "4", "--cols", "4",
                     "--report-json", str(out_json)]) == 0
    (call,) = fake_build
    own = get_board("ulx3s-85f").core
    assert call["core"] == replace(own, rows=4, cols=4, vec_lanes=None)
    assert call["core"].act_depth == own.act_depth and call["core"].wgt_depth == own.wgt_depth
    # Not the board's own folder, which `lockstep flash` programs from.
    assert Path(call["build_dir"]) == Path("build/boards/ulx3s-85f-4x4")
    data = json.loads(out_json.read_text())
    assert (data["rows"], data["cols"], data["macs_per_cycle"]) == (4, 4, 16)
    assert "4x4 array, 16 MACs/cycle" in capsys.readouterr().out


def test_a_shape_the_board_core_cannot_take_is_one_line(fake_build, capsys):
    """The ULX3S core's weight SRAM (12288 rows) is more than a 2-row array addresses."""
    assert cli.main(["build", "--board", "ulx3s-85f", "--rows", "2", "--cols", "2"]) == 2
    assert not fake_build
    assert capsys.readouterr().err.strip() == (
        "lockstep build: error: wgt_depth must be between 1 and 8192, not 12288")


def test_one_of_rows_cols_keeps_the_other(fake_build, tmp_path):
    assert cli.main(["build", "--board", "icebreaker", "--cols", "2",
                     "--build-dir", str(tmp_path / "b")]) == 0
    (call,) = fake_build
    own = get_board("icebreaker").core
    assert (call["core"].rows, call["core"].cols) == (own.rows, 2)
    assert call["build_dir"] == str(tmp_path / "b")


def test_vec_mult_cycles_overrides_only_the_vector_multiplier(fake_build):
    assert cli.main(["build", "--board", "icebreaker", "--vec-mult-cycles", "8"]) == 0
    (call,) = fake_build
    own = get_board("icebreaker").core
    assert call["core"] == replace(own, vec_mult_cycles=8, vec_read_latency=2)
    assert Path(call["build_dir"]) == Path(
        f"build/boards/icebreaker-{own.rows}x{own.cols}v{own.vec_lanes}s8")


def test_a_serial_multiplier_for_logic_lanes_is_one_line(fake_build, capsys):
    assert cli.main(["build", "--board", "ulx3s-85f", "--vec-mult-cycles", "32"]) == 2
    assert not fake_build
    assert capsys.readouterr().err.strip() == (
        "lockstep build: error: vec_lut needs one multiply a cycle (vec_mult_cycles 1), not 32")


def test_pe_stages_overrides_only_the_pes(fake_build):
    assert cli.main(["build", "--board", "ulx3s-85f", "--pe-stages", "3"]) == 0
    (call,) = fake_build
    own = get_board("ulx3s-85f").core
    assert call["core"] == replace(own, pe_stages=3)
    suffix = "" if own.pe_stages == 3 else "-pe3"
    assert Path(call["build_dir"]) == Path(f"build/boards/ulx3s-85f-{own.shape}{suffix}")


def test_bad_pe_stages_is_one_line_and_exit_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "lockstep.cli", "build", "--board",
                           "ulx3s-85f", "--pe-stages", "6", "--build-dir",
                           str(tmp_path / "b")], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip() == ("lockstep build: error: pe_stages must be one of 2, 3, 4, 5, "
                                   "not 6")
    assert not (tmp_path / "b").exists()


def test_a_build_without_bitstream_fails(fake_build, tmp_path, capsys):
    """Timing met but no bitstream (the packer stopped; the fake build does that for seed 13):
    the figures are printed, the JSON written, and the build fails with one line."""
    out_json = tmp_path / "r.json"
    assert cli.main(["build", "--board", "ulx3s-85f", "--seed", "13", "--build-dir",
                     str(tmp_path / "b"), "--report-json", str(out_json)]) == 2
    captured = capsys.readouterr()
    assert "Fmax" in captured.out and json.loads(out_json.read_text())["bitstream"] is None
    assert captured.err.strip() == ("lockstep build: error: no bitstream: the build stopped "
                                    f"after place and route (see {tmp_path / 'b' / 'build.log'})")


def test_without_rows_cols_the_board_core_is_built(fake_build):
    assert cli.main(["build", "--board", "icebreaker"]) == 0
    (call,) = fake_build
    assert call["core"] is None and call["build_dir"] is None
    assert cli.build_core(get_board("icebreaker")) is None


def test_report_has_the_shape_of_the_board_core():
    board = get_board("ulx3s-85f")
    report = parse_report(REPORT, board)
    assert (report.rows, report.cols) == (board.core.rows, board.core.cols)


def test_invalid_shape_is_one_line_and_exit_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "lockstep.cli", "build", "--board",
                           "icebreaker", "--rows", "3", "--cols", "4", "--build-dir",
                           str(tmp_path / "b")], capture_output=True, text=True)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("lockstep build: error:")
    assert "rows and cols must divide one another" in lines[0]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "b").exists()
