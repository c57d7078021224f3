"""QOperator format: operators on int8 tensors (``QLinearConv``, ``QLinearMatMul``, ``QGemm``,
``QLinearAdd``, the pools, ``QLinearSoftmax``, and the plain operators onnxruntime runs on
int8: ``MaxPool``, ``Relu``, ``Clip``, the reshapes), and ``DequantizeLinear`` into float."""

import numpy as np

from .registry import handler

__all__ = []


def _inputs(node, count):
    return list(node.inputs) + [""] * (count - len(node.inputs))


@handler("int8", "QLinearMatMul")
def qlinear_matmul(imp, node, name, pending):
    i = _inputs(node, 8)
    if i[0] != name:
        imp.fail(node, "the weight must be the second input")
    imp.check_input_q(node, i[1], i[2])
    w, ws = imp.weight(node, *imp.weight_inputs(node, i[3:6], 2), out_axis=1)
    out = imp.qparams(node, i[6], i[7], "output")
    imp.finish(node, "dense", imp.dense_weight(node, w), ws, np.zeros(w.shape[1]), None,
               out, "none", imp.ir_name(node))
    return "int8", None


@handler("int8", "QGemm")
def qgemm(imp, node, name, pending):
    i = _inputs(node, 9)
    trans_b = imp.check_gemm_attrs(node)
    if i[0] != name:
        imp.fail(node, "the weight must be the second input")
    if not i[7]:
        imp.fail(node, "has a float output; only QGemm with an int8 output is supported")
    imp.check_input_q(node, i[1], i[2])
    w, ws = imp.weight(node, *imp.weight_inputs(node, i[3:6], 2),
                       out_axis=0 if trans_b else 1)
    if trans_b:
        w = w.T
    bias = np.zeros(w.shape[1], dtype=np.int64)
    if i[6]:
        b = imp.array(i[6])
        if b is None or b.dtype != np.int32 or b.size not in (1, w.shape[1]):
            imp.fail(node, "the bias must be an int32 constant, one per output")
        bias = np.broadcast_to(b.reshape(-1).astype(np.int64), (w.shape[1],))
    out = imp.qparams(node, i[7], i[8], "output")
    imp.finish(node, "dense", imp.dense_weight(node, w), ws, bias, None, out, "none",
               imp.ir_name(node))
    return "int8", None


@handler("int8", "QLinearConv")
def qlinear_conv(imp, node, name, pending):
    i = _inputs(node, 9)
    if i[0] != name:
        imp.fail(node, "the weight must be the second input")
    imp.check_input_q(node, i[1], i[2])
    q, scale, zp = imp.weight_inputs(node, i[3:6], 4)
    group, attrs = imp.conv_attrs(node, q.shape)
    w, ws = imp.weight(node, q, scale, zp, out_axis=0)
    kind, weight = imp.conv_weight(node, w, group)
    bias = np.zeros(w.shape[0], dtype=np.int64)
    if i[8]:
        b = imp.array(i[8])
        if b is None or b.dtype != np.int32 or b.shape != (w.shape[0],):
            imp.fail(node, "the bias must be an int32 constant, one per output channel")
        bias = b.astype(np.int64)
    out = imp.qparams(node, i[6], i[7], "output")
    imp.finish(node, kind, weight, ws, bias, None, out, "none", imp.ir_name(node), attrs)
    return "int8", None


@handler("int8", "QLinearAdd")
def qlinear_add(imp, node, name, pending):
    i = _inputs(node, 8)
    a_name, b_name = i[0], i[3]
    if a_name == b_name:
        imp.fail(node, "adds a tensor to itself")
    mine = (i[1], i[2]) if a_name == name else (i[4], i[5])
    other = (i[3], i[4], i[5]) if a_name == name else (i[0], i[1], i[2])
    imp.check_input_q(node, *mine)
    out = imp.qparams(node, i[6], i[7], "output")
    other_state = imp.state(node, other[0], "int8")
    if other_state is not None:           # a residual Add of two tensors
        imp.check_input_q(node, other[1], other[2], act=other_state)
        imp.emit_add(node, other_state, out, "none", imp.ir_name(node))
        return "int8", None
    q, scale = imp.array(other[0]), imp.array(other[1])
    zp = imp.array(other[2]) if other[2] else np.zeros((), np.uint8)
    if q is None or scale is None or zp is None:
        imp.fail(node, "the second input must be an int8 tensor or a constant")
    if np.asarray(scale).size != 1 or np.asarray(zp).size != 1:
        imp.fail(node, "the added constant must be quantised per tensor")
    from .graph import Const
    c = Const((q.astype(np.float64) - float(np.asarray(zp).reshape(-1)[0]))
              * float(np.asarray(scale).reshape(-1)[0]))
    image = len(imp.act.shape) == 3
    value = imp.bias_vector(node, c, imp.act.shape[0], image, "the added constant")
    return imp.bias_layer(node, value, out, "none", imp.ir_name(node))


@handler("int8", "QLinearAveragePool")
def qlinear_average_pool(imp, node, name, pending):
    i = _inputs(node, 5)
    imp.check_input_q(node, i[1], i[2])
    attrs = imp.pool_attrs(node)
    if any(attrs["pads"]):
        imp.unsupported_attribute(node, "pads", list(attrs["pads"]),
                                  "average pooling is unpadded")
    out = imp.qparams(node, i[3], i[4], "output")
    imp.emit_pool(node, "avgpool", attrs, out, imp.ir_name(node))
    return "int8", None


@handler("int8", "QLinearGlobalAveragePool")
def qlinear_global_average_pool(imp, node, name, pending):
    i = _inputs(node, 5)
    if node.attrs.get("channels_last", 0):
        imp.unsupported_attribute(node, "channels_last", 1, "images are NCHW")
    imp.check_input_q(node, i[1], i[2])
    out = imp.qparams(node, i[3], i[4], "output")
    imp.emit_pool(node, "global", None, out, imp.ir_name(node))
    return "int8", None


@handler("int8", "MaxPool")
def max_pool(imp, node, name, pending):
    if len([o for o in node.outputs if o]) != 1:
        imp.fail(node, "its indices output is not supported")
    imp.emit_pool(node, "maxpool", imp.pool_attrs(node), None, imp.ir_name(node))
    return "int8", None


@handler("int8", "QLinearSoftmax")
def qlinear_softmax(imp, node, name, pending):
    i = _inputs(node, 5)
    imp.check_input_q(node, i[1], i[2])
    return imp.emit_softmax(node)


@handler("int8", "Flatten", "Reshape", "Squeeze")
def reshape(imp, node, name, pending):
    return "int8", imp.layout_op(node, name, pending)


@handler("int8", "Relu")
def relu(imp, node, name, pending):
    # ONNX's Relu on an int8 tensor is max(x, 0) on the raw integers (a relu only if the zero
    # point is 0); on uint8 it does nothing.
    offset = imp.offset(name)
    imp.clamp_producer(node, name, imp.int8_clip_activation(node, -offset, 127))
    return "int8", None


@handler("int8", "Clip")
def clip(imp, node, name, pending):
    lo, hi = imp.clip_bounds(node)
    offset = imp.offset(name)
    lo = -128 if lo is None else int(lo) - offset
    hi = 127 if hi is None else int(hi) - offset
    imp.clamp_producer(node, name, imp.int8_clip_activation(node, lo, hi))
    return "int8", None


@handler("int8", "DequantizeLinear")
def dequantize(imp, node, name, pending):
    imp.check_input_q(node, node.input(1), node.input(2))
    return "float", None
