"""Each operator the compiler lowers, in small models of odd shapes (odd spatial sizes, channel
counts that are not multiples of R or C, stride 2 on odd sizes, asymmetric padding): the
golden model gives the bits of the model's numpy reference on several cores, and the RTL gives
the golden model's bits and predicted cycles on both simulators."""


import numpy as np
import pytest

from boards.catalog import BOARDS
from lockstep.compiler import compile_model
from lockstep.qmodel import (
    Add,
    AvgPool,
    Conv2d,
    Dense,
    DepthwiseConv2d,
    Flatten,
    MaxPool,
    QModel,
    QParams,
)
from lockstep.runtime import run
from rtl.config import CoreConfig


def _conv(rng, kh, kw, cin, cout, name, **options):
    return Conv2d(rng.integers(-127, 128, (kh, kw, cin, cout)), rng.integers(-900, 900, cout),
                  rng.uniform(0.001, 0.004, cout), QParams(rng.uniform(0.03, 0.08),
                                                           int(rng.integers(-128, -100))),
                  name=name, **options)


def _depthwise(rng, k, c, name, **options):
    return DepthwiseConv2d(rng.integers(-127, 128, (k, k, c)), rng.integers(-900, 900, c),
                           rng.uniform(0.002, 0.006, c), QParams(0.05, -120), name=name,
                           **options)


def _dense(rng, k, n, name):
    return Dense(rng.integers(-127, 128, (k, n)), rng.integers(-900, 900, n),
                 rng.uniform(0.001, 0.003, n), QParams(0.2, 3), name=name)


def conv_stride2(rng):
    """Conv 3x3 stride 2, padded 1 on every side, on a 7 x 9 image, 3 -> 5 channels."""
    return QModel((7, 9, 3), QParams(1 / 64, 0), [
        _conv(rng, 3, 3, 3, 5, "c1", stride=(2, 2), pads=(1, 1, 1, 1), activation="relu")],
        name="conv_stride2")


def conv_same_asymmetric(rng):
    """'same' padding with the asymmetric split (0 before, 1 after) of a 2x2 kernel, 13
    output channels, then a 10x4-style kernel with stride 2 and uneven padding (KWS's first
    layer, smaller)."""
    return QModel((6, 5, 2), QParams(1 / 64, -3), [
        _conv(rng, 2, 2, 2, 13, "c1", pads=(0, 0, 1, 1), activation="relu6"),
        _conv(rng, 5, 3, 13, 7, "c2", stride=(2, 2), pads=(2, 1, 2, 1), activation="relu")],
        name="conv_same")


def depthwise(rng):
    """Depthwise 3x3 'same' on 7 x 5 x 13, then depthwise 3x3 stride 2 on it (odd sizes)."""
    return QModel((7, 5, 13), QParams(1 / 50, 5), [
        _depthwise(rng, 3, 13, "dw1", pads=(1, 1, 1, 1), activation="relu"),
        _depthwise(rng, 3, 13, "dw2", stride=(2, 2), pads=(1, 1, 1, 1))],
        name="depthwise")


def residual_add(rng):
    """A residual block: x -> conv 3x3 'same' -> a; x + a (different scales), relu; 5 x 7 x 6."""
    return QModel((5, 7, 6), QParams(1 / 40, -7), [
        _conv(rng, 3, 3, 6, 6, "c1", pads=(1, 1, 1, 1), activation="relu"),
        Add(QParams(0.09, -20), "relu", name="sum", inputs=("input", "c1"))],
        name="residual_add")


def pools(rng):
    """Average pool 2x2 (stride = kernel) on 7 x 6 x 5, then max pool 2x2 stride 2 padded at
    the end (odd size), then a global average pool, then a dense layer."""
    return QModel((7, 6, 5), QParams(1 / 30, 9), [
        AvgPool(QParams(0.04, -2), (2, 2), name="avg"),
        MaxPool((2, 2), pads=(0, 0, 1, 1), name="max"),
        AvgPool(QParams(0.03, 1), None, name="gap"),
        Flatten(name="flat"),
        _dense(rng, 5, 3, "fc")],
        name="pools")


