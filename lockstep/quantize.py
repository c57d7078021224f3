"""Post-training quantisation: a float :class:`~lockstep.nn.Sequential` to an int8
:class:`~lockstep.qmodel.QModel`.

* Activations (the model's input and every layer's output) are int8 asymmetric, per tensor:
  the range is the calibration data's min/max (optionally a percentile, optionally widened by a
  margin), always stretched to include 0 so that 0 is exactly representable; a layer with a
  fused ReLU/ReLU6 gets a range starting at 0 (zero point -128), using all 256 codes for the
  non-negative half.
* Weights are int8 symmetric, one scale per output channel: ``max|w| / 127``.
* Biases are int32 in units of ``input_scale * weight_scale[n]``.
* A ReLU or ReLU6 directly after a Dense/Conv2d becomes that layer's ``activation`` (a clamp
  in the vector unit); anywhere else it is refused, since the IR has no stand-alone activation.
* The vector unit requantises with a scale ``input_scale * weight_scale[n] / output_scale``
  that must be below 1; when a layer's calibrated output range is too narrow for that, the
  output scale is increased (the range widened) until it fits, instead of failing.
"""

import numpy as np

from . import nn
from .qmodel import Conv2d, Dense, Flatten, ModelError, QModel, QParams

__all__ = ["quantize", "activation_qparams", "REQUANT_LIMIT", "BIAS_RANGE"]

# Largest requantisation scale we produce. quantize_multiplier takes anything below 1, but a
# scale within 2**-32 of 1 rounds its multiplier up to 2**31 and would need a negative shift;
# staying a hair below 1 keeps every layer safely representable.
REQUANT_LIMIT = 1.0 - 2.0 ** -20

# Largest int32 bias we produce (in units of input_scale * weight_scale): far from int32's
# limits, so that folding in the input zero point (up to 128 * 127 * K) cannot overflow.
BIAS_RANGE = 2.0 ** 24


