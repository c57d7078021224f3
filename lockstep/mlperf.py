"""MLPerf Tiny's four reference models, built from their published layer shapes with seeded
random weights, as float ONNX graphs, and quantised the way a user would: onnxruntime's
``quantize_static`` (QDQ, int8, per-channel weights), calibrated on seeded random inputs.

The real data sets are not reachable here, so nothing is claimed about accuracy: latency
depends on the shapes alone, and correctness is checked against onnxruntime running the same
quantised file (tests/test_mlperf.py).

* KWS, DS-CNN: 49 x 10 MFCC -> conv 10x4 stride 2 'same' (64) -> 4 x [depthwise 3x3 'same',
  pointwise 64] -> average pool 25x5 -> dense 12 -> softmax;
* IC, ResNet-8: 32 x 32 x 3 -> conv 3x3 (16) -> 3 stacks (16; 32 stride 2; 64 stride 2) of
  [conv 3x3, conv 3x3] + shortcut (identity, or 1x1 stride 2), add, relu -> average pool 8x8
  -> dense 10 -> softmax;
* AD, FC autoencoder: 640 -> 128 x 4 -> 8 -> 128 x 4 -> 640;
* VWW, MobileNetV1 0.25: 96 x 96 x 3 -> conv 3x3 stride 2 (8) -> 13 depthwise-separable blocks
  -> global average pool -> dense 2 -> softmax.

Every convolution and dense layer but the last is followed by a ReLU, as in the reference
models, whose BatchNormalizations an exporter folds into the layer before them: the random
weights stand for the folded ones. With ``batch_norm=True`` the BatchNormalizations stay in the
graph, as an exporter that does not fold would leave them (the import folds them).
"""

import numpy as np

__all__ = ["MODELS", "build", "quantize_onnx", "calibration", "INPUT_NAME"]

INPUT_NAME = "x"


