"""The quantised model: the int8 network the compiler takes, whatever it came from.

Post-training quantisation (lockstep/quantize.py) and ONNX import (lockstep/onnx_import.py)
both produce a :class:`QModel`; the compiler (lockstep/compiler.py) lowers it to a program.
:meth:`QModel.reference` runs it in plain numpy with the core's arithmetic, as the third
opinion next to the golden model of the core and the RTL: all three must agree bit for bit.

Conventions:

* activations are int8 with an affine quantisation (``real = scale * (q - zero_point)``),
  images in HWC order (height, width, channels), a batch on axis 0;
* weights are int8, symmetric (zero point 0), with one scale per output channel;
* biases are int32 in units of ``input_scale * weight_scale[n]``;
* every layer requantises its int32 sums to its own output quantisation and applies its
  activation (``none``, ``relu`` or ``relu6``) as a clamp, exactly as the vector unit does;
* :class:`Flatten` flattens HWC in that order (y, x, c), so a Dense weight that follows a
  Flatten has its rows in HWC order.
"""

from dataclasses import dataclass, field

import numpy as np

from sim.arith import INT32_MAX, INT32_MIN, clamp_for, quantize_multiplier, requantize

__all__ = ["QParams", "Dense", "Conv2d", "Flatten", "QModel", "ModelError", "Requant", "im2col"]

