"""QDQ format: float operators between ``DequantizeLinear`` and ``QuantizeLinear``. Each float
operator becomes pending on its int8 input; the ``QuantizeLinear`` after it makes the layer,
with the Relu or Clip in between as the layer's clamp and a constant added as its bias."""

import numpy as np

from .importer import Pending
from .registry import handler

__all__ = []


@handler("float", "QuantizeLinear")
def quantize(imp, node, name, pending):
    out = imp.qparams(node, node.input(1), node.input(2), "output",
                      dtype=node.attrs.get("output_dtype"))
    p = pending
    if p is None or p.kind == "bias":
        have = imp.act.q
        same = np.float32(out.scale) == np.float32(have.scale) and \
            out.zero_point == have.zero_point
        if p is None and same:
            return "int8", None
        if p is None:   # a requantisation: multiply by one, requantise
            n = imp.act.shape[0]
            p = Pending("bias", imp.ir_name(node), bias_real=np.zeros(n))
        elif same and not np.any(p.bias_real):
            # a clamp alone, keeping the quantisation: the producing layer's clamp
            imp.clamp_producer(node, imp.int8_source(node.input(0)), p.activation,
                               through=node.input(0))
            return "int8", None
        return imp.bias_layer(node, p.bias_real, out, p.activation, p.name)
    if p.kind == "add":
        imp.emit_add(node, p.attrs["other"], out, p.activation, p.name)
    elif p.kind in ("avgpool", "global", "maxpool"):
        imp.emit_pool(node, p.kind, p.attrs, out, p.name, p.activation)
    else:
        imp.finish(node, p.kind, p.weight, p.weight_scale, p.bias_int, p.bias_real, out,
                   p.activation, p.name, p.attrs)
    return "int8", None


def _not_quantised(imp, node, name, pending):
    if pending is not None:
        imp.fail(node, f"input '{name}' is not quantised (no QuantizeLinear after "
                 f"{pending.name})")
    if node.input(0) != name:
        imp.fail(node, "the weight must be the second input")


@handler("float", "MatMul")
def matmul(imp, node, name, pending):
    _not_quantised(imp, node, name, pending)
    w, ws = imp.const_weight(node, node.input(1), out_axis=1, ndim=2)
    return "float", Pending("dense", imp.ir_name(node), imp.dense_weight(node, w), ws,
                            np.zeros(w.shape[1], np.int64))


@handler("float", "Gemm")
def gemm(imp, node, name, pending):
    _not_quantised(imp, node, name, pending)
    trans_b = imp.check_gemm_attrs(node)
    w, ws = imp.const_weight(node, node.input(1), out_axis=0 if trans_b else 1, ndim=2)
    if trans_b:
        w = w.T
    p = Pending("dense", imp.ir_name(node), imp.dense_weight(node, w), ws,
                np.zeros(w.shape[1], np.int64))
    if node.input(2):
        _add_bias(imp, node, p, imp.need_const(node, node.input(2), "the bias"))
    return "float", p


@handler("float", "Conv")
def conv(imp, node, name, pending):
    _not_quantised(imp, node, name, pending)
    c = imp.need_const(node, node.input(1), "the weight")
    if c.value.ndim != 4:
        imp.fail(node, f"only 2-D convolutions are supported (weight of shape "
                 f"{list(c.value.shape)})")
    group, attrs = imp.conv_attrs(node, c.value.shape)
    w, ws = imp.const_weight(node, node.input(1), out_axis=0, ndim=4)
    kind, weight = imp.conv_weight(node, w, group)
    p = Pending(kind, imp.ir_name(node), weight, ws, np.zeros(w.shape[0], np.int64),
                attrs=attrs)
    if node.input(2):
        _add_bias(imp, node, p, imp.need_const(node, node.input(2), "the bias"))
    return "float", p


def _add_bias(imp, node, p, c):
    """Add constant ``c`` to the sums of pending layer ``p`` (before its clamp)."""
    if p.activation != "none":
        imp.fail(node, "adds after a Relu or Clip; only a bias before the clamp is supported")
    exact = imp.exact_bias(c, p.weight_scale)
    if exact is not None:
        p.bias_int = p.bias_int + exact
        return
    value = imp.bias_vector(node, c, p.weight.shape[-1], p.kind != "dense")
    p.bias_real = value if p.bias_real is None else p.bias_real + value


