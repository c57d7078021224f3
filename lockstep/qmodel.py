"""The quantised model: the int8 network the compiler takes, whatever it came from.

Post-training quantisation (lockstep/quantize.py) and ONNX import (lockstep/onnx/) both produce a
:class:`QModel`; the compiler (lockstep/compiler/) lowers it to a program. :meth:`QModel.reference`
runs it in plain numpy with the core's arithmetic, as the third opinion next to the golden model
of the core and the RTL: all three must agree bit for bit.

A model is a graph: each layer names its output tensor (``name``) and the tensors it reads
(``inputs``; left empty, the layer reads the one before it, or the model's input, ``"input"``).
Layers are listed in an order in which every layer comes after what it reads, and the last one
is the model's output.

Conventions:

* activations are int8 with an affine quantisation (``real = scale * (q - zero_point)``),
  images in HWC order (height, width, channels), a batch on axis 0;
* weights are int8, symmetric (zero point 0), with one scale per output channel;
* biases are int32 in units of ``input_scale * weight_scale[n]``;
* every layer requantises its int32 results to its own output quantisation and applies its
  activation (``none``, ``relu`` or ``relu6``) as a clamp, exactly as the vector unit does;
* :class:`Flatten` flattens HWC in that order (y, x, c), so a Dense weight that follows a
  Flatten has its rows in HWC order;
* a convolution's padding is ``(top, left, bottom, right)`` pixels of the input's zero point
  (real 0); a max pool's padding never wins.
"""

import copy
from dataclasses import dataclass, field

import numpy as np

from sim.arith import (
    INT32_MAX,
    INT32_MIN,
    clamp_for,
    quantize_multiplier,
    requantize,
    rescale_add_input,
)

__all__ = ["QParams", "Dense", "Conv2d", "DepthwiseConv2d", "Add", "AvgPool", "MaxPool",
           "Flatten", "Softmax", "QModel", "ModelError", "Requant", "im2col", "INPUT",
           "IDENTITY_MULTIPLIER", "ACTIVATIONS", "add_multipliers"]

ACTIVATIONS = ("none", "relu", "relu6")
#: The name of the model's input tensor.
INPUT = "input"
#: A multiplier that leaves every int32 below 2**30 unchanged: (x * (2**31 - 1) + 2**30) >> 31.
IDENTITY_MULTIPLIER = INT32_MAX


class ModelError(ValueError):
    """A model the compiler cannot take as it is. The message is one line, for users."""


@dataclass(frozen=True)
class QParams:
    """int8 affine quantisation of a tensor."""
    scale: float
    zero_point: int = 0

    def __post_init__(self):
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise ModelError(f"quantisation scale must be positive and finite, not {self.scale}")
        if not -128 <= int(self.zero_point) <= 127:
            raise ModelError(f"int8 zero point must be in [-128, 127], not {self.zero_point}")

    def quantize(self, x):
        # In float32, as ONNX's QuantizeLinear (and onnxruntime) computes it.
        q = np.round(np.asarray(x, dtype=np.float32) / np.float32(self.scale)) + self.zero_point
        return np.clip(q, -128, 127).astype(np.int8)

    def dequantize(self, q):
        return (np.asarray(q, dtype=np.float64) - self.zero_point) * self.scale


@dataclass(frozen=True)
class Requant:
    """What the vector unit needs for one layer: per-channel bias (with the input zero point
    folded in where the layer's sums include it), multiplier and shift, the output zero point
    and clamp; for an Add, the two inputs' (multiplier, shift) (``inputs``)."""
    bias: np.ndarray
    mult: np.ndarray
    shift: np.ndarray
    zero_point: int
    clamp: tuple
    inputs: tuple = ()


def _check_activation(activation):
    if activation not in ACTIVATIONS:
        raise ModelError(f"activation must be one of {', '.join(ACTIVATIONS)}, "
                         f"not {activation!r}")


