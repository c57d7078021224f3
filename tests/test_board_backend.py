"""`lockstep run --backend board`: the refusals before any hardware is involved (no board,
unknown board, no such port, a silent port), each one line and exit status 2, no output file.
The protocol itself is tested against the simulated link (tests/test_hostlink.py) and a fake
board behind a pty (tests/test_hostlink_client.py)."""

import os
import subprocess
import sys

import numpy as np
import pytest
from test_onnx_import import BUILDERS, quantize


@pytest.fixture
def model_and_input(tmp_path, seed):
    rng = np.random.default_rng(seed)
    path = quantize(BUILDERS["mlp"](rng), tmp_path / "mlp.onnx", "QOperator", rng)
    np.save(tmp_path / "x.npy", rng.normal(0, 1, (2, 64)).astype(np.float32))
    return path, tmp_path / "x.npy"


def run_board(model, x, out, *args):
    return subprocess.run([sys.executable, "-m", "lockstep.cli", "run", str(model), "--input",
                           str(x), "--output", str(out), "--backend", "board", *args],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def silent_port():
    master, slave = os.openpty()
    yield os.ttyname(slave)
    os.close(slave)
    os.close(master)


@pytest.mark.parametrize("args, message", [
    ([], "--backend board needs --board NAME and --port DEVICE"),
    (["--board", "de10-nano", "--port", "/dev/null"],
     "unknown board 'de10-nano'; known boards: icebreaker, ulx3s-85f"),
    (["--board", "ulx3s-85f"], "the board backend needs a serial port"),
    (["--board", "ulx3s-85f", "--port", "/dev/lockstep-no-such-port"],
     "cannot open /dev/lockstep-no-such-port"),
])
def test_refusals(model_and_input, tmp_path, args, message):
    model, x = model_and_input
    out = tmp_path / "y.npy"
    done = run_board(model, x, out, *args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert not out.exists()


def test_silent_port_times_out(model_and_input, tmp_path, silent_port):
    model, x = model_and_input
    out = tmp_path / "y.npy"
    done = run_board(model, x, out, "--board", "ulx3s-85f", "--port", silent_port,
                     "--timeout", "0.3")
    assert done.returncode == 2
    assert f"no answer from the board on {silent_port} within 0.3 s" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not out.exists()