@handler("float", "Add")
def add(imp, node, name, pending):
    other = imp.other_input(node, name)
    state = imp.states.get(other)
    if state is not None:                 # a residual Add of two tensors
        from .importer import Act
        other_act = state if isinstance(state, Act) else state.src
        if pending is not None or (not isinstance(state, Act) and state.pending is not None):
            imp.fail(node, "adds a tensor that is not quantised: each input of a residual Add "
                     "must be a DequantizeLinear")
        if isinstance(state, Act):
            imp.fail(node, f"input '{other}' is int8 where a float tensor is expected")
        return "float", Pending("add", imp.ir_name(node), attrs={"other": other_act})
    c = imp.const(other)
    if c is None:
        imp.fail(node, f"input '{other}' is neither a tensor nor a constant")
    image = len(imp.act.shape) == 3
    if pending is None:
        value = imp.bias_vector(node, c, imp.act.shape[0], image, "the added constant")
        return "float", Pending("bias", imp.ir_name(node), bias_real=value)
    if pending.kind == "bias":
        if pending.activation != "none":
            imp.fail(node, "adds after a Relu or Clip; only a bias before the clamp is "
                     "supported")
        pending.bias_real = pending.bias_real + imp.bias_vector(
            node, c, imp.act.shape[0], image, "the added constant")
        return "float", pending
    if pending.kind not in ("dense", "conv", "depthwise"):
        imp.fail(node, f"adds a constant after a {pending.kind}; only a layer's bias is "
                 "supported")
    _add_bias(imp, node, pending, c)
    return "float", pending


def _clamp(imp, node, pending, activation):
    if pending is None:
        # A clamp of a dequantised tensor: a layer of its own if the QuantizeLinear after it
        # changes the quantisation, else the producing layer's clamp.
        n = imp.act.shape[0]
        pending = Pending("bias", imp.ir_name(node), bias_real=np.zeros(n))
    pending.activation = imp.combine(pending.activation, activation)
    return "float", pending


@handler("float", "Relu")
def relu(imp, node, name, pending):
    return _clamp(imp, node, pending, "relu")


@handler("float", "Clip")
def clip(imp, node, name, pending):
    return _clamp(imp, node, pending, imp.float_clip_activation(node))


def _pool(imp, node, name, pending, kind, attrs=None):
    if pending is not None:
        imp.fail(node, f"pools the unquantised output of {pending.name}")
    return "float", Pending(kind, imp.ir_name(node), attrs=attrs)


@handler("float", "AveragePool")
def average_pool(imp, node, name, pending):
    attrs = imp.pool_attrs(node)
    if any(attrs["pads"]):
        imp.unsupported_attribute(node, "pads", list(attrs["pads"]),
                                  "average pooling is unpadded")
    return _pool(imp, node, name, pending, "avgpool", attrs)


@handler("float", "GlobalAveragePool")
def global_average_pool(imp, node, name, pending):
    return _pool(imp, node, name, pending, "global")


@handler("float", "MaxPool")
def max_pool(imp, node, name, pending):
    if len([o for o in node.outputs if o]) != 1:
        imp.fail(node, "its indices output is not supported")
    return _pool(imp, node, name, pending, "maxpool", imp.pool_attrs(node))


@handler("float", "Softmax")
def softmax(imp, node, name, pending):
    if pending is not None:
        imp.fail(node, f"takes the unquantised output of {pending.name}")
    return imp.emit_softmax(node)


@handler("float", "BatchNormalization")
def batch_norm(imp, node, name, pending):
    imp.fail(node, "only a BatchNormalization right after a float Conv or Gemm (before its "
             "QuantizeLinear) can be folded into it; this one comes after the layer's "
             "QuantizeLinear: fold it before quantising (onnxruntime.quantization."
             "quant_pre_process does)")


@handler("float", "Flatten", "Reshape", "Squeeze")
def reshape(imp, node, name, pending):
    return "float", imp.layout_op(node, name, pending)
