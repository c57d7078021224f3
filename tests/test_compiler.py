"""The compiler: compiled networks give the bits of the model's numpy reference on the golden
model (many shapes) and on the RTL (several), with predicted == measured cycles; and every
model that does not fit is refused with a one-line message."""

from dataclasses import replace

import numpy as np
import pytest

from lockstep.compiler import CompileError, compile_model
from lockstep.qmodel import Conv2d, Dense, Flatten, ModelError, QModel, QParams
from lockstep.runtime import run
from rtl.config import CoreConfig
from sim.model import run as golden_run


def random_mlp(rng, sizes=(64, 32, 10)):
    layers = []
    for i, (k, n) in enumerate(zip(sizes, sizes[1:], strict=False)):
        last = i == len(sizes) - 2
        layers.append(Dense(rng.integers(-127, 128, (k, n)), rng.integers(-500, 500, n),
                            rng.uniform(0.001, 0.003, n),
                            QParams(0.3 if last else 0.1, 0 if last else -128),
                            "none" if last else "relu", name=f"fc{i}"))
    return QModel((sizes[0],), QParams(1 / 255, -128), layers, name="mlp")


def random_cnn(rng, channels=(1, 8, 6), classes=10):
    c0, c1, c2 = channels
    return QModel((8, 8, c0), QParams(1 / 255, -128), [
        Conv2d(rng.integers(-127, 128, (3, 3, c0, c1)), rng.integers(-500, 500, c1),
               rng.uniform(0.001, 0.003, c1), QParams(0.05, -128), "relu", name="conv1"),
        Conv2d(rng.integers(-127, 128, (3, 3, c1, c2)), rng.integers(-500, 500, c2),
               rng.uniform(0.001, 0.003, c2), QParams(0.08, -128), "relu6", name="conv2"),
        Flatten(),
        Dense(rng.integers(-127, 128, (16 * c2, classes)), rng.integers(-500, 500, classes),
              rng.uniform(0.001, 0.003, classes), QParams(0.2, 3), name="fc"),
    ], name="cnn")


def big_core(rows, cols):
    return CoreConfig(rows=rows, cols=cols, act_depth=4096, wgt_depth=4096, acc_depth=512,
                      qparam_depth=64, prog_depth=8192)


@pytest.mark.parametrize("rows, cols", [(1, 1), (3, 3), (8, 8), (4, 16), (16, 4), (2, 32)])
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
@pytest.mark.parametrize("batch", [1, 3])
def test_golden_model_matches_reference(rows, cols, kind, batch, seed):
    rng = np.random.default_rng(seed)
    model = random_mlp(rng) if kind == "mlp" else random_cnn(rng)
    compiled = compile_model(model, big_core(rows, cols), batch=batch)
    x = rng.integers(-128, 128, (batch, *model.input_shape)).astype(np.int8)
    state = compiled.with_input(x)
    result = golden_run(state)
    assert result.error.name == "NONE"
    assert result.cycles == compiled.predicted_cycles
    assert np.array_equal(compiled.read_output(state.act), model.reference(x)), f"seed {seed}"
    assert compiled.macs >= batch * sum(
        int(np.prod(layer.weight.shape)) for layer in model.layers if hasattr(layer, "weight"))


def test_runtime_splits_and_pads_batches(seed):
    rng = np.random.default_rng(seed)
    model = random_mlp(rng)
    compiled = compile_model(model, big_core(8, 8), batch=4)
    x = rng.integers(-128, 128, (10, 64)).astype(np.int8)
    out = run(compiled, x, backend="golden")
    assert out.runs == 3 and out.outputs.shape == (10, 10)
    assert np.array_equal(out.outputs, model.reference(x))
    floats = model.input.dequantize(x)
    assert np.array_equal(run(compiled, floats).outputs, out.outputs)


@pytest.mark.parametrize("core, kind", [("8x8", "mlp"), ("8x8", "cnn"), ("ulx3s-85f", "mlp")])
def test_networks_on_icarus(core, kind, seed):
    """Compiled networks on Icarus too (the rest of this file's RTL runs are Verilator's), batch
    1, bit for bit and cycle for cycle: the MLP and the CNN on the 8 x 8 core, and the MLP on
    the ULX3S's exact core (MULT18X18D model, LUT lanes, the board's SRAMs; tests/test_mlperf.py
    runs KWS on it on Verilator)."""
    from boards.catalog import get_board
    rng = np.random.default_rng(seed)
    cfg = big_core(8, 8) if core == "8x8" else get_board(core).core
    model = random_mlp(rng) if kind == "mlp" else random_cnn(rng)
    compiled = compile_model(model, cfg, batch=1)
    x = rng.integers(-128, 128, (1, *model.input_shape)).astype(np.int8)
    rtl = run(compiled, x, backend="sim", simulator="icarus")
    what = f"{model.name} on the {core} core on Icarus, seed {seed}"
    assert np.array_equal(rtl.outputs, model.reference(x)), what
    assert rtl.measured_cycles == [compiled.predicted_cycles], what


