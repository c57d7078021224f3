"""The walk: every node of the (rewritten) ONNX graph in order, each handled by its registered
handler (lockstep/onnx/registry.py), into the layers of a :class:`~lockstep.qmodel.QModel`.

Each tensor the walk reaches has a state: :class:`Act`, a quantised (int8) tensor that the IR
has, or :class:`FloatState`, the dequantised side of QDQ format: the int8 tensor it comes from
and the float operation pending on it (a Conv, a Relu, ...) until a QuantizeLinear makes it a
layer. The helpers here are what handlers share: quantisation parameters, weights, biases,
emitting a layer.
"""

from dataclasses import dataclass, replace

import numpy as np

from sim.arith import clamp_for

from ..qmodel import (
    Add,
    AvgPool,
    Conv2d,
    Dense,
    DepthwiseConv2d,
    MaxPool,
    ModelError,
    QModel,
    QParams,
    Softmax,
)
from . import layout
from .graph import DOMAINS
from .reader import onnx_module
from .registry import HANDLERS

__all__ = ["Importer", "Act", "FloatState", "Pending", "SoftmaxOut", "DIAGONAL"]

# A layer that only adds a bias multiplies by DIAGONAL * (1 / DIAGONAL): the largest int8
# weight gives the finest bias units (input_scale / 127).
DIAGONAL = 127


@dataclass
class Act:
    """A quantised tensor: its IR name, quantisation and ONNX shape without the batch ((K,) or
    (C, H, W)); for a flattened image, IR feature i is ONNX feature ``order[i]``."""
    ir: str
    q: QParams
    shape: tuple
    order: np.ndarray = None


@dataclass
class Pending:
    """A float operation (QDQ format) waiting for its QuantizeLinear: "dense", "conv",
    "depthwise", "bias" (a constant added), "add" (of two tensors), "avgpool", "maxpool"."""
    kind: str
    name: str
    weight: np.ndarray = None          # int8, IR layout
    weight_scale: np.ndarray = None
    bias_int: np.ndarray = None        # int64, units of input_scale * weight_scale
    bias_real: np.ndarray = None
    activation: str = "none"
    attrs: dict = None                 # stride, pads, kernel; "other": the second Act of an add


@dataclass
class FloatState:
    src: Act
    pending: Pending = None


class SoftmaxOut:
    """The probabilities of a host softmax (and their Q/DQ): only the model's output."""


