"""The handler registry: one function per (mode, ONNX operator). A handler is called with the
importer, the node, the name of the tensor the walk reached it by, and that tensor's pending
float operation (QDQ format); it returns the mode and pending operation of its output.

Modes: ``"int8"``, a quantised tensor (QOperator format's operators take these), and
``"float"``, the dequantised side of QDQ format, where operators wait (pending) for the
QuantizeLinear that makes them a layer.
"""

__all__ = ["HANDLERS", "handler", "supported_ops"]

HANDLERS = {}


def handler(mode, *op_types):
    """Register the decorated function for ``op_types`` on tensors of ``mode``."""
    def register(function):
        for op_type in op_types:
            HANDLERS[mode, op_type] = function
        return function
    return register


def supported_ops(mode=None):
    """The ONNX operators the import takes (in ``mode``, or in either)."""
    return sorted({op for m, op in HANDLERS if mode is None or m == mode})
