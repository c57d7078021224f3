"""A tiny float network description in numpy: what training produces and quantisation takes.

Layers: :class:`Dense` (``weight`` [K, N], ``bias`` [N]), :class:`Conv2d` (``weight``
[KH, KW, Cin, Cout], ``bias`` [Cout], stride 1, no padding), :class:`ReLU`, :class:`ReLU6` and
:class:`Flatten` (HWC order, as lockstep/qmodel.py). :class:`Sequential` chains them; a batch is
on axis 0 and images are HWC floats. Shapes are checked when the model is built and when it is
run; every mismatch is a one-line :class:`~lockstep.qmodel.ModelError`.

The layout matches the quantised IR, so quantisation (lockstep/quantize.py) copies weights
across without transposing: a convolution's patches are ordered (dy, dx, c), which is
``weight.reshape(KH * KW * Cin, Cout)``.
"""

from dataclasses import dataclass, field

import numpy as np

from .qmodel import ModelError, im2col

__all__ = ["Dense", "Conv2d", "ReLU", "ReLU6", "Flatten", "Sequential", "im2col", "col2im"]


def _float_array(values, what):
    values = np.array(values, dtype=np.float64)   # a copy: training updates it in place
    if not np.all(np.isfinite(values)):
        raise ModelError(f"{what} must be finite")
    return values


@dataclass
class Dense:
    """y = x @ weight + bias over the last axis; ``weight`` is [K, N], ``bias`` [N]."""
    weight: np.ndarray
    bias: np.ndarray

    def __post_init__(self):
        self.weight = _float_array(self.weight, "dense weight")
        if self.weight.ndim != 2:
            raise ModelError(f"dense weight must be 2-D [K, N], not {self.weight.shape}")
        self.bias = _float_array(self.bias, "dense bias")
        if self.bias.shape != (self.weight.shape[1],):
            raise ModelError(f"dense bias must have shape ({self.weight.shape[1]},) to match "
                             f"weight {self.weight.shape}, not {self.bias.shape}")

    def output_shape(self, input_shape):
        k, n = self.weight.shape
        if tuple(input_shape) != (k,):
            raise ModelError(f"dense {k}->{n} expects {k} input features, gets shape "
                             f"{tuple(input_shape)}" +
                             (" (add a Flatten first)" if len(input_shape) > 1 else ""))
        return (n,)

    def forward(self, x):
        return x @ self.weight + self.bias


def col2im(cols, input_shape, kh, kw):
    """The adjoint of :func:`im2col`: patch gradients [B, OH, OW, KH * KW * C] summed back
    into an image gradient [B, H, W, C]."""
    b, h, w, c = input_shape
    oh, ow = h - kh + 1, w - kw + 1
    cols = cols.reshape(b, oh, ow, kh, kw, c)
    x = np.zeros(input_shape, dtype=cols.dtype)
    for dy in range(kh):
        for dx in range(kw):
            x[:, dy:dy + oh, dx:dx + ow, :] += cols[:, :, :, dy, dx, :]
    return x


@dataclass
class Conv2d:
    """2-D convolution, stride 1, "valid" padding; ``weight`` is [KH, KW, Cin, Cout]."""
    weight: np.ndarray
    bias: np.ndarray

    def __post_init__(self):
        self.weight = _float_array(self.weight, "conv2d weight")
        if self.weight.ndim != 4:
            raise ModelError(f"conv2d weight must be 4-D [KH, KW, Cin, Cout], "
                             f"not {self.weight.shape}")
        self.bias = _float_array(self.bias, "conv2d bias")
        if self.bias.shape != (self.weight.shape[3],):
            raise ModelError(f"conv2d bias must have shape ({self.weight.shape[3]},) to match "
                             f"weight {self.weight.shape}, not {self.bias.shape}")

    def output_shape(self, input_shape):
        kh, kw, cin, cout = self.weight.shape
        input_shape = tuple(input_shape)
        if len(input_shape) != 3 or input_shape[2] != cin:
            raise ModelError(f"conv2d {kh}x{kw} expects an HWC image with {cin} channels, "
                             f"gets shape {input_shape}")
        h, w = input_shape[0] - kh + 1, input_shape[1] - kw + 1
        if h < 1 or w < 1:
            raise ModelError(f"conv2d: a {kh}x{kw} kernel does not fit a "
                             f"{input_shape[0]}x{input_shape[1]} image")
        return (h, w, cout)

    def forward(self, x):
        kh, kw, _, cout = self.weight.shape
        return im2col(x, kh, kw) @ self.weight.reshape(-1, cout) + self.bias


@dataclass
class ReLU:
    """max(x, 0)."""

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x):
        return np.maximum(x, 0.0)


@dataclass
class ReLU6:
    """min(max(x, 0), 6)."""

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x):
        return np.clip(x, 0.0, 6.0)


@dataclass
class Flatten:
    """HWC image -> feature vector in (y, x, c) order."""

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, x):
        return x.reshape(x.shape[0], -1)


LAYER_TYPES = (Dense, Conv2d, ReLU, ReLU6, Flatten)


@dataclass
class Sequential:
    """Layers applied in order to inputs of ``input_shape`` (without the batch axis)."""
    input_shape: tuple
    layers: list = field(default_factory=list)

    def __post_init__(self):
        self.input_shape = tuple(int(d) for d in np.atleast_1d(self.input_shape))
        if not self.input_shape or min(self.input_shape) < 1:
            raise ModelError(f"input shape must be non-empty and positive, "
                             f"not {self.input_shape}")
        self.layers = list(self.layers)
        if not self.layers:
            raise ModelError("a model needs at least one layer")
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, LAYER_TYPES):
                raise ModelError(f"layer {i} is a {type(layer).__name__}; expected one of "
                                 f"{', '.join(t.__name__ for t in LAYER_TYPES)}")
        self.shapes()   # validates the chain

    def shapes(self):
        """Shape after each layer (without the batch axis)."""
        shape, out = self.input_shape, []
        for i, layer in enumerate(self.layers):
            try:
                shape = layer.output_shape(shape)
            except ModelError as exc:
                raise ModelError(f"layer {i}: {exc}") from None
            out.append(shape)
        return out

    @property
    def output_shape(self):
        return self.shapes()[-1]

    def check_input(self, x):
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != len(self.input_shape) + 1 or x.shape[1:] != self.input_shape:
            want = ", ".join(map(str, self.input_shape))
            raise ModelError(f"input must have shape [batch, {want}], not {list(x.shape)}")
        return x

    def forward(self, x, upto=None):
        """Float outputs for float inputs [batch, *input_shape]; with ``upto``, the output of
        the first ``upto`` layers."""
        x = self.check_input(x)
        for layer in self.layers[:upto]:
            x = layer.forward(x)
        return x

    def activations(self, x):
        """The output of every layer, in order."""
        x = self.check_input(x)
        out = []
        for layer in self.layers:
            x = layer.forward(x)
            out.append(x)
        return out

    def predict(self, x):
        """Class indices (argmax of the outputs)."""
        return np.argmax(self.forward(x), axis=-1)
