"""ONNX import: a model quantised by onnxruntime -> :class:`~lockstep.qmodel.QModel`.

Takes what ``onnxruntime.quantization.quantize_static`` writes, in either format:

* **QOperator**: ``QuantizeLinear`` on the input, then ``QLinearMatMul``, ``QLinearConv``,
  ``QGemm`` (com.microsoft), ``QLinearAdd`` (com.microsoft) with a constant, ``Flatten`` /
  ``Reshape`` and ``Relu`` / ``Clip`` on int8 tensors, and a final ``DequantizeLinear``;
* **QDQ**: ``QuantizeLinear`` / ``DequantizeLinear`` pairs around float ``MatMul``, ``Gemm``,
  ``Conv``, ``Add`` (of a constant), ``Relu``, ``Clip``, ``Flatten`` and ``Reshape``, with
  weights and biases given as ``DequantizeLinear`` of constants.

The network must be a chain from one input to one output. Every quantised tensor of the chain
becomes one requantisation of the IR, so the result computes what onnxruntime computes, up to
its float rounding (onnxruntime requantises in float32, the core in gemmlowp fixed point):

* a MatMul / Gemm / Conv becomes a :class:`Dense` / :class:`Conv2d`, with its bias and with the
  Relu or Clip before its ``QuantizeLinear`` as the layer's clamp. When the quantiser has
  dropped a Relu into the output quantisation (zero point -128: nothing below real 0 is
  representable) the layer is marked ``relu``, which is the same clamp;
* an Add of a constant whose input is already quantised (onnxruntime's quantiser quantises
  ``MatMul`` + ``Add`` as two steps: the MatMul's sums are rounded to int8 before the bias is
  added) becomes a layer of its own, so that the intermediate rounding is kept: a Dense
  (or a 1x1 Conv2d for images) with the diagonal weight 127 and weight scale 1/127, which
  multiplies by one, adds the bias (in units of input_scale / 127) and requantises;
* a ``QuantizeLinear`` that changes the quantisation of a tensor without any layer (the QDQ
  quantiser's way with a Relu that does not follow a layer: it drops the Relu and gives its
  output a quantisation of its own, zero point -128) becomes such a layer too, without bias;
* a Relu or Clip(0, 6) that keeps the quantisation becomes the clamp of the layer before it;
* Flatten / Reshape to [batch, features] of an image becomes :class:`Flatten`. ONNX flattens
  NCHW in (c, y, x) order, the IR in (y, x, c) order, so the rows of the Dense that follows
  are permuted accordingly.

With onnxruntime's float32 requantisation in place of the core's, the MatMul / Gemm / Conv
layers made here reproduce onnxruntime's tensors exactly (but for float noise at near-ties);
the layers of an Add differ on a fraction of a percent of values (their bias is rounded to
units of input_scale / 127). The core's gemmlowp double rounding differs from float rounding
by one LSB on a fraction of a percent of each layer's values more; tests/test_onnx_import.py
measures all of it.

Layout: ONNX images are NCHW, the IR's are HWC; the model's ``input_shape`` is (H, W, C) for an
image input [N, C, H, W] and (K,) for a vector input [N, K]. Convolution weights
[Cout, Cin, KH, KW] become [KH, KW, Cin, Cout]. uint8 tensors become int8 by subtracting 128
from values and zero points, which is exact.

Everything else is refused with a one-line :class:`~lockstep.qmodel.ModelError` naming the
operator and node: other operators (MaxPool, Sigmoid, ...), convolutions with stride, padding,
dilation or groups, weights with a non-zero zero point, several inputs or outputs, branches,
dynamic dimensions other than the batch, and files that are not ONNX.
"""

import os
from dataclasses import dataclass

import numpy as np

from sim.arith import clamp_for

from .qmodel import Conv2d, Dense, Flatten, ModelError, QModel, QParams

__all__ = ["load_onnx"]

# A layer that only adds a bias multiplies by DIAGONAL * (1 / DIAGONAL): the largest int8
# weight gives the finest bias units (input_scale / 127).
DIAGONAL = 127


def load_onnx(source, *, name=None):
    """A :class:`QModel` from a quantised ONNX model: a path, the file's bytes, or an
    ``onnx.ModelProto``. Raises :class:`ModelError` (one line) for what cannot be imported."""
    model = _read(source)
    return _Importer(model, name).run()


# --- reading ------------------------------------------------------------------------------------

def _onnx():
    try:
        import onnx
    except ImportError:   # pragma: no cover - onnx is an optional dependency
        raise ModelError("ONNX import needs the onnx package (pip install onnx)") from None
    return onnx


