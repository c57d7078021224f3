"""`lockstep profile`: the per-layer figures of a compiled program, checked against the RTL's
own cycle count, and its refusals."""

import json
import subprocess
import sys

import numpy as np
import pytest

from boards.catalog import get_board
from lockstep.artifact import save_compiled
from lockstep.compiler import compile_model
from lockstep.demo import demo_network
from lockstep.profile import PARTS, layer_profile
from lockstep.runtime import run
from lockstep.timeline import UNITS, busy_intervals

BOARD = get_board("ulx3s-85f")


def lockstep(*args):
    return subprocess.run([sys.executable, "-m", "lockstep.cli", *args], capture_output=True,
                          text=True)


@pytest.fixture(scope="module")
def demo_cnn():
    _, model, xs, _ = demo_network("cnn")
    return model, model.input.quantize(xs[:1])


def test_profile_of_the_demo_cnn_adds_up_to_the_rtls_cycles(demo_cnn, tmp_path):
    model, x = demo_cnn
    compiled = compile_model(model, BOARD.core)
    rtl = run(compiled, x, backend="sim")
    assert rtl.measured_cycles == [compiled.predicted_cycles]

    program = tmp_path / "cnn.npz"
    program.write_bytes(save_compiled(compiled))
    figures, drawing = tmp_path / "cnn.json", tmp_path / "cnn.png"
    done = lockstep("profile", str(program), "--board", BOARD.name, "--json", str(figures),
                    "--timeline", str(drawing))
    assert done.returncode == 0, done.stderr
    profile = json.loads(figures.read_text())
    measured = rtl.measured_cycles[0]
    assert profile["cycles"] == measured
    assert profile["fetch"] + sum(layer["cycles"] for layer in profile["layers"]) == measured
    assert profile["macs"] == model.macs()
    for layer, expected in zip(profile["layers"], compiled.layers, strict=True):
        assert sum(layer["parts"][p] for p in PARTS) == layer["cycles"] == expected["cycles"]
        assert layer["utilization"] == pytest.approx(
            layer["macs"] / max(layer["cycles"], 1) / BOARD.core.macs_per_cycle)
    assert sum(layer["wgt_rows"] for layer in profile["layers"]) == compiled.wgt_rows
    assert sum(layer["qparam_rows"] for layer in profile["layers"]) == compiled.qparam_rows

    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"cnn.npz on ulx3s-85f's core (12x12, 144 MACs/cycle), batch 1: "
                               f"{measured:,} cycles, {measured / BOARD.clock_mhz:,.1f} us at 50")
    for layer in model.core_layers:
        assert any(line.startswith(layer.describe()) for line in lines), layer.describe()
    total = next(line for line in lines if line.startswith("total"))
    assert total.split() == ["total", f"{model.macs():,}", f"{measured:,}",
                             f"{100 * model.macs() / measured / 144:.1f}%"]
    assert drawing.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_profile_parts_follow_the_schedule(demo_cnn):
    """The dense layer at batch 1 waits for weights; the busy intervals of each unit never
    overlap themselves, and the array streams exactly the MATMUL rows."""
    model, _ = demo_cnn
    compiled = compile_model(model, BOARD.core)
    profile = layer_profile(compiled)
    dense = profile["layers"][-1]
    assert dense["limit"] == "weight_load" and dense["parts"]["drain"] > 0
    spans, total = busy_intervals(compiled)
    assert total == compiled.predicted_cycles and set(spans) == set(UNITS)
    for unit in ("array stream", "vector unit", "stall"):
        ends = [start + length for start, length in sorted(spans[unit])]
        starts = [start for start, _ in sorted(spans[unit])]
        assert all(e <= s for e, s in zip(ends[:-1], starts[1:], strict=True)), unit
    streamed = sum(layer["parts"]["stream"] for layer in profile["layers"])
    assert sum(length for _, length in spans["array stream"]) == streamed


def test_profile_compiles_an_onnx_file_and_refuses_bad_options(tmp_path):
    from test_onnx_import import BUILDERS, quantize
    rng = np.random.default_rng(7)
    path = quantize(BUILDERS["mlp"](rng), tmp_path / "mlp.onnx", "QDQ", rng)
    done = lockstep("profile", str(path), "--rows", "4", "--cols", "4")
    assert done.returncode == 0, done.stderr
    assert "mlp.onnx on a core (4x4, 16 MACs/cycle), batch 1:" in done.stdout
    for args, message in ((["--timeline", str(tmp_path / "t.jpg")], "a .png or an .svg"),
                          (["--json", str(tmp_path / "no" / "p.json")], "no such folder"),
                          (["--board", "de10-nano"], "unknown board 'de10-nano'")):
        done = lockstep("profile", str(path), *args)
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlp.onnx", "mlp_float.onnx"]
