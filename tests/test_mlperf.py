"""MLPerf Tiny's four models (lockstep/mlperf.py: the published shapes, seeded weights,
quantised with onnxruntime's quantize_static, QDQ, int8, per channel):

* the import agrees with onnxruntime within 1 LSB, layer by layer (each layer fed
  onnxruntime's own int8 inputs, so that a rounding difference upstream is not counted
  again downstream);
* each model compiles for the ULX3S board's core, and the golden model gives the bits of the
  model's reference; a model that does not fit is refused in one line that names the memory;
* on the RTL (Verilator), KWS (on the ULX3S core) and AD (on that core with the weight SRAM
  it needs) give the golden model's bits with predicted == measured cycles.
"""

from dataclasses import replace

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper

from boards.catalog import BOARDS
from lockstep import mlperf
from lockstep.compiler import CompileError, compile_model
from lockstep.onnx import load_onnx
from lockstep.qmodel import INPUT, Flatten
from lockstep.runtime import run

ULX3S = BOARDS["ulx3s-85f"].core
#: The ULX3S core with the weight and program SRAMs AD needs (its 264 k weights take 1936
#: tiles; the board's core holds 1024 beside the activation SRAM that IC needs).
ULX3S_DENSE = replace(ULX3S, wgt_depth=24576, prog_depth=4096)

#: The layers each model imports as, by kind (lockstep/qmodel.py's class names).
STRUCTURE = {
    "kws": {"Conv2d": 5, "DepthwiseConv2d": 4, "AvgPool": 1, "Flatten": 1, "Dense": 1},
    "ic": {"Conv2d": 9, "Add": 3, "AvgPool": 1, "Flatten": 1, "Dense": 1},
    "ad": {"Dense": 10},
    "vww": {"Conv2d": 14, "DepthwiseConv2d": 13, "AvgPool": 1, "Flatten": 1, "Dense": 1},
}


@pytest.fixture(scope="module")
def quantised(tmp_path_factory):
    """quantised(name, batch_norm=False) -> path of the model quantised by onnxruntime (made
    once per module)."""
    cache = {}

    def make(name, batch_norm=False):
        if (name, batch_norm) not in cache:
            folder = tmp_path_factory.mktemp(f"{name}{'_bn' if batch_norm else ''}")
            rng = np.random.default_rng(zlib_seed(name))
            cache[name, batch_norm] = mlperf.quantize_onnx(
                mlperf.build(name, seed=zlib_seed(name), batch_norm=batch_norm),
                folder / f"{name}.onnx", rng)
        return cache[name, batch_norm]
    return make


def zlib_seed(name):
    import zlib
    return zlib.crc32(name.encode()) & 0xFFFF


def onnxruntime_tensors(path, x):
    """Every int8 tensor (QuantizeLinear output) of the quantised file for float input ``x``,
    from onnxruntime without graph optimisations (its reference arithmetic), NHWC."""
    model = onnx.load(str(path))
    names = [n.output[0] for n in model.graph.node if n.op_type == "QuantizeLinear"]
    for name in names:
        model.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.INT8,
                                                                None))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    outputs = session.run(None, {mlperf.INPUT_NAME: x})[-len(names):]
    return [np.ascontiguousarray(t.transpose(0, 2, 3, 1)) if t.ndim == 4 else t
            for t in outputs]


def all_values(model, x):
    """Every tensor of ``model``'s int8 reference for input ``x``: {name: array}."""
    tensors = model.tensors()
    values = {INPUT: x}
    for layer in model.core_layers:
        values[layer.name] = layer.reference([values[n] for n in layer.inputs],
                                             [tensors[n][1] for n in layer.inputs])
    return values


def match(values, candidates):
    """For each tensor of the reference, onnxruntime's tensor of its size that is closest to
    it (the files do not name the importer's tensors; their values tell them apart)."""
    matched = {}
    for name, value in values.items():
        same = [c for c in candidates if c.size == value.size]
        assert same, f"onnxruntime has no tensor of {value.size} values for {name}"
        distance = [np.mean(np.abs(c.reshape(value.shape).astype(np.int32) - value)) for c in same]
        matched[name] = same[int(np.argmin(distance))].reshape(value.shape)
    return matched


