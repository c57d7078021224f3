"""Between ONNX's layouts and the IR's: NCHW images become HWC, convolution weights
[Cout, Cin, KH, KW] become [KH, KW, Cin, Cout], a flattened image's features go from (c, y, x)
order to (y, x, c), and 'same' padding becomes explicit pixels."""

import numpy as np

__all__ = ["ir_shape", "onnx_shape", "conv_weight", "depthwise_weight", "flatten_order",
           "same_pads", "onnx_pads"]


def ir_shape(shape):
    """The IR's shape of an ONNX tensor shape without its batch: (K,) or (C, H, W) -> HWC."""
    return tuple(shape) if len(shape) == 1 else (*shape[1:], shape[0])


def onnx_shape(shape):
    return tuple(shape) if len(shape) == 1 else (shape[2], shape[0], shape[1])


def conv_weight(w):
    """[Cout, Cin, KH, KW] -> [KH, KW, Cin, Cout]."""
    return np.ascontiguousarray(np.asarray(w).transpose(2, 3, 1, 0))


def depthwise_weight(w):
    """[C, 1, KH, KW] -> [KH, KW, C]."""
    w = np.asarray(w)
    return np.ascontiguousarray(w[:, 0].transpose(1, 2, 0))


def flatten_order(c, h, w):
    """IR feature i of a flattened (C, H, W) image is ONNX feature ``order[i]``."""
    return np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)


def same_pads(size, kernel, stride, upper):
    """(before, after) padding of one axis for auto_pad SAME_UPPER (extra after, as Keras
    and TFLite pad) or SAME_LOWER (extra before)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    small, large = total // 2, total - total // 2
    return (small, large) if upper else (large, small)


def onnx_pads(pads):
    """ONNX pads [top, left, bottom, right] (x1_begin, x2_begin, x1_end, x2_end) as the IR's
    (top, left, bottom, right)."""
    top, left, bottom, right = (int(v) for v in pads)
    return (top, left, bottom, right)