def activation_qparams(values, activation="none", percentile=None, margin=0.0):
    """int8 asymmetric :class:`QParams` for a tensor seen as ``values`` during calibration.

    The range is [min, max] of ``values`` (or the ``100 - percentile`` and ``percentile``
    percentiles), extended to include 0, then widened by ``margin`` times its span on each side
    that is not 0. With ``activation`` ``relu`` or ``relu6`` the range starts at 0 exactly
    (zero point -128); ``relu6`` also caps it at 6.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        raise ModelError("calibration data is empty")
    if percentile is None:
        lo, hi = float(values.min()), float(values.max())
    else:
        lo, hi = (float(v) for v in np.percentile(values, [100.0 - percentile, percentile]))
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if activation in ("relu", "relu6"):
        lo = 0.0
    if activation == "relu6":
        hi = min(hi, 6.0)
    span = hi - lo
    lo, hi = lo - margin * span * (lo < 0), hi + margin * span * (hi > 0)
    if hi - lo <= 0:
        # A tensor that was 0 throughout calibration: any scale represents it; take [0, 1].
        return QParams(1.0 / 255.0, -128)
    scale = (hi - lo) / 255.0
    zero_point = int(np.clip(np.round(-128.0 - lo / scale), -128, 127))
    return QParams(scale, zero_point)


def _fuse(model):
    """Group the float layers: [(layer, activation, index of the last float layer)]."""
    groups, i, layers = [], 0, model.layers
    while i < len(layers):
        layer = layers[i]
        if isinstance(layer, (nn.Dense, nn.Conv2d)):
            activation = "none"
            if i + 1 < len(layers) and isinstance(layers[i + 1], (nn.ReLU, nn.ReLU6)):
                activation = "relu" if isinstance(layers[i + 1], nn.ReLU) else "relu6"
                i += 1
            groups.append((layer, activation, i))
        elif isinstance(layer, nn.Flatten):
            groups.append((layer, None, i))
        elif isinstance(layer, (nn.ReLU, nn.ReLU6)):
            after = "the input" if i == 0 else f"a {type(layers[i - 1]).__name__}"
            raise ModelError(
                f"layer {i}: {type(layer).__name__} after {after} cannot be quantised; the int8 "
                "model only has activations fused into the Dense or Conv2d directly before them")
        else:
            raise ModelError(f"layer {i}: cannot quantise a {type(layer).__name__}")
        i += 1
    return groups


def _weight_scales(layer, input_scale, fallback):
    """Symmetric per-output-channel weight scales: ``max|w| / 127``, but never so small that
    the bias would need more than ``BIAS_RANGE`` steps of ``input_scale * weight_scale``.

    The floor matters for "dead" channels (a ReLU that never fires, whose weights weight decay
    has driven to ~1e-12 while a small bias remains): their weights round to 0, which they
    practically are, and the bias keeps its value. A channel with no weights and no bias gets
    ``fallback``."""
    weight = layer.weight.reshape(-1, layer.weight.shape[-1])
    scale = np.maximum(np.abs(weight).max(axis=0) / 127.0,
                       np.abs(layer.bias) / (input_scale * BIAS_RANGE))
    scale[scale == 0] = scale.max() if scale.max() > 0 else fallback
    return scale


def quantize(model, calibration_x, name="model", percentile=None, margin=0.0):
    """Quantise ``model`` (a :class:`~lockstep.nn.Sequential`) to a :class:`QModel`, with
    activation ranges from running ``calibration_x`` (float, [batch, *input_shape]) through
    it. ``percentile`` (e.g. 99.99) clips outliers from the activation ranges, ``margin``
    widens them by a fraction of their span; the defaults use the plain min/max.
    """
    if not isinstance(model, nn.Sequential):
        raise ModelError(f"quantize takes a lockstep.nn.Sequential, not a {type(model).__name__}")
    x = np.asarray(calibration_x, dtype=np.float64)
    if x.size == 0 or x.ndim == 0 or len(x) == 0:
        raise ModelError("calibration data is empty; quantisation needs at least one input")
    x = model.check_input(x)
    if not np.all(np.isfinite(x)):
        raise ModelError("calibration data must be finite")
    groups = _fuse(model)
    outputs = model.activations(x)

    input_q = activation_qparams(x, "none", percentile, margin)
    q, layers, counts = input_q, [], {}
    for layer, activation, last in groups:
        kind = {nn.Dense: "dense", nn.Conv2d: "conv", nn.Flatten: "flatten"}[type(layer)]
        layer_name = f"{kind}{counts.get(kind, 0)}"
        counts[kind] = counts.get(kind, 0) + 1
        if isinstance(layer, nn.Flatten):
            layers.append(Flatten(name=layer_name))
            continue
        out_q = activation_qparams(outputs[last], activation, percentile, margin)
        # (a layer whose weights and biases are all 0: half an output step per input step)
        w_scale = _weight_scales(layer, q.scale, 0.5 * out_q.scale / q.scale)
        worst = q.scale * w_scale.max() / out_q.scale
        if worst >= REQUANT_LIMIT:
            # The calibrated output range is narrower than one input step times one weight
            # step, which would need a requantisation scale >= 1 (the vector unit only
            # scales down). Widen the output range, keeping its zero point, just enough.
            out_q = QParams(q.scale * w_scale.max() / REQUANT_LIMIT, out_q.zero_point)
        w_int = np.clip(np.round(layer.weight / w_scale), -127, 127).astype(np.int8)
        bias = np.round(layer.bias / (q.scale * w_scale))   # |bias| <= BIAS_RANGE
        cls = Dense if isinstance(layer, nn.Dense) else Conv2d
        qlayer = cls(w_int, bias.astype(np.int64), w_scale, out_q, activation, name=layer_name)
        qlayer.requant(q)   # refuses what the vector unit cannot do (e.g. int32 overflow)
        layers.append(qlayer)
        q = out_q
    return QModel(model.input_shape, input_q, layers, name=name)