def compare_layers(path, model, rng, name="model"):
    """{layer: largest difference in LSB from onnxruntime}, each layer fed onnxruntime's own
    int8 inputs, for 8 normal random inputs; prints the end-to-end difference too."""
    dims = [d.dim_value for d in onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim]
    x = rng.normal(0, 1, (8, *dims[1:])).astype(np.float32)
    theirs = onnxruntime_tensors(path, x)
    ours = all_values(model, theirs[0].reshape(8, *model.input_shape))
    theirs = match(ours, theirs)
    tensors = model.tensors()
    producers = {layer.name: layer for layer in model.core_layers}
    worst = {}
    for layer in model.core_layers:
        if isinstance(layer, Flatten):
            continue
        inputs = []
        for n in layer.inputs:
            producer = producers.get(n)
            if isinstance(producer, Flatten):   # its order is the IR's (y, x, c), not ONNX's
                inputs.append(producer.reference([theirs[producer.inputs[0]]], [None]))
            else:
                inputs.append(theirs[n])
        got = layer.reference(inputs, [tensors[n][1] for n in layer.inputs])
        worst[layer.name] = int(np.abs(got.astype(np.int32) - theirs[layer.name]).max())
    last = model.core_layers[-1].name
    end = np.abs(ours[last].astype(np.int32) - theirs[last])
    print(f"{name}: per layer, at most {max(worst.values())} LSB from onnxruntime; end to end "
          f"{int(end.max())} LSB ({np.mean(end > 0):.0%} of outputs differ)")
    return worst


@pytest.mark.parametrize("name", list(mlperf.MODELS))
def test_import_matches_onnxruntime(quantised, name, seed):
    path = quantised(name)
    model = load_onnx(path)
    kinds = {}
    for layer in model.core_layers:
        kinds[type(layer).__name__] = kinds.get(type(layer).__name__, 0) + 1
    assert kinds == STRUCTURE[name]
    assert [type(layer).__name__ for layer in model.host_layers] == (
        [] if name == "ad" else ["Softmax"])

    worst = compare_layers(path, model, np.random.default_rng(seed), name)
    assert max(worst.values()) <= 1, f"seed {seed}: {worst}"


@pytest.mark.parametrize("how", ["pre_process", "left_float", "quantised_alone"])
def test_batch_normalisation(tmp_path, how, seed):
    """KWS with its BatchNormalizations left in the graph by the exporter. Folded by
    onnxruntime's pre-processing, the model imports as the folded one and agrees with
    onnxruntime within 1 LSB per layer. Quantised without pre-processing, onnxruntime puts
    each BatchNormalization after its convolution's QuantizeLinear (also when it is left out
    of op_types_to_quantize): folding it would drop that rounding step and differ from the
    file, so it is refused by name, with the remedy."""
    rng = np.random.default_rng(seed)
    options = {"pre_process": {"pre_process": True},
               "left_float": {"op_types_to_quantize": ["Conv", "Gemm", "Add", "Relu",
                                                       "AveragePool", "Flatten"]},
               "quantised_alone": {}}[how]
    path = mlperf.quantize_onnx(mlperf.build("kws", seed=seed, batch_norm=True),
                                tmp_path / "kws.onnx", rng, **options)
    nodes = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert ("BatchNormalization" in nodes) == (how != "pre_process")
    if how != "pre_process":
        with pytest.raises(ValueError, match=r"^BatchNormalization \(node 'bn2'\): .* fold it "
                                             r"before quantising"):
            load_onnx(path)
        return
    model = load_onnx(path)
    assert [type(layer).__name__ for layer in model.core_layers] == [
        "Conv2d"] + ["DepthwiseConv2d", "Conv2d"] * 4 + ["AvgPool", "Flatten", "Dense"]
    worst = compare_layers(path, model, rng)
    assert max(worst.values()) <= 1, f"seed {seed}: {worst}"


@pytest.mark.parametrize("name", list(mlperf.MODELS))
def test_compiles_for_the_ulx3s(quantised, name, seed):
    model = load_onnx(quantised(name))
    try:
        compiled = compile_model(model, ULX3S)
    except CompileError as exc:
        message = str(exc)
        assert "\n" not in message and " needs " in message and "the core has" in message
        print(f"{name}: refused: {message}")
        assert name in ("ad", "vww") and message.startswith("weight SRAM needs "), message
        return
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (1, *model.input_shape)).astype(np.int8)
    assert np.array_equal(run(compiled, x, backend="golden").outputs, model.reference(x))
    print(f"{name}: {compiled.predicted_cycles} cycles, {compiled.macs} MACs")


@pytest.mark.parametrize("name", ["kws", "ad"])
def test_on_the_rtl(quantised, name, seed):
    model = load_onnx(quantised(name))
    compiled = compile_model(model, ULX3S if name == "kws" else ULX3S_DENSE)
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (1, *model.input_shape)).astype(np.int8)
    golden = run(compiled, x, backend="golden")
    rtl = run(compiled, x, backend="sim", simulator="verilator")
    assert np.array_equal(golden.outputs, model.reference(x)), f"seed {seed}"
    assert np.array_equal(rtl.outputs, golden.outputs), f"seed {seed}"
    assert rtl.measured_cycles == [compiled.predicted_cycles], f"seed {seed}"