def _read(source):
    onnx = _onnx()
    from google.protobuf.message import DecodeError
    if isinstance(source, onnx.ModelProto):
        model = source
    elif isinstance(source, (bytes, bytearray, memoryview)):
        try:
            model = onnx.load_model_from_string(bytes(source))
        except (DecodeError, ValueError, RuntimeError) as exc:
            raise ModelError(f"not a valid ONNX file: {_one_line(exc)}") from None
    elif isinstance(source, (str, os.PathLike)):
        try:
            model = onnx.load(os.fspath(source))
        except OSError as exc:
            raise ModelError(f"cannot read {os.fspath(source)}: "
                             f"{exc.strerror or _one_line(exc)}") from None
        except (DecodeError, ValueError, RuntimeError) as exc:
            raise ModelError(f"not a valid ONNX file: {os.fspath(source)}: "
                             f"{_one_line(exc)}") from None
    else:
        raise TypeError(f"load_onnx takes a path, bytes or an onnx.ModelProto, "
                        f"not {type(source).__name__}")
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError, RuntimeError) as exc:
        raise ModelError(f"not a valid ONNX file: {_one_line(exc)}") from None
    return model


def _one_line(exc):
    text = " ".join(str(exc).split())
    return text[:300] + ("..." if len(text) > 300 else "") if text else type(exc).__name__


# --- constants and quantisation parameters ------------------------------------------------------

@dataclass
class _Const:
    """A constant tensor: ``value`` is real (float64); a quantised constant
    (DequantizeLinear of an initializer) keeps its integers, scale, zero point and axis."""
    value: np.ndarray
    q: np.ndarray = None
    scale: np.ndarray = None
    zero_point: np.ndarray = None
    axis: int = None


@dataclass
class _Act:
    """The int8 tensor the chain has reached. ``shape`` is ONNX's without the batch: (K,) or
    (C, H, W). For a flattened image, IR feature i is ONNX feature ``order[i]``."""
    q: QParams
    shape: tuple
    order: np.ndarray = None


@dataclass
class _Pending:
    """A float MatMul / Gemm / Conv / Add (QDQ format) waiting for its QuantizeLinear."""
    kind: str                  # "dense", "conv" or "bias"
    name: str
    weight: np.ndarray         # int8, IR layout
    weight_scale: np.ndarray
    bias_int: np.ndarray       # int64, units of input_scale * weight_scale
    bias_real: np.ndarray = None
    activation: str = "none"


def _node_name(node, index):
    return node.name or f"{node.op_type}_{index}"