def maxpool_3x3(rng):
    """Conv 1x1 then max pool 3x3 stride 2 'same' on 9 x 7 x 4 (the demo CNN family's)."""
    return QModel((9, 7, 4), QParams(1 / 30, 0), [
        _conv(rng, 1, 1, 4, 4, "c1", activation="relu"),
        MaxPool((3, 3), (2, 2), (1, 1, 1, 1), name="max")],
        name="maxpool_3x3")


MODELS = {f.__name__: f for f in (conv_stride2, conv_same_asymmetric, depthwise, residual_add,
                                  pools, maxpool_3x3)}


def pool_core(rows, cols, **options):
    row_bytes = CoreConfig(rows=rows, cols=cols).act_row_bytes
    return CoreConfig(rows=rows, cols=cols, pool=True, pool_line=16,
                      act_depth=8192 // row_bytes, wgt_depth=256 * rows, acc_depth=128,
                      qparam_depth=32, prog_depth=512, **options)


#: The RTL runs on one small core with the window unit and half as many vector (and window)
#: lanes as min(R, C), like the ULX3S core (one simulator build per simulator).
RTL_CORE = pool_core(4, 4, vec_lanes=2)

#: Cores for the golden model: small, not square, with fewer vector (and window) lanes than
#: min(R, C), and the ULX3S board's own.
CORES = {"4x4": pool_core(4, 4), "3x6": pool_core(3, 6), "8x2": pool_core(8, 2),
         "8x8v2": pool_core(8, 8, vec_lanes=2), "4x4v2": RTL_CORE,
         "ulx3s": BOARDS["ulx3s-85f"].core}



def _inputs(model, rng, n):
    return rng.integers(-128, 128, (n, *model.input_shape)).astype(np.int8)


@pytest.mark.parametrize("core", list(CORES))
@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("batch", [1, 2])
def test_golden_model_matches_reference(name, core, batch, seed):
    rng = np.random.default_rng(seed)
    model = MODELS[name](rng)
    compiled = compile_model(model, CORES[core], batch=batch)
    x = _inputs(model, rng, batch)
    result = run(compiled, x, backend="golden")
    assert np.array_equal(result.outputs, model.reference(x)), f"seed {seed}"


@pytest.mark.parametrize("name", list(MODELS))
def test_operators_on_the_rtl(name, simulator, seed):
    rng = np.random.default_rng(seed)
    model = MODELS[name](rng)
    compiled = compile_model(model, RTL_CORE, batch=1)
    x = _inputs(model, rng, 2)
    golden = run(compiled, x, backend="golden")
    rtl = run(compiled, x, backend="sim", simulator=simulator)
    assert np.array_equal(golden.outputs, model.reference(x)), f"seed {seed}"
    assert np.array_equal(rtl.outputs, golden.outputs), f"seed {seed}"
    assert rtl.measured_cycles == [compiled.predicted_cycles] * 2, f"seed {seed}"


def test_whole_row_windows_without_the_window_unit(seed):
    """A core without POOL (the iCEBreaker's: whole-row windows, one pattern register) runs
    strided, padded convolutions, and refuses depthwise convolution naming the unit."""
    rng = np.random.default_rng(seed)
    cfg = BOARDS["icebreaker"].core
    model = conv_same_asymmetric(rng)
    compiled = compile_model(model, cfg)
    x = _inputs(model, rng, 1)
    assert np.array_equal(run(compiled, x, backend="golden").outputs, model.reference(x))
    with pytest.raises(ValueError, match="dw1"):
        compile_model(depthwise(rng), cfg)


def test_windows_beyond_the_window_unit_are_refused(seed):
    model = QModel((9, 8, 5), QParams(1 / 30, 9), [
        AvgPool(QParams(0.04, -2), (3, 2), name="avg")])
    with pytest.raises(ValueError, match=r"^avg \(average pool 3x2\): the window unit takes "
                                         r"kernels up to 3x3 and strides up to 2, not 3x2 "
                                         r"stride 3$"):
        compile_model(model, CORES["4x4"])
