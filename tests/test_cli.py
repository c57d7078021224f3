"""`lockstep generate`: Verilog that both simulators build, and one-line refusals."""

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