def _multiplier(name, real, what="requantisation scale"):
    """(multiplier, shift) for a real scale below 1, or the identity for exactly 1."""
    if real == 1.0:
        return IDENTITY_MULTIPLIER, 0
    try:
        return quantize_multiplier(real)
    except ValueError:
        raise ModelError(f"{name} needs a {what} of {real:.4g}; the vector unit supports "
                         "scales below 1 only") from None


def _requant(name, bias, scales, output_q, activation, zero_point_sums=None, input_q=None):
    """Requantisation of a layer whose int32 sums are scaled by ``scales`` (per channel) to
    real values; with ``zero_point_sums`` the sums include the input zero point, which is
    folded into the bias (``bias - zp_in * sum_k W[k, n]``)."""
    bias = np.asarray(bias, dtype=np.int64)
    if zero_point_sums is not None:
        bias = bias - int(input_q.zero_point) * zero_point_sums
    if bias.min(initial=0) < INT32_MIN or bias.max(initial=0) > INT32_MAX:
        raise ModelError(f"{name}: bias with the input zero point folded in overflows int32")
    pairs = [_multiplier(f"{name}: output channel {n}", s / output_q.scale)
             for n, s in enumerate(np.asarray(scales, dtype=np.float64))]
    return Requant(bias.astype(np.int32), np.array([p[0] for p in pairs], dtype=np.int32),
                   np.array([p[1] for p in pairs], dtype=np.uint8), int(output_q.zero_point),
                   clamp_for(activation, output_q.zero_point, output_q.scale))


def _pad(x, pads, value):
    """[B, H, W, C] padded by (top, left, bottom, right) pixels of ``value``."""
    t, left, b, r = pads
    return np.pad(x, ((0, 0), (t, b), (left, r), (0, 0)), constant_values=value)


def _pair(value, what, name):
    value = tuple(int(v) for v in (value if np.ndim(value) else (value, value)))
    if len(value) != 2 or min(value) < 1:
        raise ModelError(f"{name}: {what} must be two positive integers, not {value}")
    return value


def _pads(value, name):
    value = tuple(int(v) for v in value)
    if len(value) != 4 or min(value) < 0:
        raise ModelError(f"{name}: padding must be (top, left, bottom, right) >= 0, not {value}")
    return value


def _window_out(size, kernel, stride, pad_lo, pad_hi, name, what):
    out = (size + pad_lo + pad_hi - kernel) // stride + 1
    if out < 1:
        raise ModelError(f"{name}: a {what} of {kernel} does not fit {size} (+{pad_lo + pad_hi} "
                         "padding)")
    return out


class Layer:
    """What every layer has: ``name`` (its output tensor), ``inputs`` (tensor names), and
    ``host`` (False: it runs on the core)."""
    host = False

    def macs(self, input_shapes):
        return 0


@dataclass
class Dense(Layer):
    """y = x @ weight + bias over the last axis. ``weight`` is int8 [K, N]."""
    weight: np.ndarray
    bias: np.ndarray
    weight_scale: np.ndarray
    output: QParams
    activation: str = "none"
    name: str = "dense"
    inputs: tuple = ()

    def __post_init__(self):
        self.weight = np.asarray(self.weight, dtype=np.int8)
        if self.weight.ndim != 2:
            raise ModelError(f"{self.name}: weight must be 2-D [K, N], not {self.weight.shape}")
        n = self.weight.shape[1]
        self.bias = _int32_vector(self.bias, n, self.name)
        self.weight_scale = _scale_vector(self.weight_scale, n, self.name)
        _check_activation(self.activation)

    def output_shape(self, input_shape):
        if len(input_shape) != 1 or input_shape[0] != self.weight.shape[0]:
            raise ModelError(f"{self.name}: expects {self.weight.shape[0]} input features, "
                             f"gets shape {input_shape}")
        return (self.weight.shape[1],)

    def requant(self, input_q):
        return _requant(self.name, self.bias, input_q.scale * self.weight_scale, self.output,
                        self.activation, self.weight.astype(np.int64).sum(axis=0), input_q)

    def reference(self, xs, input_qs):
        r = self.requant(input_qs[0])
        acc = xs[0].astype(np.int64) @ self.weight.astype(np.int64)
        return requantize(acc, r.bias, r.mult, r.shift, r.zero_point, *r.clamp)

    def macs(self, input_shapes):
        return int(self.weight.size)

    def describe(self):
        k, n = self.weight.shape
        return f"{self.name} (dense {k}->{n}, {self.activation})"