class Importer:
    def __init__(self, graph, name):
        self.onnx = onnx_module()
        self.graph = graph
        self.name = name or graph.name or "model"
        self.layers = []
        self.states = {}
        self.act = None
        self.taken = set()

    # -- errors --

    def where(self, node):
        return self.graph.where(node)

    def fail(self, node, message):
        self.graph.fail(node, message)

    def unsupported_attribute(self, node, key, value, why):
        self.graph.unsupported_attribute(node, key, value, why)

    def array(self, name):
        return self.graph.array(name)

    def const(self, name):
        return self.graph.const(name)

    def need_const(self, node, name, what):
        return self.graph.need_const(node, name, what)

    def ir_name(self, node):
        base = node.name.replace("/", "_").strip("_") or node.op_type.lower()
        name, k = base, 1
        while name in self.taken or name == "input":
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name

    # -- the walk --

    def run(self):
        graph = self.graph
        if len(graph.inputs) != 1 or len(graph.outputs) != 1:
            raise ModelError(f"the model must have one input and one output, not "
                             f"{len(graph.inputs)} and {len(graph.outputs)}")
        x, y = graph.inputs[0], graph.outputs[0]
        input_shape = self.input_shape(x)
        consumers = graph.consumers(x.name)
        if len(consumers) != 1 or consumers[0].op_type != "QuantizeLinear":
            ops = ", ".join(self.where(n) for n in consumers) or "nothing"
            raise ModelError(f"not a quantised model: the input '{x.name}' must feed one "
                             f"QuantizeLinear, not {ops}")
        quant = consumers[0]
        q = self.qparams(quant, quant.input(1), quant.input(2), "input",
                         dtype=quant.attrs.get("output_dtype"))
        self.input_q = q
        self.states[quant.outputs[0]] = Act("input", q, input_shape)
        for node in graph.nodes:
            if node is quant or node.op_type == "Constant":
                continue
            self.visit(node)
        final = self.states.get(y.name)
        if final is None:
            raise ModelError(f"the model output '{y.name}' is not reached from its input")
        if isinstance(final, FloatState) and final.pending is not None:
            raise ModelError(f"the model output '{y.name}' is not quantised: "
                             f"{final.pending.name} has no QuantizeLinear")
        if graph.consumers(y.name):
            raise ModelError(f"the model output '{y.name}' also feeds "
                             f"{self.where(graph.consumers(y.name)[0])}")
        if not self.layers or (self.layers[-1].host and len(self.layers) == 1):
            raise ModelError("the model has no layer for the core (only quantisation)")
        self.check_output_reached(final)
        return QModel(layout.ir_shape(input_shape), self.input_q, self.layers, name=self.name)

    def check_output_reached(self, final):
        """The last layer must be the output's: a branch that leads elsewhere is refused."""
        if isinstance(final, SoftmaxOut):
            return
        act = final.src if isinstance(final, FloatState) else final
        if act.ir != self.layers[-1].name:
            raise ModelError(f"layer {self.layers[-1].name} leads nowhere: the model output is "
                             f"{act.ir}'s")

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

    def visit(self, node):
        graph = self.graph
        stateful = [name for name in node.inputs if name in self.states]
        if not stateful:
            if all(graph.is_constant(o) or not graph.consumers(o) for o in node.outputs) or \
                    all(not i or graph.is_constant(i) for i in node.inputs):
                return      # a constant (a weight's DequantizeLinear, ...)
            raise ModelError(f"{self.where(node)} does not depend on the model input")
        if node.domain not in DOMAINS:
            raise ModelError(f"unsupported operator {node.domain}.{node.op_type} "
                             f"(node '{node.name}')")
        name = stateful[0]
        state = self.states[name]
        if isinstance(state, SoftmaxOut):
            if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
                self.fail(node, "follows the softmax, which runs on the host and must end "
                          "the model")
            self.states[node.outputs[0]] = state
            return
        mode = "int8" if isinstance(state, Act) else "float"
        function = HANDLERS.get((mode, node.op_type))
        if function is None:
            other = "float" if mode == "int8" else "int8"
            if (other, node.op_type) in HANDLERS:
                self.fail(node, f"input '{name}' is {mode}, which this operator does not take "
                          "here")
            raise ModelError(f"unsupported operator {node.op_type} (node '{node.name}'); "
                             f"the import takes {', '.join(_supported())}")
        if len([o for o in node.outputs if o]) != 1 and node.op_type != "MaxPool":
            self.fail(node, "must have exactly one output")
        self.act = state if isinstance(state, Act) else state.src
        pending = None if isinstance(state, Act) else state.pending
        result = function(self, node, name, pending)
        if isinstance(result, SoftmaxOut):
            self.states[node.outputs[0]] = result
            return
        mode, pending = result
        out = node.outputs[0]
        self.states[out] = replace(self.act) if mode == "int8" else FloatState(self.act, pending)

    def state(self, node, name, mode):
        """The state of tensor ``name`` (another input of ``node``) as ``mode`` needs it."""
        state = self.states.get(name)
        if state is None:
            return None
        if mode == "int8" and not isinstance(state, Act):
            self.fail(node, f"input '{name}' is float where an int8 tensor is expected")
        return state

    # -- emitting layers --

    def emit(self, layer, shape):
        """Add ``layer`` (reading the current tensor unless it names its inputs); the walk's
        tensor becomes its output, of ONNX shape ``shape``."""
        if not layer.inputs:
            layer.inputs = (self.act.ir,)
        self.layers.append(layer)
        q = layer.output if getattr(layer, "output", None) is not None else self.act.q
        self.act = Act(layer.name, q, shape)

    def finish(self, node, kind, weight, weight_scale, bias_int, bias_real, output, activation,
               name, attrs=None):
        """Emit a Dense / Conv2d / DepthwiseConv2d from an int8 weight in IR layout."""
        attrs = attrs or {}
        in_q = self.act.q
        bias = np.asarray(bias_int, dtype=np.int64).copy()
        if bias_real is not None:
            bias += np.round(bias_real / (in_q.scale * weight_scale)).astype(np.int64)
        if activation == "none" and output.zero_point == -128:
            activation = "relu"    # the quantiser dropped a Relu into the output range
        stride, pads = attrs.get("stride", (1, 1)), attrs.get("pads", (0, 0, 0, 0))
        if kind == "conv":
            layer = Conv2d(weight, bias, weight_scale, output, activation, name=name,
                           stride=stride, pads=pads)
        elif kind == "depthwise":
            layer = DepthwiseConv2d(weight, bias, weight_scale, output, activation, name=name,
                                    stride=stride, pads=pads)
        else:
            layer = Dense(weight, bias, weight_scale, output, activation, name=name)
        try:
            layer.requant(in_q)    # bias overflow and requantisation scale checks, early
            shape = layer.output_shape(layout.ir_shape(self.act.shape))
        except ModelError as exc:
            self.fail(node, str(exc).removeprefix(f"{name}: "))
        self.emit(layer, layout.onnx_shape(shape))

    def emit_add(self, node, other, output, activation, name):
        """The residual Add of the current tensor and ``other`` (an Act)."""
        if other.shape != self.act.shape:
            self.fail(node, f"adds tensors of shapes {list(self.act.shape)} and "
                      f"{list(other.shape)}")
        if (self.act.order is None) != (other.order is None) or (
                self.act.order is not None and not np.array_equal(self.act.order, other.order)):
            self.fail(node, "adds tensors whose features are in different orders")
        layer = Add(output, activation, name=name, inputs=(self.act.ir, other.ir))
        try:
            layer.requant(self.act.q, other.q)
        except ModelError as exc:
            self.fail(node, str(exc).removeprefix(f"{name}: "))
        order = self.act.order
        self.emit(layer, self.act.shape)
        self.act.order = order

    def emit_pool(self, node, kind, attrs, output, name, activation="none"):
        """An AvgPool / MaxPool / global average of the current image."""
        if len(self.act.shape) != 3:
            self.fail(node, f"pools a tensor of shape {list(self.act.shape)}; it needs an image")
        if kind == "global":
            layer = AvgPool(output, None, name=name, activation=activation)
        elif kind == "avgpool":
            layer = AvgPool(output, attrs["kernel"], attrs["stride"], name=name,
                            activation=activation)
        else:
            layer = MaxPool(attrs["kernel"], attrs["stride"], attrs["pads"], output, name=name,
                            activation=activation)
        try:
            shape = layer.output_shape(layout.ir_shape(self.act.shape))
            if kind == "maxpool":
                layer.requant(self.act.q, shape[2])
            else:
                layer.requant(self.act.q, layout.ir_shape(self.act.shape))
        except ModelError as exc:
            self.fail(node, str(exc).removeprefix(f"{name}: "))
        self.emit(layer, layout.onnx_shape(shape))

    def emit_softmax(self, node):
        attrs = node.attrs
        axis = attrs.get("axis", -1)
        rank = len(self.act.shape) + 1
        if axis % rank != rank - 1:
            self.unsupported_attribute(node, "axis", axis, "only the last axis")
        layer = Softmax(name=self.ir_name(node), inputs=(self.act.ir,))
        self.layers.append(layer)
        return SoftmaxOut()

    # -- quantisation parameters, weights, biases --

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

    def check_input_q(self, node, scale_name, zp_name, act=None):
        act = act or self.act
        q = self.qparams(node, scale_name, zp_name, "input")
        have = act.q
        if np.float32(q.scale) != np.float32(have.scale) or q.zero_point != have.zero_point:
            self.fail(node, f"input quantisation (scale {q.scale:.6g}, zero point "
                      f"{q.zero_point}) differs from that of its input tensor (scale "
                      f"{have.scale:.6g}, zero point {have.zero_point})")

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

    def weight_inputs(self, node, names, ndim):
        q, scale, zp = (self.array(n) for n in names)
        if q is None or scale is None or zp is None:
            self.fail(node, "the weight, its scale and zero point must be constants")
        if q.ndim != ndim:
            self.fail(node, f"weight must be {ndim}-D, not of shape {list(q.shape)}")
        return q, scale, zp

    def dense_weight(self, node, w):
        """ONNX [K, N] rows -> IR rows, following a flattened image's order."""
        shape = self.act.shape
        if len(shape) != 1:
            self.fail(node, f"takes an image of shape {list(shape)}; flatten it first")
        if w.shape[0] != shape[0]:
            self.fail(node, f"weight has {w.shape[0]} rows for {shape[0]} input features")
        return w if self.act.order is None else w[self.act.order]

    def conv_weight(self, node, w, group):
        if len(self.act.shape) != 3 or self.act.order is not None:
            self.fail(node, "takes a feature vector; convolutions need an image")
        channels = self.act.shape[0]
        if group == 1:
            if w.shape[1] != channels:
                self.fail(node, f"weight has {w.shape[1]} input channels, the image "
                          f"{channels}")
            return "conv", layout.conv_weight(w)
        if group == channels and w.shape[0] == channels and w.shape[1] == 1:
            return "depthwise", layout.depthwise_weight(w)
        self.unsupported_attribute(node, "group", group, "convolutions are plain (group 1) or "
                                   "depthwise (group = channels, one filter each)")

    def conv_attrs(self, node, w_shape):
        """(group, {"stride", "pads"}) of a Conv / QLinearConv, padding made explicit."""
        attrs = node.attrs
        k = list(w_shape[2:])
        if "kernel_shape" in attrs and list(attrs["kernel_shape"]) != k:
            self.unsupported_attribute(node, "kernel_shape", list(attrs["kernel_shape"]),
                                       f"the weight's kernel is {k}")
        if any(v != 1 for v in attrs.get("dilations", [])):
            self.unsupported_attribute(node, "dilations", list(attrs["dilations"]),
                                       "convolutions are undilated")
        stride = tuple(int(v) for v in attrs.get("strides", [1, 1]))
        return attrs.get("group", 1), {"stride": stride, "pads": self.pads(node, k, stride)}

    def pads(self, node, kernel, stride):
        attrs = node.attrs
        auto_pad = attrs.get("auto_pad", "NOTSET")
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            if len(self.act.shape) != 3:
                self.fail(node, "pads a tensor that is not an image")
            _, h, w = self.act.shape
            t, b = layout.same_pads(h, kernel[0], stride[0], auto_pad == "SAME_UPPER")
            left, r = layout.same_pads(w, kernel[1], stride[1], auto_pad == "SAME_UPPER")
            return (t, left, b, r)
        if auto_pad not in ("NOTSET", "VALID"):
            self.unsupported_attribute(node, "auto_pad", auto_pad, "not an ONNX value")
        pads = list(attrs.get("pads", [0, 0, 0, 0])) if auto_pad == "NOTSET" else [0] * 4
        if len(pads) != 4 or min(pads) < 0:
            self.unsupported_attribute(node, "pads", pads, "two spatial axes, not negative")
        return layout.onnx_pads(pads)

    def pool_attrs(self, node):
        """{"kernel", "stride", "pads"} of an (Q)AveragePool / MaxPool."""
        attrs = node.attrs
        for key in ("ceil_mode",):
            if attrs.get(key, 0):
                self.unsupported_attribute(node, key, attrs[key], "only floor rounding")
        if any(v != 1 for v in attrs.get("dilations", [])):
            self.unsupported_attribute(node, "dilations", list(attrs["dilations"]),
                                       "pooling is undilated")
        if attrs.get("storage_order", 0):
            self.unsupported_attribute(node, "storage_order", attrs["storage_order"],
                                       "only row-major indices")
        kernel = tuple(int(v) for v in attrs.get("kernel_shape", []))
        if len(kernel) != 2:
            self.fail(node, f"needs a 2-D kernel_shape, not {list(kernel)}")
        stride = tuple(int(v) for v in attrs.get("strides", [1, 1]))
        return {"kernel": kernel, "stride": stride, "pads": self.pads(node, kernel, stride)}

    def check_gemm_attrs(self, node):
        attrs = node.attrs
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
        shapes = ((n, 1, 1), (1, n, 1, 1), (n,)) if image else ((n,), (1, n))
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

    def other_input(self, node, name):
        """The name of ``node``'s other (not ``name``) of its first two inputs."""
        a, b = node.input(0), node.input(1)
        if a == b:
            self.fail(node, "adds a tensor to itself")
        return b if a == name else a

    def layout_op(self, node, name, pending):
        """Flatten / Reshape / Squeeze: only to [batch, features]."""
        if pending is not None:
            self.fail(node, "a reshape between a layer and its QuantizeLinear is not supported")
        shape = self.act.shape
        size = int(np.prod(shape))
        attrs = node.attrs
        if node.op_type == "Flatten":
            axis = attrs.get("axis", 1)
            if axis < 0:
                axis += len(shape) + 1
            if axis != 1:
                self.unsupported_attribute(node, "axis", attrs["axis"],
                                           "only flattening to [batch, features] is supported")
        elif node.op_type == "Squeeze":
            axes = self.array(node.input(1)) if node.input(1) else attrs.get("axes")
            axes = sorted(int(a) % (len(shape) + 1) for a in np.asarray(axes).reshape(-1)) \
                if axes is not None else None
            if len(shape) != 3 or shape[1:] != (1, 1) or axes not in (None, [2, 3]):
                self.fail(node, f"squeezes {axes} of shape {list(shape)}; only [N, C, 1, 1] -> "
                          "[N, C] is supported")
        else:
            if not node.input(1) or self.array(node.input(1)) is None:
                self.fail(node, "the target shape must be a constant")
            target = [int(v) for v in self.array(node.input(1)).reshape(-1)]
            batch_ok = len(target) == 2 and (target[0] in (0, -1) or target[0] == self.batch)
            if not (batch_ok and (target[1] == size or (target[1] == -1 and target[0] != -1))):
                self.fail(node, f"reshape to {target} is not supported (only flattening to "
                          f"[batch, features] = [-1, {size}])")
        if len(shape) == 3:
            from ..qmodel import Flatten
            c, h, w = shape
            flatten = Flatten(name=self.ir_name(node), inputs=(self.act.ir,))
            self.layers.append(flatten)
            self.act = Act(flatten.name, self.act.q, (size,), layout.flatten_order(c, h, w))
        return None

    def clip_bounds(self, node):
        """(min, max) of a Clip, from its attributes (opset < 11) or inputs."""
        attrs = node.attrs
        bounds = [attrs.get("min", None), attrs.get("max", None)]
        for index in (1, 2):
            if node.input(index):
                c = self.const(node.input(index))
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

    def int8_source(self, name):
        """The int8 tensor that float tensor ``name`` is a clamp of: back through Relu / Clip
        to the DequantizeLinear."""
        node = self.graph.producer(name)
        while node is not None and node.op_type in ("Relu", "Clip"):
            node = self.graph.producer(node.input(0))
        return node.input(0) if node is not None else name

    def clamp_producer(self, node, name, activation, through=None):
        """A clamp of int8 tensor ``name``: the same clamp on the layer that produced it, which
        no other node may read unclamped (nor, in QDQ format, its dequantised copy)."""
        readers = [name]
        if through is not None:
            n = self.graph.producer(through)
            while n is not None and n.op_type in ("Relu", "Clip", "DequantizeLinear"):
                readers.append(n.input(0))
                n = self.graph.producer(n.input(0))
        for layer in reversed(self.layers):
            if layer.name == self.act.ir:
                if not hasattr(layer, "activation"):
                    break
                for tensor in readers:
                    if len(self.graph.consumers(tensor)) > 1:
                        self.fail(node, f"clamps '{tensor}', which other nodes read unclamped")
                layer.activation = self.combine(layer.activation, activation)
                return
        self.fail(node, "a clamp of the model input or of a tensor without a layer of its own "
                  "is not supported")

    def offset(self, name):
        """128 if int8 tensor ``name`` is really uint8 (its IR values are shifted), else 0."""
        node = self.graph.producer(name)
        while node is not None and node.op_type in ("Flatten", "Reshape", "Squeeze", "Relu",
                                                    "Clip", "MaxPool"):
            node = self.graph.producer(node.input(0))
        index = ZERO_POINT_INPUT.get(node.op_type) if node is not None else None
        if index is None:   # pragma: no cover - int8 tensors come from these operators
            self.fail(node, "cannot tell the type of its output")
        if not node.input(index):
            return 0 if node.attrs.get("output_dtype") == self.onnx.TensorProto.INT8 else 128
        return 128 if self.array(node.input(index)).dtype == np.uint8 else 0


# Operators that make int8 tensors, and the input that gives their zero point (and type).
ZERO_POINT_INPUT = {"QuantizeLinear": 2, "QLinearMatMul": 7, "QLinearConv": 7, "QLinearAdd": 7,
                    "QGemm": 8, "QLinearAveragePool": 4, "QLinearGlobalAveragePool": 4}


def _supported():
    from .registry import supported_ops
    return supported_ops()

