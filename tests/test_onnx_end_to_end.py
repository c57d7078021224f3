"""Quantised ONNX files made in the test with onnxruntime's quantizer, through the whole tool
chain: import, compile, the golden model and the RTL (bit for bit, cycles equal), and the
`lockstep compile` / `lockstep run` commands with their refusals."""

import json
import subprocess
import sys

import numpy as np
import pytest
from test_compiler import big_core
from test_onnx_import import BUILDERS, quantize

from lockstep.compiler import compile_model
from lockstep.onnx import load_onnx
from lockstep.runtime import run

# The core of tests/test_compiler.py's 8x8 runs, so that both share one simulator build.
CORE = big_core(8, 8)
CORE_ARGS = [(f"--{name.replace('_', '-')}" if value else f"--no-{name.replace('_', '-')}")
             if isinstance(value, bool) else f"--{name.replace('_', '-')}={value}"
             for name, value in CORE.to_dict().items()]


@pytest.fixture
def onnx_file(tmp_path, seed):
    def make(name, fmt):
        rng = np.random.default_rng(seed)
        return quantize(BUILDERS[name](rng), tmp_path / f"{name}_{fmt}.onnx", fmt, rng)
    return make


def lockstep(*args):
    return subprocess.run([sys.executable, "-m", "lockstep.cli", *args], capture_output=True,
                          text=True)


@pytest.mark.parametrize("name, fmt", [("mlp", "QOperator"), ("cnn", "QDQ")])
def test_onnx_model_on_golden_and_rtl(onnx_file, name, fmt, seed):
    model = load_onnx(onnx_file(name, fmt))
    compiled = compile_model(model, CORE, batch=2)
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (4, *model.input_shape)).astype(np.int8)
    golden = run(compiled, x, backend="golden")
    rtl = run(compiled, x, backend="sim")
    assert np.array_equal(golden.outputs, model.reference(x)), f"seed {seed}"
    assert np.array_equal(rtl.outputs, golden.outputs), f"seed {seed}"
    assert rtl.measured_cycles == [compiled.predicted_cycles] * 2


def test_cli_compile_and_run(onnx_file, tmp_path, seed):
    path = onnx_file("cnn", "QOperator")
    model = load_onnx(path)
    out = tmp_path / "cnn.lockstep.npz"
    done = lockstep("compile", str(path), *CORE_ARGS, "--batch", "2", "-o", str(out))
    assert done.returncode == 0, done.stderr
    predicted = compile_model(model, CORE, batch=2).predicted_cycles
    assert f"predicted cycles: {predicted} per batch of 2" in done.stdout
    assert out.is_file()

    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (3, 1, 8, 8)).astype(np.float32)    # NCHW, as onnxruntime takes it
    np.save(tmp_path / "x.npy", x)
    results = {}
    for backend in ("golden", "sim"):
        y_path = tmp_path / f"y_{backend}.npy"
        done = lockstep("run", str(path), "--input", str(tmp_path / "x.npy"), "--output",
                        str(y_path), "--backend", backend, "--json", *CORE_ARGS)
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        assert summary["predicted_cycles"] == compile_model(model, CORE).predicted_cycles
        if backend == "sim":
            assert summary["measured_cycles"] == [summary["predicted_cycles"]] * 3
        results[backend] = np.load(y_path)
    assert np.array_equal(results["golden"], results["sim"])
    expected = model.output.dequantize(
        model.reference(model.input.quantize(x.transpose(0, 2, 3, 1))))
    assert np.allclose(results["golden"], expected)


@pytest.mark.parametrize("content, message", [
    (b"not an onnx file at all", "not a valid ONNX file"),
    (b"", "not a valid ONNX file"),
])
def test_cli_refuses_malformed_files(tmp_path, content, message):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(content)
    out = tmp_path / "out.npz"
    done = lockstep("compile", str(bad), "-o", str(out))
    assert done.returncode == 2 and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert not out.exists()


def test_cli_refuses_models_that_do_not_fit(onnx_file, tmp_path):
    path = onnx_file("mlp", "QDQ")
    out = tmp_path / "out.npz"
    done = lockstep("compile", str(path), "--wgt-depth", "16", "-o", str(out))
    assert done.returncode == 2
    assert "weight SRAM needs" in done.stderr and "the core has 2 tiles (16 rows" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == [
        path.name, path.stem + "_float.onnx"]