@dataclass
class Conv2d(Layer):
    """2-D convolution. ``weight`` is int8 [KH, KW, Cin, Cout]; ``stride`` (sy, sx); ``pads``
    (top, left, bottom, right), of the input's zero point."""
    weight: np.ndarray
    bias: np.ndarray
    weight_scale: np.ndarray
    output: QParams
    activation: str = "none"
    name: str = "conv2d"
    stride: tuple = (1, 1)
    pads: tuple = (0, 0, 0, 0)
    inputs: tuple = ()

    def __post_init__(self):
        self.weight = np.asarray(self.weight, dtype=np.int8)
        if self.weight.ndim != 4:
            raise ModelError(f"{self.name}: weight must be 4-D [KH, KW, Cin, Cout], "
                             f"not {self.weight.shape}")
        n = self.weight.shape[3]
        self.bias = _int32_vector(self.bias, n, self.name)
        self.weight_scale = _scale_vector(self.weight_scale, n, self.name)
        self.stride = _pair(self.stride, "stride", self.name)
        self.pads = _pads(self.pads, self.name)
        _check_activation(self.activation)

    def output_shape(self, input_shape):
        kh, kw, cin, cout = self.weight.shape
        if len(input_shape) != 3 or input_shape[2] != cin:
            raise ModelError(f"{self.name}: expects an HWC image with {cin} channels, gets "
                             f"shape {input_shape}")
        t, left, b, r = self.pads
        h = _window_out(input_shape[0], kh, self.stride[0], t, b, self.name, "kernel height")
        w = _window_out(input_shape[1], kw, self.stride[1], left, r, self.name, "kernel width")
        return (h, w, cout)

    def requant(self, input_q):
        kh, kw, cin, cout = self.weight.shape
        return _requant(self.name, self.bias, input_q.scale * self.weight_scale, self.output,
                        self.activation,
                        self.weight.reshape(-1, cout).astype(np.int64).sum(axis=0), input_q)

    def reference(self, xs, input_qs):
        kh, kw, cin, cout = self.weight.shape
        x = _pad(xs[0].astype(np.int64), self.pads, int(input_qs[0].zero_point))
        patches = im2col(x, kh, kw, self.stride)
        acc = patches @ self.weight.reshape(-1, cout).astype(np.int64)
        r = self.requant(input_qs[0])
        return requantize(acc, r.bias, r.mult, r.shift, r.zero_point, *r.clamp)

    def macs(self, input_shapes):
        h, w, _ = self.output_shape(input_shapes[0])
        return int(h * w * self.weight.size)

    def describe(self):
        kh, kw, cin, cout = self.weight.shape
        extra = f", stride {self.stride[0]}" if self.stride != (1, 1) else ""
        extra += ", padded" if any(self.pads) else ""
        return f"{self.name} (conv2d {kh}x{kw}, {cin}->{cout}{extra}, {self.activation})"


