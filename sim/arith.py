"""The core's arithmetic as pure numpy functions: the golden reference for the RTL.

Requantisation follows TFLite / gemmlowp to the bit:
``SaturatingRoundingDoublingHighMul`` (with C's division toward zero) then
``RoundingDivideByPOT``, then the output zero point and a clamp. Everything is computed in int64
so that no intermediate can overflow silently.
"""

import numpy as np

__all__ = [
    "gemm_i32", "wrap_i32", "srdhm", "rounding_divide_by_pot", "requantize",
    "clamp_for", "quantize_multiplier", "rescale_add_input", "ADD_LEFT_SHIFT",
    "INT32_MIN", "INT32_MAX",
]

#: TFLite's integer Add shifts each int8 input (its zero point removed) left by 20 bits before
#: rescaling it, so that the rescaled inputs keep 20 fractional bits.
ADD_LEFT_SHIFT = 20

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def wrap_i32(x):
    """Two's-complement wrap to int32, as a 32-bit adder does."""
    x = np.asarray(x, dtype=np.int64)
    return ((x + (1 << 31)) & 0xFFFF_FFFF) - (1 << 31)


def gemm_i32(x, w, acc=None):
    """int8 x int8 -> int32 matrix product, optionally added to ``acc``, wrapping at 32 bits."""
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    y = x @ w
    if acc is not None:
        y = y + np.asarray(acc, dtype=np.int64)
    return wrap_i32(y)


def srdhm(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul, elementwise, on int32 values (as int64)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    a, b = np.broadcast_arrays(a, b)
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    ab = a * b   # |ab| <= 2**62: fits in int64
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    num = ab + nudge
    # C's integer division truncates toward zero; numpy's // floors.
    q = np.where(num >= 0, num >> 31, -((-num) >> 31))
    return np.where(overflow, INT32_MAX, q)


def rounding_divide_by_pot(x, exponent):
    """gemmlowp RoundingDivideByPOT: x / 2**exponent rounded to nearest, ties away from zero."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    if np.any((exponent < 0) | (exponent > 31)):
        raise ValueError("shift must be in [0, 31]")
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def requantize(acc, bias, multiplier, shift, zero_point, clamp_min, clamp_max):
    """The vector unit's whole pipeline on int32 accumulators, per output channel.

    ``acc`` has output channels on its last axis; ``bias``, ``multiplier`` and ``shift``
    broadcast against it. Returns int8 values (as an int8 array).
    """
    x = wrap_i32(np.asarray(acc, dtype=np.int64) + np.asarray(bias, dtype=np.int64))
    x = srdhm(x, multiplier)
    x = rounding_divide_by_pot(x, shift)
    x = x + int(zero_point)
    return np.clip(x, int(clamp_min), int(clamp_max)).astype(np.int8)


def rescale_add_input(v, multiplier, shift):
    """One input of TFLite's integer Add (``tflite::reference_integer_ops::Add``): ``v`` is the
    int8 value minus its zero point; the result is
    ``RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(v << 20, multiplier), shift)``."""
    shifted = np.asarray(v, dtype=np.int64) << ADD_LEFT_SHIFT
    return rounding_divide_by_pot(srdhm(shifted, multiplier), shift)


def clamp_for(activation, zero_point, scale=None):
    """(clamp_min, clamp_max) for an activation function on an int8 output with ``zero_point``.

    ``activation`` is one of ``"none"``, ``"relu"``, ``"relu6"`` (needs the output ``scale``).
    """
    zero_point = int(zero_point)
    if activation == "none":
        return -128, 127
    if activation == "relu":
        return max(-128, zero_point), 127
    if activation == "relu6":
        if scale is None:
            raise ValueError("relu6 needs the output scale")
        six = zero_point + int(round(6.0 / scale))
        return max(-128, zero_point), min(127, six)
    raise ValueError(f"unknown activation {activation!r}; expected none, relu or relu6")


def quantize_multiplier(real_scale):
    """(multiplier, shift) with real_scale ~= multiplier * 2**-31 * 2**-shift, as TFLite's
    QuantizeMultiplier: multiplier in [2**30, 2**31), shift in [0, 31]. Scales of 1 or more
    (which would need a left shift) are refused; scales too small to represent give 0."""
    real_scale = float(real_scale)
    if not 0.0 <= real_scale < 1.0:
        raise ValueError(f"requantisation scale must be in [0, 1), not {real_scale}")
    if real_scale == 0.0:
        return 0, 0
    fraction, exponent = np.frexp(real_scale)      # real_scale = fraction * 2**exponent
    multiplier = int(round(fraction * (1 << 31)))
    if multiplier == 1 << 31:
        multiplier //= 2
        exponent += 1
    shift = -int(exponent)
    if shift > 31:
        multiplier >>= shift - 31
        shift = 31
    return multiplier, shift
