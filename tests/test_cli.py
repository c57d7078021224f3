"""`lockstep generate`: Verilog that both simulators build, and one-line refusals; the
command line's help texts and --version."""

import shutil
import subprocess
import sys

import pytest

from sim.runner import find_verilator

LOCKSTEP = [sys.executable, "-m", "lockstep.cli"]


def lockstep(*args, cwd=None):
    return subprocess.run([*LOCKSTEP, *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("rows, cols", [(8, 8), (4, 16)])
def test_generate_builds_on_verilator_and_icarus(rows, cols, tmp_path):
    out = tmp_path / "core.v"
    done = lockstep("generate", "--rows", str(rows), "--cols", str(cols), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert f"{rows}x{cols} array" in done.stdout
    text = out.read_text()
    assert "module lockstep_core" in text
    verilator = find_verilator() / "verilator"
    lint = subprocess.run([str(verilator), "--lint-only", "-Wno-fatal", "-Wno-lint",
                           "-Wno-style", "--top-module", "lockstep_core", str(out)],
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stderr[-2000:]
    iverilog = shutil.which("iverilog")
    assert iverilog, "Icarus Verilog is missing: scripts/install.sh installs it"
    icarus = subprocess.run([iverilog, "-g2012", "-o", str(tmp_path / "core.vvp"),
                             "-s", "lockstep_core", str(out)], capture_output=True, text=True)
    assert icarus.returncode == 0, icarus.stderr[-2000:]


@pytest.mark.parametrize("args, message", [
    (["--rows", "3", "--cols", "8"], "rows and cols must divide one another"),
    (["--rows", "0"], "rows must be between 1 and 64"),
    (["--act-depth", "100000"], "act_depth must be between 1 and 16384"),
])
def test_generate_refuses_invalid_configs_in_one_line(args, message, tmp_path):
    out = tmp_path / "core.v"
    done = lockstep("generate", *args, "-o", str(out))
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_generate_into_a_missing_folder_fails_cleanly(tmp_path):
    done = lockstep("generate", "-o", str(tmp_path / "no" / "such" / "core.v"))
    assert done.returncode == 2
    assert "cannot write" in done.stderr and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments_exit_non_zero():
    done = lockstep("generate", "--rows", "eight", "-o", "x.v")
    assert done.returncode == 2 and "invalid int value" in done.stderr


def test_version():
    from rtl.hostmap import VERSION
    done = lockstep("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("lockstep ") and f"ISA version {VERSION}" in done.stdout


def test_every_option_has_help_and_the_core_flags_share_the_configs_descriptions():
    """No option without a help text (--backend, --simulator and demo --seed had none); build
    lists the boards; each core flag's help is CoreConfig's own description of the field."""
    import argparse
    from dataclasses import fields

    from boards.catalog import BOARDS
    from lockstep.cli import build_parser
    from rtl.config import CoreConfig
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in commands.choices.items():
        for action in sub._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"lockstep {name} {action.option_strings[0]} has no help"
        flags = {a.dest: a.help for a in sub._actions}
        for f in fields(CoreConfig):
            if f.name in flags:
                assert flags[f.name].startswith(CoreConfig.describe(f.name)), (name, f.name)
    build_help = lockstep("build", "--help").stdout
    assert all(board in build_help for board in BOARDS)