class _Net:
    """A float ONNX graph under construction, NCHW, one input."""

    def __init__(self, rng, shape, batch_norm=False):
        import onnx
        self.with_bn = batch_norm
        self.onnx = onnx
        self.rng = rng
        self.nodes, self.weights = [], {}
        self.shape = tuple(shape)            # without the batch
        self.input_shape = tuple(shape)
        self.last = INPUT_NAME
        self.count = 0

    def _name(self, kind):
        self.count += 1
        return f"{kind}{self.count}"

    def _const(self, name, value):
        self.weights[name] = np.asarray(value, dtype=np.float32)
        return name

    def _node(self, op, inputs, name, **attrs):
        out = f"{name}_out"
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [out], name=name, **attrs))
        self.last = out
        return out

    def batch_norm(self, channels, relu=True):
        if not self.with_bn:
            if relu:
                self._node("Relu", [self.last], self._name("relu"))
            return
        name = self._name("bn")
        rng = self.rng
        params = [self._const(f"{name}_{k}", v) for k, v in (
            ("scale", rng.uniform(0.8, 1.2, channels)), ("bias", rng.normal(0, 0.1, channels)),
            ("mean", rng.normal(0, 0.1, channels)), ("var", rng.uniform(0.8, 1.2, channels)))]
        self._node("BatchNormalization", [self.last, *params], name)
        if relu:
            self._node("Relu", [self.last], self._name("relu"))

    def conv(self, cout, kernel, stride=1, pad="same", group=1, bn=True, relu=True,
             source=None):
        cin, h, w = self.shape if source is None else source[1]
        inp = self.last if source is None else source[0]
        kh, kw = kernel
        name = self._name("dwconv" if group > 1 else "conv")
        fan_in = kh * kw * cin // group
        wname = self._const(f"{name}_w", self.rng.normal(
            0, np.sqrt(2.0 / fan_in), (cout, cin // group, kh, kw)))
        bname = self._const(f"{name}_b", self.rng.normal(0, 0.05, cout))
        attrs = {"kernel_shape": [kh, kw], "strides": [stride, stride], "group": group}
        if pad == "same":
            attrs["auto_pad"] = "SAME_UPPER"
            oh, ow = -(-h // stride), -(-w // stride)
        else:
            oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
        self.last = inp
        self._node("Conv", [inp, wname, bname], name, **attrs)
        self.shape = (cout, oh, ow)
        if bn:
            self.batch_norm(cout, relu)
        elif relu:
            self._node("Relu", [self.last], self._name("relu"))
        return self.last

    def dense(self, n, bn=True, relu=True):
        k = int(np.prod(self.shape))
        name = self._name("dense")
        wname = self._const(f"{name}_w", self.rng.normal(0, np.sqrt(2.0 / k), (n, k)))
        bname = self._const(f"{name}_b", self.rng.normal(0, 0.05, n))
        self._node("Gemm", [self.last, wname, bname], name, transB=1)
        self.shape = (n,)
        if bn:
            self.batch_norm(n, relu)
        elif relu:
            self._node("Relu", [self.last], self._name("relu"))

    def flatten(self):
        self._node("Flatten", [self.last], self._name("flatten"), axis=1)
        self.shape = (int(np.prod(self.shape)),)

    def global_pool(self):
        self._node("GlobalAveragePool", [self.last], self._name("gap"))
        self.shape = (self.shape[0], 1, 1)

    def average_pool(self, kernel):
        self._node("AveragePool", [self.last], self._name("avgpool"), kernel_shape=list(kernel),
                   strides=list(kernel))
        c, h, w = self.shape
        self.shape = (c, h // kernel[0], w // kernel[1])

    def add(self, other, relu=True):
        self._node("Add", [self.last, other], self._name("add"))
        if relu:
            self._node("Relu", [self.last], self._name("relu"))

    def softmax(self):
        self._node("Softmax", [self.last], self._name("softmax"), axis=-1)

    def model(self, name):
        helper, TensorProto = self.onnx.helper, self.onnx.TensorProto
        graph = helper.make_graph(
            self.nodes, name,
            [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT,
                                           ["N", *self.input_shape])],
            [helper.make_tensor_value_info(self.last, TensorProto.FLOAT, ["N", *self.shape])],
            [self.onnx.numpy_helper.from_array(v, k) for k, v in self.weights.items()])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 8
        return model


def kws(rng, batch_norm=False):
    """DS-CNN for keyword spotting (MLPerf Tiny KWS)."""
    net = _Net(rng, (1, 49, 10), batch_norm)
    net.conv(64, (10, 4), stride=2)
    for _ in range(4):
        net.conv(64, (3, 3), group=64)
        net.conv(64, (1, 1))
    net.average_pool((25, 5))
    net.flatten()
    net.dense(12, bn=False, relu=False)
    net.softmax()
    return net.model("kws_ds_cnn")


def ic(rng, batch_norm=False):
    """ResNet-8 for image classification (MLPerf Tiny IC)."""
    net = _Net(rng, (3, 32, 32), batch_norm)
    net.conv(16, (3, 3))
    for channels, stride in ((16, 1), (32, 2), (64, 2)):
        block_in, block_shape = net.last, net.shape
        net.conv(channels, (3, 3), stride=stride)
        net.conv(channels, (3, 3), relu=False)
        main, main_shape = net.last, net.shape
        if stride != 1:
            shortcut = net.conv(channels, (1, 1), stride=stride, relu=False,
                                source=(block_in, block_shape))
        else:
            shortcut = block_in
        net.last, net.shape = main, main_shape
        net.add(shortcut)
    net.average_pool((8, 8))
    net.flatten()
    net.dense(10, bn=False, relu=False)
    net.softmax()
    return net.model("ic_resnet8")


def ad(rng, batch_norm=False):
    """The fully connected autoencoder for anomaly detection (MLPerf Tiny AD)."""
    net = _Net(rng, (640,), batch_norm)
    for n in (128, 128, 128, 128, 8, 128, 128, 128, 128):
        net.dense(n)
    net.dense(640, bn=False, relu=False)
    return net.model("ad_autoencoder")


def vww(rng, batch_norm=False):
    """MobileNetV1, width 0.25, for visual wake words (MLPerf Tiny VWW)."""
    net = _Net(rng, (3, 96, 96), batch_norm)
    net.conv(8, (3, 3), stride=2)
    for channels, stride in ((16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1),
                             (128, 1), (128, 1), (128, 1), (128, 1), (256, 2), (256, 1)):
        net.conv(net.shape[0], (3, 3), stride=stride, group=net.shape[0])
        net.conv(channels, (1, 1))
    net.global_pool()
    net.flatten()
    net.dense(2, bn=False, relu=False)
    net.softmax()
    return net.model("vww_mobilenet_v1_025")


#: name -> builder, in MLPerf Tiny's order.
MODELS = {"kws": kws, "ic": ic, "ad": ad, "vww": vww}


def build(name, seed=0, batch_norm=False):
    """The float ONNX model ``name`` (kws, ic, ad, vww) with weights from ``seed``."""
    return MODELS[name](np.random.default_rng(seed), batch_norm)


def calibration(model, rng, batches=4, size=8):
    """Seeded random calibration inputs for ``model``: normal for images and features."""
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[1:]]
    return [{INPUT_NAME: rng.normal(0, 1, (size, *dims)).astype(np.float32)}
            for _ in range(batches)]


def quantize_onnx(model, path, rng, fmt="QDQ", batches=4, pre_process=False,
                  op_types_to_quantize=None):
    """Quantise float ``model`` with onnxruntime's quantize_static (per-channel int8 weights,
    int8 activations, format ``fmt``), calibrated on seeded random inputs; writes ``path``.
    ``pre_process``: run onnxruntime's ``quant_pre_process`` first (it folds a
    BatchNormalization into the convolution before it); ``op_types_to_quantize``: passed on."""
    import onnx
    from onnxruntime import quantization
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(quantization.CalibrationDataReader):
        def __init__(self, data):
            self.data = iter(data)

        def get_next(self):
            return next(self.data, None)

    float_path = path.with_name(path.stem + "_float.onnx")
    onnx.save(model, str(float_path))
    if pre_process:
        prepared = path.with_name(path.stem + "_prepared.onnx")
        quant_pre_process(str(float_path), str(prepared), skip_symbolic_shape=True)
        float_path = prepared
    quantization.quantize_static(
        str(float_path), str(path), Reader(calibration(model, rng, batches)),
        quant_format=getattr(quantization.QuantFormat, fmt), per_channel=True,
        activation_type=quantization.QuantType.QInt8,
        weight_type=quantization.QuantType.QInt8, op_types_to_quantize=op_types_to_quantize,
        extra_options={"WeightSymmetric": True, "ActivationSymmetric": False})
    return path