@dataclass
class DepthwiseConv2d(Layer):
    """Depthwise 2-D convolution (one filter per channel). ``weight`` is int8 [KH, KW, C]."""
    weight: np.ndarray
    bias: np.ndarray
    weight_scale: np.ndarray
    output: QParams
    activation: str = "none"
    name: str = "depthwise"
    stride: tuple = (1, 1)
    pads: tuple = (0, 0, 0, 0)
    inputs: tuple = ()

    def __post_init__(self):
        self.weight = np.asarray(self.weight, dtype=np.int8)
        if self.weight.ndim != 3:
            raise ModelError(f"{self.name}: weight must be 3-D [KH, KW, C], "
                             f"not {self.weight.shape}")
        c = self.weight.shape[2]
        self.bias = _int32_vector(self.bias, c, self.name)
        self.weight_scale = _scale_vector(self.weight_scale, c, self.name)
        self.stride = _pair(self.stride, "stride", self.name)
        self.pads = _pads(self.pads, self.name)
        _check_activation(self.activation)

    def output_shape(self, input_shape):
        kh, kw, c = self.weight.shape
        if len(input_shape) != 3 or input_shape[2] != c:
            raise ModelError(f"{self.name}: expects an HWC image with {c} channels, gets "
                             f"shape {input_shape}")
        t, left, b, r = self.pads
        h = _window_out(input_shape[0], kh, self.stride[0], t, b, self.name, "kernel height")
        w = _window_out(input_shape[1], kw, self.stride[1], left, r, self.name, "kernel width")
        return (h, w, c)

    def requant(self, input_q):
        # The window unit subtracts the input zero point itself: nothing to fold.
        return _requant(self.name, self.bias, input_q.scale * self.weight_scale, self.output,
                        self.activation)

    def reference(self, xs, input_qs):
        kh, kw, c = self.weight.shape
        zp = int(input_qs[0].zero_point)
        x = _pad(xs[0].astype(np.int64), self.pads, zp) - zp
        patches = im2col(x, kh, kw, self.stride)          # [B, OH, OW, KH * KW * C]
        b, oh, ow, _ = patches.shape
        acc = (patches.reshape(b, oh, ow, kh * kw, c)
               * self.weight.reshape(kh * kw, c).astype(np.int64)).sum(axis=3)
        r = self.requant(input_qs[0])
        return requantize(acc, r.bias, r.mult, r.shift, r.zero_point, *r.clamp)

    def macs(self, input_shapes):
        h, w, _ = self.output_shape(input_shapes[0])
        return int(h * w * self.weight.size)

    def describe(self):
        kh, kw, c = self.weight.shape
        extra = f", stride {self.stride[0]}" if self.stride != (1, 1) else ""
        return f"{self.name} (depthwise {kh}x{kw}, {c}{extra}, {self.activation})"


def add_multipliers(name, q1, q2, output_q):
    """TFLite's integer Add (``tflite::ops::builtin::add``, int8): each input is shifted left
    by 20 bits and scaled by ``s_i / (2 max(s1, s2))``, the sum by
    ``2 max(s1, s2) / (2**20 s_out)``. Returns ((m1, sh1), (m2, sh2), (m_out, sh_out))."""
    twice_max = 2.0 * max(q1.scale, q2.scale)
    return (_multiplier(f"{name}:", q1.scale / twice_max, "input scale"),
            _multiplier(f"{name}:", q2.scale / twice_max, "input scale"),
            _multiplier(f"{name}:", twice_max / ((1 << 20) * output_q.scale)))