ACTIVATIONS = ("none", "relu", "relu6")


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
    folded in), multiplier and shift, and the output zero point and clamp."""
    bias: np.ndarray
    mult: np.ndarray
    shift: np.ndarray
    zero_point: int
    clamp: tuple


def _check_activation(activation):
    if activation not in ACTIVATIONS:
        raise ModelError(f"activation must be one of {', '.join(ACTIVATIONS)}, "
                         f"not {activation!r}")


def _requant(name, weight_2d, bias, weight_scale, input_q, output_q, activation):
    """Requantisation of a layer whose int32 sums are ``x_int8 @ weight_2d`` (raw inputs,
    zero point included): the input zero point is folded into the bias."""
    sums = weight_2d.astype(np.int64).sum(axis=0)
    folded = np.asarray(bias, dtype=np.int64) - int(input_q.zero_point) * sums
    if folded.min(initial=0) < INT32_MIN or folded.max(initial=0) > INT32_MAX:
        raise ModelError(f"{name}: bias with the input zero point folded in overflows int32")
    mult, shift = [], []
    for n, w_scale in enumerate(np.asarray(weight_scale, dtype=np.float64)):
        real = input_q.scale * w_scale / output_q.scale
        try:
            m, s = quantize_multiplier(real)
        except ValueError:
            raise ModelError(
                f"{name}: output channel {n} needs a requantisation scale of {real:.4g}; the "
                "vector unit supports scales below 1 only") from None
        mult.append(m)
        shift.append(s)
    return Requant(folded.astype(np.int32), np.array(mult, dtype=np.int32),
                   np.array(shift, dtype=np.uint8), int(output_q.zero_point),
                   clamp_for(activation, output_q.zero_point, output_q.scale))


@dataclass
class Dense:
    """y = x @ weight + bias over the last axis. ``weight`` is int8 [K, N]."""
    weight: np.ndarray
    bias: np.ndarray
    weight_scale: np.ndarray
    output: QParams
    activation: str = "none"
    name: str = "dense"

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
        return _requant(self.name, self.weight, self.bias, self.weight_scale, input_q,
                        self.output, self.activation)

    def reference(self, x, input_q):
        r = self.requant(input_q)
        acc = x.astype(np.int64) @ self.weight.astype(np.int64)
        return requantize(acc, r.bias, r.mult, r.shift, r.zero_point, *r.clamp)

    def describe(self):
        k, n = self.weight.shape
        return f"{self.name} (dense {k}->{n}, {self.activation})"


@dataclass
class Conv2d:
    """2-D convolution, stride 1, no padding ("valid"). ``weight`` is int8 [KH, KW, Cin, Cout]."""
    weight: np.ndarray
    bias: np.ndarray
    weight_scale: np.ndarray
    output: QParams
    activation: str = "none"
    name: str = "conv2d"

    def __post_init__(self):
        self.weight = np.asarray(self.weight, dtype=np.int8)
        if self.weight.ndim != 4:
            raise ModelError(f"{self.name}: weight must be 4-D [KH, KW, Cin, Cout], "
                             f"not {self.weight.shape}")
        n = self.weight.shape[3]
        self.bias = _int32_vector(self.bias, n, self.name)
        self.weight_scale = _scale_vector(self.weight_scale, n, self.name)
        _check_activation(self.activation)

    def output_shape(self, input_shape):
        kh, kw, cin, cout = self.weight.shape
        if len(input_shape) != 3 or input_shape[2] != cin:
            raise ModelError(f"{self.name}: expects an HWC image with {cin} channels, gets "
                             f"shape {input_shape}")
        h, w = input_shape[0] - kh + 1, input_shape[1] - kw + 1
        if h < 1 or w < 1:
            raise ModelError(f"{self.name}: a {kh}x{kw} kernel does not fit a "
                             f"{input_shape[0]}x{input_shape[1]} image")
        return (h, w, cout)

    def requant(self, input_q):
        kh, kw, cin, cout = self.weight.shape
        return _requant(self.name, self.weight.reshape(kh * kw * cin, cout), self.bias,
                        self.weight_scale, input_q, self.output, self.activation)

    def reference(self, x, input_q):
        kh, kw, cin, cout = self.weight.shape
        patches = im2col(x.astype(np.int64), kh, kw)
        acc = patches @ self.weight.reshape(-1, cout).astype(np.int64)
        r = self.requant(input_q)
        return requantize(acc, r.bias, r.mult, r.shift, r.zero_point, *r.clamp)

    def describe(self):
        kh, kw, cin, cout = self.weight.shape
        return f"{self.name} (conv2d {kh}x{kw}, {cin}->{cout}, {self.activation})"


@dataclass
class Flatten:
    """HWC image -> feature vector, (y, x, c) order. Quantisation passes through unchanged."""
    name: str = "flatten"

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def reference(self, x, input_q):
        return x.reshape(x.shape[0], -1)

    def describe(self):
        return f"{self.name} (flatten)"


@dataclass
class QModel:
    """An int8 network: input shape (without batch), input quantisation, layers."""
    input_shape: tuple
    input: QParams
    layers: list = field(default_factory=list)
    name: str = "model"

    def __post_init__(self):
        self.input_shape = tuple(int(d) for d in self.input_shape)
        if not self.layers:
            raise ModelError("a model needs at least one layer")
        self.shapes()   # validates the chain

    def shapes(self):
        """Shape after each layer."""
        shape, out = self.input_shape, []
        for layer in self.layers:
            shape = layer.output_shape(shape)
            out.append(shape)
        return out

    def quant_params(self):
        """Input quantisation of each layer, then the model's output quantisation."""
        q, out = self.input, []
        for layer in self.layers:
            out.append(q)
            q = getattr(layer, "output", q)
        out.append(q)
        return out

    @property
    def output(self):
        return self.quant_params()[-1]

    @property
    def output_shape(self):
        return self.shapes()[-1]

    def reference(self, x):
        """int8 outputs for int8 inputs [batch, *input_shape], in plain numpy."""
        x = np.asarray(x)
        if x.dtype != np.int8 or x.shape[1:] != self.input_shape:
            raise ModelError(f"input must be int8 of shape [batch, {self.input_shape}], "
                             f"not {x.dtype} {x.shape}")
        qs = self.quant_params()
        for layer, q in zip(self.layers, qs, strict=False):
            x = layer.reference(x, q)
        return x

    def predict(self, x_float):
        """Float in, float out: quantise, run the int8 reference, dequantise."""
        return self.output.dequantize(self.reference(self.input.quantize(x_float)))


def im2col(x, kh, kw):
    """[B, H, W, C] -> patches [B, OH, OW, KH * KW * C], ordered (dy, dx, c)."""
    b, h, w, c = x.shape
    oh, ow = h - kh + 1, w - kw + 1
    cols = np.empty((b, oh, ow, kh, kw, c), dtype=x.dtype)
    for dy in range(kh):
        for dx in range(kw):
            cols[:, :, :, dy, dx, :] = x[:, dy:dy + oh, dx:dx + ow, :]
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