@pytest.mark.parametrize("rows, cols", [(8, 8), (4, 16)])
def test_networks_on_the_rtl(rows, cols, seed):
    """MLP and CNN, batch 1 and 2: RTL bits == golden bits == reference; cycles equal."""
    rng = np.random.default_rng(seed)
    cfg = big_core(rows, cols)
    for model in (random_mlp(rng), random_cnn(rng)):
        for batch in (1, 2):
            compiled = compile_model(model, cfg, batch=batch)
            x = rng.integers(-128, 128, (2 * batch, *model.input_shape)).astype(np.int8)
            rtl = run(compiled, x, backend="sim")
            golden = run(compiled, x, backend="golden")
            what = f"{model.name} batch {batch} on {rows}x{cols}, seed {seed}"
            assert np.array_equal(rtl.outputs, golden.outputs), what
            assert np.array_equal(rtl.outputs, model.reference(x)), what
            assert rtl.measured_cycles == [compiled.predicted_cycles] * 2, what


@pytest.mark.parametrize("cfg_args, batch, message", [
    (dict(act_depth=64), 8, r"activation SRAM needs 768 bytes for batch 8 \(the tensors live "
                            r"beside '.*'\), the core has 512 bytes \(64 rows of 8 bytes\)"),
    (dict(wgt_depth=64), 1, r"weight SRAM needs \d+ tiles \(\d+ rows, \d+ bytes\), the core has "
                            r"8 tiles \(64 rows, 512 bytes\)"),
    (dict(qparam_depth=2), 1, r"requantisation SRAM needs 6 rows \(432 bytes\), the core has "
                              r"2 rows"),
    (dict(prog_depth=8), 1, r"program needs \d+ instructions \(\d+ bytes\), the core has room "
                            r"for 8"),
])
def test_models_that_do_not_fit_are_refused(cfg_args, batch, message):
    rng = np.random.default_rng(0)
    cfg = CoreConfig(**{**dict(act_depth=1024, wgt_depth=1024, acc_depth=64, qparam_depth=16,
                               prog_depth=512), **cfg_args})
    # (The accumulator SRAM cannot be too small: positions go in blocks of acc_depth rows.)
    with pytest.raises(CompileError, match=message) as info:
        compile_model(random_mlp(rng), cfg, batch=batch)
    assert "\n" not in str(info.value)


def test_unsupported_structures_are_refused():
    rng = np.random.default_rng(0)
    cnn = random_cnn(rng)
    with pytest.raises(ModelError, match="conv2: expects an HWC image with 8 channels"):
        QModel((8, 8, 1), cnn.input, [cnn.layers[0], Flatten(),
                                      replace(cnn.layers[1], inputs=())])
    with pytest.raises(ModelError, match="fc: reads 'nothing', which no earlier layer makes"):
        QModel((8, 8, 1), cnn.input, [*cnn.layers[:-1], replace(cnn.layers[-1],
                                                                  inputs=("nothing",))])
    with pytest.raises(CompileError, match="batch must be a positive integer"):
        compile_model(cnn, big_core(8, 8), batch=0)
    with pytest.raises(ModelError, match="requantisation scale of"):
        compile_model(QModel((4,), QParams(1.0), [Dense(np.ones((4, 2)), [0, 0], 1.0,
                                                        QParams(0.5))]), big_core(8, 8))


def test_a_model_that_overflows_the_icebreakers_spram_is_refused():
    """The iCEBreaker's weight SRAM is one SPRAM of 16384 rows (2048 tiles of 8 x 2): a dense
    layer of 256 x 160 needs 2560 tiles."""
    from boards.catalog import get_board
    cfg = get_board("icebreaker").core
    with pytest.raises(CompileError, match=r"weight SRAM needs 2\d\d\d tiles \(\d+ rows, [\d.]+ "
                       r"KiB\), the core has 2048 tiles \(16384 rows, 32.0 KiB\)") as info:
        compile_model(random_mlp(np.random.default_rng(0), sizes=(256, 160, 10)), cfg)
    assert "\n" not in str(info.value)
