"""Named passes over the ONNX graph, before the import walks it: each rewrites the graph
(lockstep/onnx/graph.py) into a simpler one that computes the same; each is small and tested
on its own."""

import numpy as np

from .graph import DOMAINS

__all__ = ["PASSES", "drop_identities", "fold_batch_norm"]


def drop_identities(graph):
    """Identity nodes disappear: their readers read their input."""
    for node in [n for n in graph.nodes if n.op_type == "Identity" and n.domain in DOMAINS]:
        graph.rename_uses(node.outputs[0], node.input(0))
        graph.remove(node)


def fold_batch_norm(graph):
    """A BatchNormalization right after a float Conv or Gemm (QDQ: between the layer and its
    QuantizeLinear), with constant parameters, becomes part of that layer: a per-channel factor
    ``a = gamma / sqrt(var + eps)`` goes into the weight's scales (the int8 weights keep their
    values, negated where a < 0), and ``a * bias + beta - mean * a`` becomes the layer's float
    bias. Exact up to float rounding of the scales and bias, as the exporter's own folding.
    A BatchNormalization anywhere else is left for the walk to refuse."""
    for bn in [n for n in graph.nodes if n.op_type == "BatchNormalization"
               and n.domain in DOMAINS]:
        layer = graph.producer(bn.input(0))
        if layer is None or layer.op_type not in ("Conv", "Gemm") or \
                len(graph.consumers(bn.input(0))) != 1:
            continue
        params = [graph.array(bn.input(i)) for i in range(1, 5)]
        if any(p is None for p in params):
            continue
        gamma, beta, mean, var = (np.asarray(p, dtype=np.float64).reshape(-1) for p in params)
        a = gamma / np.sqrt(var + float(bn.attrs.get("epsilon", 1e-5)))
        c = beta - mean * a
        weight_dq = graph.producer(layer.input(1))
        if weight_dq is None or weight_dq.op_type != "DequantizeLinear" or \
                len(graph.consumers(layer.input(1))) != 1:
            continue
        q = graph.array(weight_dq.input(0))
        scale = graph.array(weight_dq.input(1))
        if q is None or scale is None:
            continue
        axis = 0 if layer.op_type == "Conv" else (0 if layer.attrs.get("transB", 0) else 1)
        n = q.shape[axis]
        if a.shape != (n,):
            graph.fail(bn, f"has {a.size} channels, the layer before it {n}")
        shape = [1] * q.ndim
        shape[axis] = n
        sign = np.where(a < 0, -1, 1).reshape(shape)
        if np.any((q == np.iinfo(q.dtype).min) & (sign < 0)) and q.dtype.kind == "i":
            graph.fail(bn, "a negative factor meets a weight of -128, which int8 cannot negate")
        new_q = (q.astype(np.int64) * sign).astype(q.dtype)
        new_scale = np.broadcast_to(np.asarray(scale, dtype=np.float64).reshape(-1), (n,)) \
            * np.abs(a)
        q_name = graph.fresh_name(f"{weight_dq.input(0)}_bn")
        s_name = graph.fresh_name(f"{weight_dq.input(1)}_bn")
        graph.initializers[q_name] = new_q
        graph.initializers[s_name] = new_scale.astype(np.float32)
        weight_dq.inputs[0], weight_dq.inputs[1] = q_name, s_name
        weight_dq.attrs["axis"] = axis
        if len(weight_dq.inputs) > 2 and weight_dq.inputs[2]:
            zp = graph.array(weight_dq.input(2))
            z_name = graph.fresh_name(f"{weight_dq.input(2)}_bn")
            graph.initializers[z_name] = np.broadcast_to(np.asarray(zp).reshape(-1),
                                                         (n,)).copy()
            weight_dq.inputs[2] = z_name
        old_bias = graph.const(layer.input(2)) if layer.input(2) else None
        bias = (np.zeros(n) if old_bias is None
                else np.broadcast_to(old_bias.value.reshape(-1), (n,)))
        b_name = graph.fresh_name(f"{layer.name}_bn_bias")
        graph.initializers[b_name] = (a * bias + c).astype(np.float32)
        while len(layer.inputs) < 3:
            layer.inputs.append("")
        layer.inputs[2] = b_name
        graph.rename_uses(bn.outputs[0], layer.outputs[0])
        graph.remove(bn)


#: The passes, in the order the import runs them.
PASSES = (drop_identities, fold_batch_norm)
