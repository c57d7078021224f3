"""ONNX import: a model quantised by onnxruntime -> :class:`~lockstep.qmodel.QModel`.

Takes what ``onnxruntime.quantization.quantize_static`` writes, in either format:

* **QOperator**: ``QuantizeLinear`` on the input, then ``QLinearConv``, ``QLinearMatMul``,
  ``QGemm``, ``QLinearAdd`` (of a constant, or the residual Add of two tensors),
  ``QLinearAveragePool``, ``QLinearGlobalAveragePool``, ``QLinearSoftmax`` (com.microsoft),
  ``MaxPool``, ``Relu``, ``Clip``, ``Flatten`` / ``Reshape`` / ``Squeeze`` on int8 tensors, and
  a final ``DequantizeLinear``;
* **QDQ**: ``QuantizeLinear`` / ``DequantizeLinear`` pairs around float ``Conv``, ``MatMul``,
  ``Gemm``, ``Add``, ``AveragePool``, ``GlobalAveragePool``, ``MaxPool``, ``Relu``, ``Clip``,
  ``Softmax``, the reshapes, and a ``BatchNormalization`` right after a Conv or Gemm, with
  weights and biases given as ``DequantizeLinear`` of constants.

Three steps (docs/compiler.md, "ONNX import"): read the file (reader.py) into a graph view
(graph.py); run the named passes over it (passes.py: Identity nodes go, BatchNormalization
folds into the layer before it); walk it (importer.py), each operator by the handler
registered for it (registry.py; qoperator.py, qdq.py). :data:`SUPPORTED_OPS` comes from the
registry. The graph may branch (a residual Add reads two tensors). Convolutions take strides,
explicit or 'same' padding (Keras' split: the odd pixel after) and depthwise grouping; a
Softmax must end the model and runs on the host in float.

Every quantised tensor of the graph becomes one requantisation of the IR, so the result
computes what onnxruntime computes, up to its float rounding (onnxruntime requantises in
float32, the core in gemmlowp fixed point); tests/test_onnx_import.py measures it. Everything
else is refused with a one-line :class:`~lockstep.qmodel.ModelError` naming the operator and
node.
"""

from ..qmodel import ModelError
from . import qdq, qoperator  # noqa: F401  (they register their handlers)
from .graph import Graph
from .importer import Importer
from .passes import PASSES
from .reader import read_model
from .registry import supported_ops

__all__ = ["load_onnx", "SUPPORTED_OPS", "ModelError"]

#: The ONNX operators the import takes (either format).
SUPPORTED_OPS = tuple(supported_ops())


def load_onnx(source, *, name=None):
    """A :class:`QModel` from a quantised ONNX model: a path, the file's bytes, or an
    ``onnx.ModelProto``. Raises :class:`ModelError` (one line) for what cannot be imported."""
    graph = Graph(read_model(source))
    for run_pass in PASSES:
        run_pass(graph)
    return Importer(graph, name).run()
