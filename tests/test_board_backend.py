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

from rtl.hostlink_protocol import Cmd
from rtl.hostmap import Region


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


# -- load once, infer many: the board backend against a fake board (the golden model behind the
# host bus, tests/test_hostlink_client.py) carrying the iCEBreaker's core ----------------------

def _dense_network(rng, dims):
    from lockstep.qmodel import Dense, QModel, QParams
    layers = [Dense(rng.integers(-127, 128, (k, n)), rng.integers(-500, 500, n),
                    rng.uniform(0.001, 0.003, n), QParams(0.05, -128), "relu", name=f"fc{i}")
              for i, (k, n) in enumerate(zip(dims[:-1], dims[1:], strict=True))]
    return QModel((dims[0],), QParams(1 / 255, -128), layers)


def _written_words(board, since=0):
    return sum(len(r.words) for r in board.requests[since:] if r.cmd == Cmd.WRITE)


def test_the_model_goes_over_the_link_once(seed):
    from test_hostlink_client import FakeBoard

    from boards.catalog import get_board
    from lockstep.board import BoardConnection
    from lockstep.compiler import compile_model
    from lockstep.runtime import run
    from sim.model import access_of

    cfg = get_board("icebreaker").core
    rng = np.random.default_rng(seed)
    compiled = compile_model(_dense_network(rng, (24, 16, 8)), cfg)
    fake = FakeBoard(cfg)
    board = BoardConnection("icebreaker", transport=fake)
    x = rng.integers(-128, 128, (3, 24)).astype(np.int8)
    result = run(compiled, x, backend="board", board=board)
    golden = run(compiled, x, backend="golden")
    assert np.array_equal(result.outputs, golden.outputs), f"seed {seed}"
    assert result.measured_cycles == [compiled.predicted_cycles] * 3

    needs = access_of(compiled.state)
    first, *later = [r["loaded_rows"] for r in result.link]
    assert first["wgt"] == compiled.wgt_rows and first["prog"] == compiled.instructions
    for loaded in later:   # only the rows the program reads first: the input's
        assert loaded == {"prog": 0, "act": len(needs.act_rows_read_first), "wgt": 0, "acc": 0,
                          "qparam": 0}, f"seed {seed}"
    assert set(needs.act_rows_read_first) == set(
        np.unique((compiled.input.base + np.arange(24)) // cfg.act_row_bytes))

    # One more inference: what goes over the link is its input and its output rows, nothing
    # else (besides START, the STATUS polls and the counters).
    since = len(fake.requests)
    y = run(compiled, x[:1], backend="board", board=board)
    assert np.array_equal(y.outputs, golden.outputs[:1])
    row_words = board.client.protocol.map.words_per_row(Region.ACT)
    assert _written_words(fake, since) == len(needs.act_rows_read_first) * row_words + 1
    reads = [r.length for r in fake.requests[since:] if r.cmd == Cmd.READ]
    polls = fake.core.busy_polls + 1
    assert sum(reads) == len(compiled.output_rows) * row_words + 4 + polls   # + counters


def test_a_failed_load_forgets_what_the_board_holds(seed):
    """A link failure in the middle of a load leaves the board in an unknown state: the next
    run loads everything again, and its results are right."""
    from test_hostlink_client import FakeBoard

    from boards.catalog import get_board
    from lockstep.board import BoardConnection
    from lockstep.compiler import compile_model
    from lockstep.hostlink import LinkError
    from lockstep.runtime import run

    rng = np.random.default_rng(seed)
    board = BoardConnection("icebreaker", transport=FakeBoard(get_board("icebreaker").core))
    compiled = compile_model(_dense_network(rng, (16, 8)), board.cfg)
    x = rng.integers(-128, 128, (2, 16)).astype(np.int8)
    first = run(compiled, x[:1], backend="board", board=board)
    fake = board.client.transport
    calls = {"n": 0}

    def break_the_third_answer(response):
        calls["n"] += 1
        return response[:2] if calls["n"] == 3 else response
    fake.mangle = break_the_third_answer
    other = compiled.with_input(x[1:])
    other.wgt[:] = 0          # a different model: many frames to write
    with pytest.raises(LinkError, match="truncated response"):
        board.run(other)
    assert not any(known.any() for known in board.held.known.values())
    fake.mangle = None
    again = run(compiled, x, backend="board", board=board)
    assert again.link[0]["loaded_rows"]["wgt"] == first.link[0]["loaded_rows"]["wgt"]
    assert np.array_equal(again.outputs, run(compiled, x, backend="golden").outputs)