@dataclass
class Add(Layer):
    """The residual Add of two int8 tensors of one shape, rescaled exactly as TFLite's integer
    kernel does (:func:`add_multipliers`)."""
    output: QParams
    activation: str = "none"
    name: str = "add"
    inputs: tuple = ()

    def __post_init__(self):
        _check_activation(self.activation)

    def output_shape(self, shape_a, shape_b=None):
        if shape_b is not None and tuple(shape_a) != tuple(shape_b):
            raise ModelError(f"{self.name}: adds tensors of different shapes {shape_a} and "
                             f"{shape_b}")
        return tuple(shape_a)

    def requant(self, q1, q2):
        (m1, s1), (m2, s2), (mo, so) = add_multipliers(self.name, q1, q2, self.output)
        return Requant(np.zeros(1, np.int32), np.array([mo], np.int32), np.array([so], np.uint8),
                       int(self.output.zero_point),
                       clamp_for(self.activation, self.output.zero_point, self.output.scale),
                       inputs=((m1, s1), (m2, s2)))

    def reference(self, xs, input_qs):
        r = self.requant(*input_qs)
        (m1, s1), (m2, s2) = r.inputs
        total = (rescale_add_input(xs[0].astype(np.int64) - input_qs[0].zero_point, m1, s1)
                 + rescale_add_input(xs[1].astype(np.int64) - input_qs[1].zero_point, m2, s2))
        return requantize(total, 0, r.mult[0], r.shift[0], r.zero_point, *r.clamp)

    def describe(self):
        return f"{self.name} (add, {self.activation})"


@dataclass
class AvgPool(Layer):
    """Average pooling, without padding. ``kernel`` None: over the whole image (global).
    The mean is requantised as ``sum(x - zp_in) * s_in / (count * s_out)``."""
    output: QParams
    kernel: tuple = None
    stride: tuple = None
    name: str = "avgpool"
    inputs: tuple = ()
    activation: str = "none"

    def __post_init__(self):
        if self.kernel is not None:
            self.kernel = _pair(self.kernel, "kernel", self.name)
            self.stride = _pair(self.stride or self.kernel, "stride", self.name)
        _check_activation(self.activation)

    def window(self, input_shape):
        return tuple(input_shape[:2]) if self.kernel is None else self.kernel

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ModelError(f"{self.name}: expects an HWC image, gets shape {input_shape}")
        if self.kernel is None:
            return (1, 1, input_shape[2])
        h = _window_out(input_shape[0], self.kernel[0], self.stride[0], 0, 0, self.name,
                        "kernel height")
        w = _window_out(input_shape[1], self.kernel[1], self.stride[1], 0, 0, self.name,
                        "kernel width")
        return (h, w, input_shape[2])

    def requant(self, input_q, input_shape):
        kh, kw = self.window(input_shape)
        c = input_shape[2]
        return _requant(self.name, np.zeros(c, np.int64),
                        np.full(c, input_q.scale / (kh * kw)), self.output, self.activation)

    def reference(self, xs, input_qs):
        x = xs[0].astype(np.int64) - input_qs[0].zero_point
        kh, kw = self.window(x.shape[1:])
        sy, sx = self.stride or (kh, kw)
        patches = im2col(x, kh, kw, (sy, sx))
        b, oh, ow, _ = patches.shape
        acc = patches.reshape(b, oh, ow, kh * kw, -1).sum(axis=3)
        r = self.requant(input_qs[0], x.shape[1:])
        return requantize(acc, r.bias, r.mult, r.shift, r.zero_point, *r.clamp)

    def describe(self):
        what = "global" if self.kernel is None else f"{self.kernel[0]}x{self.kernel[1]}"
        return f"{self.name} (average pool {what})"