def test_cli_refuses_missing_files(tmp_path):
    done = lockstep("run", str(tmp_path / "nope.onnx"), "--input", "x.npy", "--output", "y.npy")
    assert done.returncode == 2 and "no such model file" in done.stderr


def test_cli_compile_and_run_for_a_board(onnx_file, tmp_path, seed):
    """--board compiles for the core that board carries and gives the latency at its clock."""
    from boards.catalog import get_board
    board = get_board("ulx3s-85f")
    path = onnx_file("cnn", "QDQ")
    model = load_onnx(path)
    predicted = compile_model(model, board.core).predicted_cycles
    out = tmp_path / "cnn.npz"
    done = lockstep("compile", str(path), "--board", board.name, "-o", str(out))
    assert done.returncode == 0, done.stderr
    us = predicted / board.clock_mhz
    assert (f"predicted cycles: {predicted} per batch of 1, {us:,.1f} us at ulx3s-85f's "
            f"{board.clock_mhz:g} MHz") in done.stdout
    x = np.random.default_rng(seed).normal(0, 1, (2, 1, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    done = lockstep("run", str(path), "--board", board.name, "--input", str(tmp_path / "x.npy"),
                    "--output", str(tmp_path / "y.npy"), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["board"] == board.name and summary["clock_mhz"] == board.clock_mhz
    assert (summary["rows"], summary["cols"]) == (board.core.rows, board.core.cols)
    assert summary["predicted_cycles"] == predicted
    assert summary["predicted_us"] == pytest.approx(us, abs=1e-3)


@pytest.mark.parametrize("command", ["compile", "run", "generate"])
def test_cli_refuses_an_unknown_board_in_one_line(command, onnx_file, tmp_path):
    args = {"compile": [str(onnx_file("mlp", "QDQ")), "-o", str(tmp_path / "o.npz")],
            "run": [str(onnx_file("mlp", "QDQ")), "--input", "x.npy", "--output", "y.npy"],
            "generate": ["-o", str(tmp_path / "o.v")]}[command]
    done = lockstep(command, *args, "--board", "de10-nano")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown board 'de10-nano'" in lines[0], done.stderr
    assert "icebreaker" in lines[0] and "ulx3s-85f" in lines[0]
    assert not (tmp_path / "o.npz").exists() and not (tmp_path / "o.v").exists()


def test_cli_board_backend_refuses_core_flags(onnx_file, tmp_path):
    done = lockstep("run", str(onnx_file("mlp", "QDQ")), "--input", "x.npy", "--output", "y.npy",
                    "--backend", "board", "--board", "icebreaker", "--rows", "4",
                    "--port", "/dev/null")
    assert done.returncode == 2
    assert "drop the core flags" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_cli_runs_a_compiled_program(onnx_file, tmp_path, seed):
    """`run` takes `compile`'s .npz: the same outputs and cycles as the ONNX file, on the golden
    model and on the RTL, without compiling again."""
    path = onnx_file("cnn", "QDQ")
    program = tmp_path / "cnn.npz"
    done = lockstep("compile", str(path), *CORE_ARGS, "--batch", "2", "-o", str(program))
    assert done.returncode == 0, done.stderr
    x = np.random.default_rng(seed).normal(0, 1, (3, 1, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    outputs = {}
    for source, backend in ((path, "golden"), (program, "golden"), (program, "sim")):
        y_path = tmp_path / f"y_{source.suffix[1:]}_{backend}.npy"
        args = ["--batch", "2", *CORE_ARGS] if source == path else []
        done = lockstep("run", str(source), "--input", str(tmp_path / "x.npy"), "--output",
                        str(y_path), "--backend", backend, "--json", *args)
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        assert summary["batch"] == 2 and summary["runs"] == 2
        if backend == "sim":
            assert summary["measured_cycles"] == [summary["predicted_cycles"]] * 2, f"seed {seed}"
        outputs[source.suffix, backend] = (np.load(y_path), summary["predicted_cycles"])
    (onnx_y, onnx_cycles), *others = outputs.values()
    for y, cycles in others:
        assert np.array_equal(y, onnx_y) and cycles == onnx_cycles, f"seed {seed}"


def test_cli_refuses_a_compiled_program_for_another_core(onnx_file, tmp_path):
    program = tmp_path / "mlp.npz"
    done = lockstep("compile", str(onnx_file("mlp", "QDQ")), "--board", "ulx3s-85f", "-o",
                    str(program))
    assert done.returncode == 0, done.stderr
    np.save(tmp_path / "x.npy", np.zeros((1, 64), np.float32))
    out = tmp_path / "y.npy"
    for args, message in (
            (["--board", "icebreaker"], "compiled for another core than --board icebreaker's: "
             "they differ in rows (12 vs 8), cols (12 vs 2)"),
            (["--board", "ulx3s-85f", "--pe-stages", "2"],
             "than --board ulx3s-85f --pe-stages 2's: they differ in pe_stages (4 vs 2)"),
            (["--batch", "4"], "compiled for batch 1, not 4")):
        done = lockstep("run", str(program), "--input", str(tmp_path / "x.npy"), "--output",
                        str(out), *args)
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and not out.exists()
    # The command of the README: compiled for the board, run on the RTL of its core.
    done = lockstep("run", str(program), "--board", "ulx3s-85f", "--input",
                    str(tmp_path / "x.npy"), "--output", str(out), "--backend", "sim", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["board"] == "ulx3s-85f" and (summary["rows"], summary["cols"]) == (12, 12)
    assert summary["measured_cycles"] == [summary["predicted_cycles"]] and out.is_file()


def _damage(program, tmp_path):
    """Copies of a compiled program, each spoilt in one way, with the error each must give."""
    data = dict(np.load(program))
    meta = json.loads(bytes(data["meta"]).decode())

    def variant(name, change, message):
        m, d = json.loads(json.dumps(meta)), dict(data)
        change(m, d)
        d["meta"] = np.frombuffer(json.dumps(m).encode(), dtype=np.uint8)
        np.savez(tmp_path / name, **d)
        return tmp_path / name, message

    (tmp_path / "text.npz").write_text("not a zip file")
    (tmp_path / "cut.npz").write_bytes(program.read_bytes()[:200])
    return [
        (tmp_path / "text.npz", "not a Lockstep compiled program (not an .npz file)"),
        (tmp_path / "cut.npz", "not a Lockstep compiled program"),
        (tmp_path / "missing.npz", "no such model file"),
        variant("old.npz", lambda m, d: m.update(isa_version=1), "compiled for ISA version 1"),
        variant("format.npz", lambda m, d: m.update(format="x"), "not a Lockstep compiled program"
                " of format"),
        variant("config.npz", lambda m, d: m["config"].pop("rows"), "a damaged compiled program"),
        variant("image.npz", lambda m, d: d.update(wgt=d["wgt"][:3]), "its wgt image is int8 [3,"),
    ]


def test_cli_refuses_damaged_compiled_programs(onnx_file, tmp_path):
    program = tmp_path / "mlp.npz"
    done = lockstep("compile", str(onnx_file("mlp", "QDQ")), "-o", str(program))
    assert done.returncode == 0, done.stderr
    np.save(tmp_path / "x.npy", np.zeros((1, 64), np.float32))
    out = tmp_path / "y.npy"
    for bad, message in _damage(program, tmp_path):
        done = lockstep("run", str(bad), "--input", str(tmp_path / "x.npy"), "--output",
                        str(out))
        assert done.returncode == 2 and message in done.stderr, (bad.name, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
        assert not out.exists()


def test_cli_refuses_non_finite_inputs_and_missing_folders_before_any_work(onnx_file, tmp_path):
    path = onnx_file("mlp", "QDQ")
    x = np.zeros((2, 64), np.float32)
    x[1, 5] = np.inf
    np.save(tmp_path / "x.npy", x)
    done = lockstep("run", str(path), "--input", str(tmp_path / "x.npy"), "--output",
                    str(tmp_path / "y.npy"), "--backend", "sim")
    assert done.returncode == 2
    assert "x.npy: 1 of 128 values are NaN or infinite (the first at flat index 69)" in done.stderr
    assert not (tmp_path / "y.npy").exists()
    x[1, 5] = 0
    np.save(tmp_path / "x.npy", x)
    for command, args in (("run", ["--input", str(tmp_path / "x.npy"), "--backend", "sim"]),
                          ("compile", [])):
        out = "--output" if command == "run" else "-o"
        done = lockstep(command, str(path), *args, out, str(tmp_path / "nope" / "y.npy"))
        assert done.returncode == 2 and "no such folder" in done.stderr, done.stderr
        assert "RTL" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
