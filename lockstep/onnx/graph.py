"""A mutable view of an ONNX graph that the import's passes rewrite: nodes as plain objects,
initializers as numpy arrays, and the constants a node reads (an initializer, a Constant's
output, a DequantizeLinear of those)."""

from dataclasses import dataclass, field

import numpy as np

from ..qmodel import ModelError
from .reader import onnx_module

__all__ = ["Node", "Graph", "Const"]

DOMAINS = ("", "ai.onnx", "com.microsoft")


@dataclass
class Node:
    op_type: str
    domain: str
    name: str
    inputs: list
    outputs: list
    attrs: dict = field(default_factory=dict)

    def input(self, index):
        """Input ``index``'s name, "" where it is absent."""
        return self.inputs[index] if index < len(self.inputs) else ""


@dataclass
class Const:
    """A constant tensor: ``value`` is real (float64); a quantised constant (DequantizeLinear of
    an initializer) keeps its integers, scale, zero point and axis."""
    value: np.ndarray
    q: np.ndarray = None
    scale: np.ndarray = None
    zero_point: np.ndarray = None
    axis: int = None


class Graph:
    """The nodes (in topological order), initializers, input and output of an ONNX graph."""

    def __init__(self, model):
        onnx = onnx_module()
        g = model.graph
        self.name = g.name
        self.initializers = {t.name: onnx.numpy_helper.to_array(t) for t in g.initializer}
        get = onnx.helper.get_attribute_value
        self.nodes = []
        for index, n in enumerate(g.node):
            attrs = {}
            for a in n.attribute:
                value = get(a)
                if isinstance(value, bytes):
                    value = value.decode()
                elif isinstance(value, onnx.TensorProto):
                    value = onnx.numpy_helper.to_array(value)
                attrs[a.name] = value
            self.nodes.append(Node(n.op_type, n.domain, n.name or f"{n.op_type}_{index}",
                                   list(n.input), list(n.output), attrs))
        self.inputs = [i for i in g.input if i.name not in self.initializers]
        self.outputs = list(g.output)
        self._const_cache = {}

    # -- structure --

    def producer(self, name):
        for node in self.nodes:
            if name in node.outputs:
                return node
        return None

    def consumers(self, name):
        return [node for node in self.nodes if name in node.inputs]

    def remove(self, node):
        self.nodes.remove(node)
        self._const_cache.clear()

    def rename_uses(self, old, new):
        """Every reader of tensor ``old`` reads ``new`` instead (the graph output too)."""
        for node in self.nodes:
            node.inputs = [new if i == old else i for i in node.inputs]
        for out in self.outputs:
            if out.name == old:
                out.name = new
        self._const_cache.clear()

    def fresh_name(self, base):
        taken = set(self.initializers) | {o for n in self.nodes for o in n.outputs}
        name, k = base, 0
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        return name

    # -- errors --

    @staticmethod
    def where(node):
        return f"{node.op_type} (node '{node.name}')"

    def fail(self, node, message):
        raise ModelError(f"{self.where(node)}: {message}")

    def unsupported_attribute(self, node, key, value, why):
        raise ModelError(f"unsupported attribute {key}={value} of {self.where(node)}: {why}")

    # -- constants --

    def array(self, name):
        """An initializer or Constant output as a numpy array, or None."""
        if not name:
            return None
        if name in self.initializers:
            return self.initializers[name]
        node = self.producer(name)
        if node is not None and node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            for key in ("value",):
                if key in node.attrs:
                    return np.asarray(node.attrs[key])
            for key in ("value_float", "value_int", "value_floats", "value_ints"):
                if key in node.attrs:
                    return np.array(node.attrs[key])
        return None

    def const(self, name):
        """A constant tensor (initializer, Constant, DequantizeLinear of those), or None."""
        if name in self._const_cache:
            return self._const_cache[name]
        result = None
        raw = self.array(name)
        if raw is not None:
            result = Const(np.asarray(raw, dtype=np.float64))
        else:
            node = self.producer(name)
            if node is not None and node.op_type == "DequantizeLinear" and node.domain in DOMAINS:
                q = self.array(node.input(0))
                if q is not None:
                    result = self.dequantize_const(node, q)
        self._const_cache[name] = result
        return result

    def is_constant(self, name):
        return self.const(name) is not None

    def dequantize_const(self, node, q):
        attrs = node.attrs
        if attrs.get("block_size", 0):
            self.unsupported_attribute(node, "block_size", attrs["block_size"],
                                       "blocked quantisation is not supported")
        scale = self.array(node.input(1))
        zp = self.array(node.input(2)) if node.input(2) else None
        if scale is None or (node.input(2) and zp is None):
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
        return Const(value, q=np.asarray(q), scale=scale, zero_point=zp, axis=axis)

    def need_const(self, node, name, what):
        c = self.const(name)
        if c is None:
            self.fail(node, f"{what} ('{name}') must be a constant")
        return c