@dataclass
class MaxPool(Layer):
    """Max pooling; padding never wins. ``output`` None: the input's quantisation."""
    kernel: tuple = (2, 2)
    stride: tuple = None
    pads: tuple = (0, 0, 0, 0)
    output: QParams = None
    name: str = "maxpool"
    inputs: tuple = ()
    activation: str = "none"

    def __post_init__(self):
        self.kernel = _pair(self.kernel, "kernel", self.name)
        self.stride = _pair(self.stride or self.kernel, "stride", self.name)
        self.pads = _pads(self.pads, self.name)
        _check_activation(self.activation)

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ModelError(f"{self.name}: expects an HWC image, gets shape {input_shape}")
        t, left, b, r = self.pads
        h = _window_out(input_shape[0], self.kernel[0], self.stride[0], t, b, self.name,
                        "kernel height")
        w = _window_out(input_shape[1], self.kernel[1], self.stride[1], left, r, self.name,
                        "kernel width")
        return (h, w, input_shape[2])

    def output_q(self, input_q):
        return self.output or input_q

    def requant(self, input_q, channels):
        out = self.output_q(input_q)
        return _requant(self.name, np.zeros(channels, np.int64), np.full(channels, input_q.scale),
                        out, self.activation)

    def reference(self, xs, input_qs):
        kh, kw = self.kernel
        x = _pad(xs[0].astype(np.int64), self.pads, -128) - input_qs[0].zero_point
        patches = im2col(x, kh, kw, self.stride)
        b, oh, ow, _ = patches.shape
        acc = patches.reshape(b, oh, ow, kh * kw, -1).max(axis=3)
        r = self.requant(input_qs[0], x.shape[3])
        return requantize(acc, r.bias, r.mult, r.shift, r.zero_point, *r.clamp)

    def describe(self):
        return f"{self.name} (max pool {self.kernel[0]}x{self.kernel[1]})"


@dataclass
class Flatten(Layer):
    """HWC image -> feature vector, (y, x, c) order. Quantisation passes through unchanged."""
    name: str = "flatten"
    inputs: tuple = ()

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def reference(self, xs, input_qs):
        return xs[0].reshape(xs[0].shape[0], -1)

    def describe(self):
        return f"{self.name} (flatten)"


@dataclass
class Softmax(Layer):
    """Softmax over the last axis, on the host in float (the core's output is its int8 input):
    only as the model's last layer."""
    name: str = "softmax"
    inputs: tuple = ()
    host = True

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def apply(self, x):
        z = np.asarray(x, dtype=np.float64)
        z = np.exp(z - z.max(axis=-1, keepdims=True))
        return z / z.sum(axis=-1, keepdims=True)

    def describe(self):
        return f"{self.name} (softmax, on the host in float)"