class _Importer:
    def __init__(self, model, name):
        self.onnx = _onnx()
        self.graph = model.graph
        self.name = name or self.graph.name or "model"
        self.inits = {t.name: t for t in self.graph.initializer}
        self.producer, self.consumers, self.names = {}, {}, {}
        for index, node in enumerate(self.graph.node):
            self.names[id(node)] = _node_name(node, index)
            for out in node.output:
                self.producer[out] = node
            for inp in node.input:
                if inp:
                    self.consumers.setdefault(inp, []).append(node)
        self.visited = set()
        self.layers = []
        self.const_cache = {}

    # -- errors and attributes --

    def where(self, node):
        return f"{node.op_type} (node '{self.names[id(node)]}')"

    def fail(self, node, message):
        raise ModelError(f"{self.where(node)}: {message}")

    def attrs(self, node):
        get = self.onnx.helper.get_attribute_value
        out = {}
        for a in node.attribute:
            value = get(a)
            out[a.name] = value.decode() if isinstance(value, bytes) else value
        return out

    def unsupported_attribute(self, node, key, value, why):
        raise ModelError(f"unsupported attribute {key}={value} of {self.where(node)}: {why}")

    # -- constants --

    def array(self, name):
        """An initializer or Constant output as a numpy array, or None."""
        if name in self.inits:
            return self.onnx.numpy_helper.to_array(self.inits[name])
        node = self.producer.get(name)
        if node is not None and node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            self.visited.add(id(node))
            attrs = self.attrs(node)
            if "value" in attrs:
                return self.onnx.numpy_helper.to_array(attrs["value"])
            for key in ("value_float", "value_int"):
                if key in attrs:
                    return np.array(attrs[key])
            for key in ("value_floats", "value_ints"):
                if key in attrs:
                    return np.array(list(attrs[key]))
        return None

    def const(self, name):
        """A constant tensor (initializer, Constant, DequantizeLinear of those), or None."""
        if name in self.const_cache:
            return self.const_cache[name]
        result = None
        raw = self.array(name)
        if raw is not None:
            result = _Const(np.asarray(raw, dtype=np.float64))
        else:
            node = self.producer.get(name)
            if node is not None and node.op_type == "DequantizeLinear" and node.domain in (
                    "", "ai.onnx", "com.microsoft"):
                q = self.array(node.input[0])
                if q is not None:
                    self.visited.add(id(node))
                    result = self.dequantize_const(node, q)
        self.const_cache[name] = result
        return result

    def dequantize_const(self, node, q):
        attrs = self.attrs(node)
        if attrs.get("block_size", 0):
            self.unsupported_attribute(node, "block_size", attrs["block_size"],
                                       "blocked quantisation is not supported")
        scale = self.array(node.input[1])
        zp = self.array(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if scale is None or (len(node.input) > 2 and node.input[2] and zp is None):
            self.fail(node, "scale and zero point must be constants")
        if zp is None:
            zp = np.zeros_like(np.asarray(scale), dtype=q.dtype)
        scale = np.asarray(scale, dtype=np.float64)
        zp = np.asarray(zp)
        axis = attrs.get("axis", 1)
        if scale.size == 1:
            value = (q.astype(np.float64) - zp.astype(np.float64).reshape(-1)[0]) \
                * scale.reshape(-1)[0]
            axis = None
        else:
            if q.ndim == 0:
                self.fail(node, "per-axis scales for a scalar")
            axis = axis % q.ndim
            if scale.ndim != 1 or scale.shape[0] != q.shape[axis]:
                self.fail(node, f"{scale.shape[0]} scales for axis {axis} of a tensor of "
                          f"shape {list(q.shape)}")
            shape = [1] * q.ndim
            shape[axis] = -1
            value = (q.astype(np.float64) - zp.astype(np.float64).reshape(shape)) \
                * scale.reshape(shape)
        return _Const(value, q=np.asarray(q), scale=scale, zero_point=zp, axis=axis)

    def need_const(self, node, name, what):
        c = self.const(name)
        if c is None:
            self.fail(node, f"{what} ('{name}') must be a constant")
        return c

    def qparams(self, node, scale_name, zp_name, what, dtype=None):
        """int8 QParams of an activation from scale and zero-point inputs (uint8 -> int8)."""
        scale = self.array(scale_name) if scale_name else None
        if scale is None:
            self.fail(node, f"the {what} scale must be a constant")
        zp = None
        if zp_name:
            zp = self.array(zp_name)
            if zp is None:
                self.fail(node, f"the {what} zero point must be a constant")
        if np.asarray(scale).size != 1 or (zp is not None and np.asarray(zp).size != 1):
            self.fail(node, f"the {what} must be quantised per tensor, not per channel")
        if zp is None:   # ONNX's default: uint8 with zero point 0, unless output_dtype says
            zp = np.zeros((), dtype=np.int8 if dtype == self.onnx.TensorProto.INT8
                          else np.uint8)
        zp = np.asarray(zp)
        zero_point = self.int8_zero_point(node, zp.dtype, int(zp.reshape(-1)[0]), what)
        try:
            return QParams(float(np.asarray(scale, dtype=np.float64).reshape(-1)[0]),
                           zero_point)
        except ModelError as exc:
            self.fail(node, f"{what}: {exc}")

    def int8_zero_point(self, node, dtype, zp, what):
        if dtype == np.int8:
            return zp
        if dtype == np.uint8:
            return zp - 128
        self.fail(node, f"the {what} is quantised to {np.dtype(dtype).name}; Lockstep "
                  "activations are int8 (or uint8, converted exactly)")

    def weight(self, node, q, scale, zp, out_axis, axis=None):
        """int8 weight (ONNX layout) and one scale per output channel, checked symmetric."""
        q = np.asarray(q)
        if q.dtype == np.uint8:
            q = q.astype(np.int16) - 128
            zp = np.asarray(zp, dtype=np.int16) - 128
        elif q.dtype != np.int8:
            self.fail(node, f"weights must be int8, not {q.dtype.name}")
        if np.any(np.asarray(zp) != 0):
            self.fail(node, "weights must be symmetric (zero point 0)")
        n = q.shape[out_axis]
        scale = np.asarray(scale, dtype=np.float64).reshape(-1)
        if scale.size == 1:
            scale = np.full(n, scale[0])
        elif scale.size != n or (axis is not None and axis != out_axis % q.ndim):
            self.fail(node, "weight scales must be per tensor or per output channel")
        if not np.all(np.isfinite(scale) & (scale > 0)):
            self.fail(node, "weight scales must be positive and finite")
        return q.astype(np.int8), scale

    def const_weight(self, node, name, out_axis, ndim):
        c = self.need_const(node, name, "the weight")
        if c.q is None or c.scale is None:
            self.fail(node, "the weight is not quantised (it must be a DequantizeLinear of an "
                      "int8 constant)")
        if c.q.ndim != ndim:
            self.fail(node, f"weight must be {ndim}-D, not of shape {list(c.q.shape)}")
        return self.weight(node, c.q, c.scale, c.zero_point, out_axis, c.axis)

    # -- the walk --

    def run(self):
        graph = self.graph
        inputs = [i for i in graph.input if i.name not in self.inits]
        if len(inputs) != 1 or len(graph.output) != 1:
            raise ModelError(f"the model must have one input and one output, not "
                             f"{len(inputs)} and {len(graph.output)}")
        x, y = inputs[0], graph.output[0]
        input_shape = self.input_shape(x)
        self.output_name = y.name

        consumers = self.consumers.get(x.name, [])
        if len(consumers) != 1 or consumers[0].op_type != "QuantizeLinear":
            ops = ", ".join(self.where(n) for n in consumers) or "nothing"
            raise ModelError(f"not a quantised model: the input '{x.name}' must feed one "
                             f"QuantizeLinear, not {ops}")
        quant = consumers[0]
        self.visited.add(id(quant))
        attrs = self.attrs(quant)
        q = self.qparams(quant, quant.input[1], quant.input[2] if len(quant.input) > 2 else "",
                         "input", dtype=attrs.get("output_dtype"))
        self.input_q = q
        self.act = _Act(q, input_shape)
        self.walk(quant.output[0])

        unvisited = [n for n in graph.node if id(n) not in self.visited]
        if unvisited:
            raise ModelError(f"{self.where(unvisited[0])} is not on the chain from the input "
                             "to the output; only a single chain of layers is supported")
        ir_shape = input_shape if len(input_shape) == 1 else (*input_shape[1:], input_shape[0])
        return QModel(ir_shape, self.input_q, self.layers, name=self.name)

    def input_shape(self, x):
        t = x.type.tensor_type
        if not x.type.HasField("tensor_type") or t.elem_type != self.onnx.TensorProto.FLOAT:
            raise ModelError(f"the model input '{x.name}' must be a float tensor")
        if not t.HasField("shape"):
            raise ModelError(f"the model input '{x.name}' has no shape")
        dims = t.shape.dim
        if len(dims) not in (2, 4):
            raise ModelError(f"the model input '{x.name}' must be [N, K] or [N, C, H, W], "
                             f"not of rank {len(dims)}")
        shape = []
        for axis, d in enumerate(dims[1:], start=1):
            if not d.HasField("dim_value") or d.dim_value < 1:
                label = d.dim_param or "?"
                raise ModelError(f"the model input '{x.name}' has a dynamic dimension "
                                 f"'{label}' on axis {axis}; only the batch may be dynamic")
            shape.append(int(d.dim_value))
        self.batch = int(dims[0].dim_value) if dims[0].HasField("dim_value") else None
        return tuple(shape)

    def walk(self, name):
        """Follow the chain from int8 tensor ``name`` to the graph output."""
        mode, pending = "int8", None
        while True:
            consumers = self.consumers.get(name, [])
            if name == self.output_name:
                if consumers:
                    raise ModelError(f"the model output '{name}' also feeds "
                                     f"{self.where(consumers[0])}")
                if pending is not None:
                    raise ModelError(f"the model output '{name}' is not quantised: "
                                     f"{pending.name} has no QuantizeLinear")
                return
            if len(consumers) != 1:
                if not consumers:
                    raise ModelError(f"tensor '{name}' leads nowhere: the model output "
                                     f"'{self.output_name}' is not reached")
                raise ModelError(f"tensor '{name}' feeds {len(consumers)} nodes "
                                 f"({', '.join(self.where(n) for n in consumers)}); only a "
                                 "single chain of layers is supported")
            node = consumers[0]
            if id(node) in self.visited:
                raise ModelError(f"{self.where(node)}: the graph has a cycle")
            self.visited.add(id(node))
            if node.domain not in ("", "ai.onnx", "com.microsoft"):
                raise ModelError(f"unsupported operator {node.domain}.{node.op_type} "
                                 f"(node '{self.names[id(node)]}')")
            handler = getattr(self, f"{mode}_{node.op_type}", None)
            if handler is None:
                if mode == "float" and node.op_type in _INT8_OPS or \
                        mode == "int8" and node.op_type in _FLOAT_OPS:
                    self.fail(node, f"input '{name}' is {'float' if mode == 'float' else 'int8'}"
                              ", which this operator does not take here")
                raise ModelError(f"unsupported operator {node.op_type} "
                                 f"(node '{self.names[id(node)]}')")
            if len([o for o in node.output if o]) != 1:
                self.fail(node, "must have exactly one output")
            mode, pending = handler(node, name, pending)
            name = node.output[0]

    # -- emitting layers --

    def emit(self, layer):
        self.layers.append(layer)

    def finish(self, node, kind, weight, weight_scale, bias_int, bias_real, output, activation,
               name):
        """Emit a Dense / Conv2d from an int8 weight in IR layout; move the chain on."""
        in_q = self.act.q
        bias = np.asarray(bias_int, dtype=np.int64).copy()
        if bias_real is not None:
            bias += np.round(bias_real / (in_q.scale * weight_scale)).astype(np.int64)
        if activation == "none" and output.zero_point == -128:
            activation = "relu"    # the quantiser dropped a Relu into the output range
        if kind == "conv":
            _, h, w = self.act.shape
            kh, kw, _, cout = weight.shape
            layer = Conv2d(weight, bias, weight_scale, output, activation, name=name)
            shape = (cout, h - kh + 1, w - kw + 1)
        else:
            layer = Dense(weight, bias, weight_scale, output, activation, name=name)
            shape = (weight.shape[1],)
        try:
            layer.requant(in_q)    # bias overflow and requantisation scale checks, early
        except ModelError as exc:
            self.fail(node, str(exc).removeprefix(f"{name}: "))
        self.emit(layer)
        self.act = _Act(output, shape)

    def check_input_q(self, node, scale_name, zp_name):
        q = self.qparams(node, scale_name, zp_name, "input")
        have = self.act.q
        if np.float32(q.scale) != np.float32(have.scale) or q.zero_point != have.zero_point:
            self.fail(node, f"input quantisation (scale {q.scale:.6g}, zero point "
                      f"{q.zero_point}) differs from that of its input tensor (scale "
                      f"{have.scale:.6g}, zero point {have.zero_point})")

    def dense_weight(self, node, w):
        """ONNX [K, N] rows -> IR rows, following a flattened image's order."""
        shape = self.act.shape
        if len(shape) != 1:
            self.fail(node, f"takes an image of shape {list(shape)}; flatten it first")
        if w.shape[0] != shape[0]:
            self.fail(node, f"weight has {w.shape[0]} rows for {shape[0]} input features")
        return w if self.act.order is None else w[self.act.order]

    def conv_weight(self, node, w):
        if len(self.act.shape) != 3 or self.act.order is not None:
            self.fail(node, "takes a feature vector; convolutions need an image")
        if w.shape[1] != self.act.shape[0]:
            self.fail(node, f"weight has {w.shape[1]} input channels, the image "
                      f"{self.act.shape[0]}")
        return np.ascontiguousarray(w.transpose(2, 3, 1, 0))

    def check_conv_attrs(self, node, w_shape):
        attrs = self.attrs(node)
        why = "Lockstep convolutions are stride 1, unpadded, undilated, group 1"
        k = list(w_shape[2:])
        if "kernel_shape" in attrs and list(attrs["kernel_shape"]) != k:
            self.unsupported_attribute(node, "kernel_shape", list(attrs["kernel_shape"]),
                                       f"the weight's kernel is {k}")
        auto_pad = attrs.get("auto_pad", "NOTSET")
        if auto_pad not in ("NOTSET", "VALID") and k != [1, 1]:
            self.unsupported_attribute(node, "auto_pad", auto_pad, why)
        for key, ok in (("strides", 1), ("dilations", 1), ("pads", 0)):
            value = list(attrs.get(key, []))
            if any(v != ok for v in value):
                self.unsupported_attribute(node, key, value, why)
        if attrs.get("group", 1) != 1:
            self.unsupported_attribute(node, "group", attrs["group"], why)

    def check_gemm_attrs(self, node):
        attrs = self.attrs(node)
        for key, ok in (("alpha", 1.0), ("beta", 1.0), ("transA", 0)):
            if attrs.get(key, ok) != ok:
                self.unsupported_attribute(node, key, attrs[key],
                                           f"only {key}={ok} is supported")
        return attrs.get("transB", 0)

    def bias_vector(self, node, c, n, image, what="bias"):
        """A per-channel constant as a length-``n`` float64 vector (ONNX order): of shape (),
        (N,) or (1, N) for vectors, (N, 1, 1) or (1, N, 1, 1) for images."""
        value = np.asarray(c.value)
        if value.size == 1:
            return np.full(n, value.reshape(-1)[0])
        shapes = ((n, 1, 1), (1, n, 1, 1)) if image else ((n,), (1, n))
        if value.shape not in shapes:
            self.fail(node, f"{what} of shape {list(value.shape)} is not one value per "
                      f"channel ({n} channels)")
        return value.reshape(-1)

    def exact_bias(self, c, weight_scale):
        """int32 bias in units of input_scale * weight_scale if ``c`` is already such a
        quantised bias (the quantiser's DequantizeLinear(int32, input_scale*weight_scale)),
        else None."""
        if c.q is None or c.scale is None or c.q.dtype != np.int32 or c.q.ndim != 1:
            return None
        if np.any(c.zero_point != 0):
            return None
        want = np.float32(self.act.q.scale) * np.float32(weight_scale)
        scale = np.broadcast_to(c.scale.reshape(-1), want.shape)
        if c.q.shape != want.shape or not np.allclose(scale, want, rtol=2e-7, atol=0):
            return None
        return c.q.astype(np.int64)

    def bias_layer(self, node, value, output, activation, name):
        """Constant ``value`` (one per channel, ONNX order) added to the int8 tensor: a layer
        that multiplies by one (DIAGONAL * 1/DIAGONAL), adds the bias and requantises."""
        shape, order = self.act.shape, self.act.order
        n = shape[0]
        if order is not None:
            value = value[order]
        eye = np.eye(n, dtype=np.int8) * DIAGONAL
        kind = "dense" if len(shape) == 1 else "conv"
        if kind == "conv":
            eye = eye.reshape(1, 1, n, n)
        self.finish(node, kind, eye, np.full(n, 1.0 / DIAGONAL), np.zeros(n, np.int64), value,
                    output, activation, name)
        if kind == "dense":     # the layer keeps the feature order
            self.act.order = order
        return "int8", None

    def added_constant(self, node, name):
        """The per-channel constant that Add / QLinearAdd ``node`` adds to tensor ``name``."""
        inputs = list(node.input)
        if node.op_type == "QLinearAdd":
            inputs += [""] * (8 - len(inputs))
            if inputs[0] == name and inputs[3] != name:
                mine, other = (inputs[1], inputs[2]), (inputs[3], inputs[4], inputs[5])
            elif inputs[3] == name and inputs[0] != name:
                mine, other = (inputs[4], inputs[5]), (inputs[0], inputs[1], inputs[2])
            else:
                self.fail(node, "adds a tensor to itself")
            self.check_input_q(node, *mine)
            q, scale = self.array(other[0]), self.array(other[1])
            zp = self.array(other[2]) if other[2] else np.zeros((), np.uint8)
            if q is None or scale is None or zp is None:
                self.fail(node, "only the addition of a constant (a bias) is supported, not "
                          "of two tensors")
            if np.asarray(scale).size != 1 or np.asarray(zp).size != 1:
                self.fail(node, "the added constant must be quantised per tensor")
            c = _Const((q.astype(np.float64) - float(np.asarray(zp).reshape(-1)[0]))
                       * float(np.asarray(scale).reshape(-1)[0]))
        else:
            if len(inputs) != 2 or inputs[0] == inputs[1]:
                self.fail(node, "adds a tensor to itself")
            c = self.const(inputs[1] if inputs[0] == name else inputs[0])
            if c is None:
                self.fail(node, "only the addition of a constant (a bias) is supported, not "
                          "of two tensors")
        return c

    def layout(self, node, name, pending):
        """Flatten / Reshape: only to [batch, features]."""
        if pending is not None:
            self.fail(node, "a reshape between a layer and its QuantizeLinear is not supported")
        shape = self.act.shape
        size = int(np.prod(shape))
        attrs = self.attrs(node)
        if node.op_type == "Flatten":
            axis = attrs.get("axis", 1)
            if axis < 0:
                axis += len(shape) + 1
            if axis != 1:
                self.unsupported_attribute(node, "axis", attrs["axis"],
                                           "only flattening to [batch, features] is supported")
        else:
            if len(node.input) < 2 or self.array(node.input[1]) is None:
                self.fail(node, "the target shape must be a constant")
            target = [int(v) for v in self.array(node.input[1]).reshape(-1)]
            batch_ok = len(target) == 2 and (target[0] in (0, -1) or target[0] == self.batch)
            if not (batch_ok and (target[1] == size or (target[1] == -1 and target[0] != -1))):
                self.fail(node, f"reshape to {target} is not supported (only flattening to "
                          f"[batch, features] = [-1, {size}])")
        if len(shape) == 3:
            c, h, w = shape
            self.emit(Flatten(name=self.names[id(node)]))
            order = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)
            self.act = _Act(self.act.q, (size,), order)
        return None

    def clip_bounds(self, node):
        """(min, max) of a Clip, from its attributes (opset < 11) or inputs."""
        attrs = self.attrs(node)
        bounds = [attrs.get("min", None), attrs.get("max", None)]
        for index in (1, 2):
            if len(node.input) > index and node.input[index]:
                c = self.const(node.input[index])
                if c is None or c.value.size != 1:
                    self.fail(node, "clip bounds must be scalar constants")
                bounds[index - 1] = float(c.value.reshape(-1)[0])
        return bounds

    def float_clip_activation(self, node):
        lo, hi = self.clip_bounds(node)
        lo = -np.inf if lo is None else lo
        hi = np.inf if hi is None else hi
        if lo == 0 and hi == 6:
            return "relu6"
        if lo == 0 and hi == np.inf:
            return "relu"
        self.fail(node, f"clips to [{lo}, {hi}]; only relu [0, inf) and relu6 [0, 6] are "
                  "supported")

    def int8_clip_activation(self, node, lo, hi):
        """The activation whose clamp is raw int8 [lo, hi] on the current tensor."""
        q = self.act.q
        for activation in ("none", "relu", "relu6"):
            if clamp_for(activation, q.zero_point, q.scale) == (max(lo, -128), min(hi, 127)):
                return activation
        self.fail(node, f"clamps int8 values to [{lo}, {hi}], which is neither relu nor relu6 "
                  f"for zero point {q.zero_point}")

    @staticmethod
    def combine(old, new):
        """Activation of a layer whose clamp ``old`` is followed by clamp ``new``."""
        if "relu6" in (old, new):
            return "relu6"
        if "relu" in (old, new):
            return "relu"
        return "none"

    def clamp_last_layer(self, node, activation):
        """A clamp of the int8 tensor (or of its dequantised copy): the same clamp on the layer
        that produced it."""
        for layer in reversed(self.layers):
            if hasattr(layer, "output"):
                layer.activation = self.combine(layer.activation, activation)
                return
        self.fail(node, "a clamp of the model input (before any layer) is not supported")

    # -- int8 mode: QOperator operators on int8 tensors --

    def weight_inputs(self, node, names, ndim):
        q, scale, zp = (self.array(n) for n in names)
        if q is None or scale is None or zp is None:
            self.fail(node, "the weight, its scale and zero point must be constants")
        if q.ndim != ndim:
            self.fail(node, f"weight must be {ndim}-D, not of shape {list(q.shape)}")
        return q, scale, zp

    def int8_QLinearMatMul(self, node, name, pending):
        i = node.input
        if i[0] != name:
            self.fail(node, "the weight must be the second input")
        self.check_input_q(node, i[1], i[2])
        w, ws = self.weight(node, *self.weight_inputs(node, i[3:6], 2), out_axis=1)
        out = self.qparams(node, i[6], i[7], "output")
        self.finish(node, "dense", self.dense_weight(node, w), ws, np.zeros(w.shape[1]), None,
                    out, "none", self.names[id(node)])
        return "int8", None

    def int8_QGemm(self, node, name, pending):
        i = list(node.input) + [""] * (9 - len(node.input))
        trans_b = self.check_gemm_attrs(node)
        if i[0] != name:
            self.fail(node, "the weight must be the second input")
        if not i[7]:
            self.fail(node, "has a float output; only QGemm with an int8 output is supported")
        self.check_input_q(node, i[1], i[2])
        w, ws = self.weight(node, *self.weight_inputs(node, i[3:6], 2),
                            out_axis=0 if trans_b else 1)
        if trans_b:
            w = w.T
        bias = np.zeros(w.shape[1], dtype=np.int64)
        if i[6]:
            b = self.array(i[6])
            if b is None or b.dtype != np.int32 or b.size not in (1, w.shape[1]):
                self.fail(node, "the bias must be an int32 constant, one per output")
            bias = np.broadcast_to(b.reshape(-1).astype(np.int64), (w.shape[1],))
        out = self.qparams(node, i[7], i[8], "output")
        self.finish(node, "dense", self.dense_weight(node, w), ws, bias, None, out, "none",
                    self.names[id(node)])
        return "int8", None

    def int8_QLinearConv(self, node, name, pending):
        i = list(node.input) + [""] * (9 - len(node.input))
        if i[0] != name:
            self.fail(node, "the weight must be the second input")
        self.check_input_q(node, i[1], i[2])
        q, scale, zp = self.weight_inputs(node, i[3:6], 4)
        self.check_conv_attrs(node, q.shape)
        w, ws = self.weight(node, q, scale, zp, out_axis=0)
        bias = np.zeros(w.shape[0], dtype=np.int64)
        if i[8]:
            b = self.array(i[8])
            if b is None or b.dtype != np.int32 or b.shape != (w.shape[0],):
                self.fail(node, "the bias must be an int32 constant, one per output channel")
            bias = b.astype(np.int64)
        out = self.qparams(node, i[6], i[7], "output")
        self.finish(node, "conv", self.conv_weight(node, w), ws, bias, None, out, "none",
                    self.names[id(node)])
        return "int8", None

    def int8_QLinearAdd(self, node, name, pending):
        c = self.added_constant(node, name)
        image = len(self.act.shape) == 3
        value = self.bias_vector(node, c, self.act.shape[0], image, "the added constant")
        i = list(node.input) + [""] * (8 - len(node.input))
        out = self.qparams(node, i[6], i[7], "output")
        return self.bias_layer(node, value, out, "none", self.names[id(node)])

    def int8_Flatten(self, node, name, pending):
        return "int8", self.layout(node, name, pending)

    int8_Reshape = int8_Flatten

    def int8_Identity(self, node, name, pending):
        return "int8", pending

    def int8_Relu(self, node, name, pending):
        # ONNX's Relu on an int8 tensor is max(x, 0) on the raw integers (a relu only if the
        # zero point is 0); on uint8 it does nothing.
        offset = self.offset(name)
        self.clamp_last_layer(node, self.int8_clip_activation(node, -offset, 127))
        return "int8", None

    def int8_Clip(self, node, name, pending):
        lo, hi = self.clip_bounds(node)
        offset = self.offset(name)
        lo = -128 if lo is None else int(lo) - offset
        hi = 127 if hi is None else int(hi) - offset
        self.clamp_last_layer(node, self.int8_clip_activation(node, lo, hi))
        return "int8", None

    def offset(self, name):
        """128 if int8 tensor ``name`` is really uint8 (its IR values are shifted), else 0."""
        node = self.producer.get(name)
        while node is not None and node.op_type in ("Flatten", "Reshape", "Identity", "Relu",
                                                    "Clip"):
            node = self.producer.get(node.input[0])
        index = _ZERO_POINT_INPUT.get(node.op_type) if node is not None else None
        if index is None:   # pragma: no cover - int8 tensors come from these operators
            self.fail(node, "cannot tell the type of its output")
        if len(node.input) <= index or not node.input[index]:
            return 0 if self.attrs(node).get("output_dtype") == self.onnx.TensorProto.INT8 \
                else 128
        return 128 if self.array(node.input[index]).dtype == np.uint8 else 0

    def int8_DequantizeLinear(self, node, name, pending):
        self.check_input_q(node, node.input[1], node.input[2] if len(node.input) > 2 else "")
        return "float", None

    # -- float mode: QDQ format, float operators between DequantizeLinear and QuantizeLinear --

    def float_QuantizeLinear(self, node, name, pending):
        attrs = self.attrs(node)
        out = self.qparams(node, node.input[1], node.input[2] if len(node.input) > 2 else "",
                           "output", dtype=attrs.get("output_dtype"))
        p = pending
        if p is None or p.kind == "bias":
            have = self.act.q
            same = np.float32(out.scale) == np.float32(have.scale) and \
                out.zero_point == have.zero_point
            if p is None and same:
                return "int8", None
            if p is None:   # a requantisation: multiply by one, requantise
                n = self.act.shape[0]
                p = _Pending("bias", self.names[id(node)], None, None, None, np.zeros(n))
            elif same and not np.any(p.bias_real):
                # a clamp alone, keeping the quantisation: the producing layer's clamp
                self.clamp_last_layer(node, p.activation)
                return "int8", None
            return self.bias_layer(node, p.bias_real, out, p.activation, p.name)
        self.finish(node, p.kind, p.weight, p.weight_scale, p.bias_int, p.bias_real, out,
                    p.activation, p.name)
        return "int8", None

    def not_quantised(self, node, name, pending):
        if pending is not None:
            self.fail(node, f"input '{name}' is not quantised (no QuantizeLinear after "
                      f"{pending.name})")
        if node.input[0] != name:
            self.fail(node, "the weight must be the second input")

    def float_MatMul(self, node, name, pending):
        self.not_quantised(node, name, pending)
        w, ws = self.const_weight(node, node.input[1], out_axis=1, ndim=2)
        return "float", _Pending("dense", self.names[id(node)], self.dense_weight(node, w), ws,
                                 np.zeros(w.shape[1], np.int64))

    def float_Gemm(self, node, name, pending):
        self.not_quantised(node, name, pending)
        trans_b = self.check_gemm_attrs(node)
        w, ws = self.const_weight(node, node.input[1], out_axis=0 if trans_b else 1, ndim=2)
        if trans_b:
            w = w.T
        p = _Pending("dense", self.names[id(node)], self.dense_weight(node, w), ws,
                     np.zeros(w.shape[1], np.int64))
        if len(node.input) > 2 and node.input[2]:
            self.add_bias(node, p, self.need_const(node, node.input[2], "the bias"))
        return "float", p

    def float_Conv(self, node, name, pending):
        self.not_quantised(node, name, pending)
        c = self.need_const(node, node.input[1], "the weight")
        if c.value.ndim != 4:
            self.fail(node, f"only 2-D convolutions are supported (weight of shape "
                      f"{list(c.value.shape)})")
        self.check_conv_attrs(node, c.value.shape)
        w, ws = self.const_weight(node, node.input[1], out_axis=0, ndim=4)
        p = _Pending("conv", self.names[id(node)], self.conv_weight(node, w), ws,
                     np.zeros(w.shape[0], np.int64))
        if len(node.input) > 2 and node.input[2]:
            self.add_bias(node, p, self.need_const(node, node.input[2], "the bias"))
        return "float", p

    def add_bias(self, node, p, c):
        """Add constant ``c`` to the sums of pending layer ``p`` (before its clamp)."""
        if p.activation != "none":
            self.fail(node, "adds after a Relu or Clip; only a bias before the clamp is "
                      "supported")
        exact = self.exact_bias(c, p.weight_scale)
        if exact is not None:
            p.bias_int = p.bias_int + exact
            return
        value = self.bias_vector(node, c, p.weight.shape[-1], p.kind == "conv")
        p.bias_real = value if p.bias_real is None else p.bias_real + value

    def float_Add(self, node, name, pending):
        c = self.added_constant(node, name)
        if pending is None:
            image = len(self.act.shape) == 3
            value = self.bias_vector(node, c, self.act.shape[0], image, "the added constant")
            return "float", _Pending("bias", self.names[id(node)], None, None, None, value)
        if pending.kind == "bias":
            if pending.activation != "none":
                self.fail(node, "adds after a Relu or Clip; only a bias before the clamp is "
                          "supported")
            image = len(self.act.shape) == 3
            pending.bias_real = pending.bias_real + self.bias_vector(
                node, c, self.act.shape[0], image, "the added constant")
            return "float", pending
        self.add_bias(node, pending, c)
        return "float", pending

    def float_Identity(self, node, name, pending):
        return "float", pending

    def float_Relu(self, node, name, pending):
        return self.float_clamp(node, pending, "relu")

    def float_Clip(self, node, name, pending):
        return self.float_clamp(node, pending, self.float_clip_activation(node))

    def float_clamp(self, node, pending, activation):
        if pending is None:
            # A clamp of a dequantised tensor: a layer of its own if the QuantizeLinear after it
            # changes the quantisation, else the producing layer's clamp.
            n = self.act.shape[0]
            pending = _Pending("bias", self.names[id(node)], None, None, None, np.zeros(n))
        pending.activation = self.combine(pending.activation, activation)
        return "float", pending

    def float_Flatten(self, node, name, pending):
        return "float", self.layout(node, name, pending)

    float_Reshape = float_Flatten


# Operators that make int8 tensors, and the input that gives their zero point (and type).
_ZERO_POINT_INPUT = {"QuantizeLinear": 2, "QLinearMatMul": 7, "QLinearConv": 7, "QLinearAdd": 7,
                     "QGemm": 8}
_INT8_OPS = {"QLinearMatMul", "QGemm", "QLinearConv", "QLinearAdd", "DequantizeLinear"}
_FLOAT_OPS = {"QuantizeLinear", "MatMul", "Gemm", "Conv", "Add"}