@dataclass
class QModel:
    """An int8 network: input shape (without batch), input quantisation, layers (a graph in
    an order in which each layer follows its inputs; the last is the output)."""
    input_shape: tuple
    input: QParams
    layers: list = field(default_factory=list)
    name: str = "model"

    def __post_init__(self):
        self.input_shape = tuple(int(d) for d in self.input_shape)
        if not self.layers:
            raise ModelError("a model needs at least one layer")
        previous = INPUT
        seen = {INPUT}
        layers = []
        for layer in self.layers:
            # A layer that reads "the one before it" is copied, so that the same layer object
            # may appear in another model after another layer.
            layer = copy.copy(layer)
            layer.inputs = tuple(layer.inputs) if layer.inputs else (previous,)
            layers.append(layer)
            if layer.name in seen:
                raise ModelError(f"two tensors are called {layer.name!r}")
            for name in layer.inputs:
                if name not in seen:
                    raise ModelError(f"{layer.name}: reads {name!r}, which no earlier layer "
                                     "makes")
            expected = 2 if isinstance(layer, Add) else 1
            if len(layer.inputs) != expected:
                raise ModelError(f"{layer.name}: takes {expected} input(s), not "
                                 f"{len(layer.inputs)}")
            seen.add(layer.name)
            previous = layer.name
        self.layers = layers
        host = [i for i, layer in enumerate(self.layers) if layer.host]
        if host and host != list(range(len(self.layers) - len(host), len(self.layers))):
            raise ModelError(f"{self.layers[host[0]].name}: a host layer (softmax) can only end "
                             "the model")
        if len(host) == len(self.layers):
            raise ModelError("a model needs at least one layer on the core")
        self.tensors()   # validates shapes

    @property
    def core_layers(self):
        """The layers that run on the core (all but a final host softmax)."""
        return [layer for layer in self.layers if not layer.host]

    @property
    def host_layers(self):
        return [layer for layer in self.layers if layer.host]

    def consumers(self):
        """Tensor name -> the layers that read it."""
        out = {}
        for layer in self.layers:
            for name in layer.inputs:
                out.setdefault(name, []).append(layer)
        return out

    def tensors(self):
        """Tensor name -> (shape, QParams), the input's included."""
        out = {INPUT: (self.input_shape, self.input)}
        for layer in self.layers:
            shapes = [out[name][0] for name in layer.inputs]
            qs = [out[name][1] for name in layer.inputs]
            shape = layer.output_shape(*shapes)
            if isinstance(layer, MaxPool):
                q = layer.output_q(qs[0])
            else:
                q = getattr(layer, "output", None) or qs[0]
            out[layer.name] = (tuple(shape), q)
        return out

    def shapes(self):
        """Shape after each layer."""
        tensors = self.tensors()
        return [tensors[layer.name][0] for layer in self.layers]

    @property
    def output(self):
        """Quantisation of the core's output (the last core layer's)."""
        return self.tensors()[self.core_layers[-1].name][1]

    @property
    def output_shape(self):
        return self.tensors()[self.layers[-1].name][0]

    def reference(self, x):
        """int8 outputs of the core's last layer for int8 inputs [batch, *input_shape], in plain
        numpy."""
        x = np.asarray(x)
        if x.dtype != np.int8 or x.shape[1:] != self.input_shape:
            raise ModelError(f"input must be int8 of shape [batch, {self.input_shape}], "
                             f"not {x.dtype} {x.shape}")
        tensors = self.tensors()
        values = {INPUT: x}
        for layer in self.core_layers:
            values[layer.name] = layer.reference([values[n] for n in layer.inputs],
                                                 [tensors[n][1] for n in layer.inputs])
        return values[self.core_layers[-1].name]

    def finish(self, y):
        """The model's float output from the core's int8 output: dequantised, then the host
        layers (a final softmax)."""
        y = self.output.dequantize(y)
        for layer in self.host_layers:
            y = layer.apply(y)
        return y

    def predict(self, x_float):
        """Float in, float out: quantise, run the int8 reference, dequantise (and softmax)."""
        return self.finish(self.reference(self.input.quantize(x_float)))

    def quant_params(self):
        """Input quantisation of each layer (its first input's)."""
        tensors = self.tensors()
        return [tensors[layer.inputs[0]][1] for layer in self.layers]

    def macs(self):
        """Multiply-accumulates of one inference."""
        tensors = self.tensors()
        return sum(layer.macs([tensors[n][0] for n in layer.inputs]) for layer in self.layers)


def im2col(x, kh, kw, stride=(1, 1)):
    """[B, H, W, C] -> patches [B, OH, OW, KH * KW * C], ordered (dy, dx, c)."""
    b, h, w, c = x.shape
    sy, sx = stride
    oh, ow = (h - kh) // sy + 1, (w - kw) // sx + 1
    cols = np.empty((b, oh, ow, kh, kw, c), dtype=x.dtype)
    for dy in range(kh):
        for dx in range(kw):
            cols[:, :, :, dy, dx, :] = x[:, dy:dy + (oh - 1) * sy + 1:sy,
                                         dx:dx + (ow - 1) * sx + 1:sx, :]
    return cols.reshape(b, oh, ow, kh * kw * c)


def _int32_vector(values, n, name):
    values = np.asarray(values, dtype=np.int64).reshape(-1)
    if values.shape != (n,):
        raise ModelError(f"{name}: needs {n} biases, not {values.shape[0]}")
    if values.min(initial=0) < INT32_MIN or values.max(initial=0) > INT32_MAX:
        raise ModelError(f"{name}: biases must fit int32")
    return values.astype(np.int32)


def _scale_vector(values, n, name):
    values = np.broadcast_to(np.asarray(values, dtype=np.float64), (n,)).copy()
    if not np.all(np.isfinite(values) & (values > 0)):
        raise ModelError(f"{name}: weight scales must be positive and finite")
    return values
