"""The golden arithmetic (sim/arith.py) against independent pure-Python-int transcriptions.

The transcriptions follow gemmlowp's scalar fixed-point code (fixedpoint.h) statement by
statement, with every int32 operation wrapped as C does, so that a slip in sim/arith.py's numpy
formulation (floor instead of truncating division, a missed saturation, a sign error in the
rounding threshold) shows up here rather than as a wrong bit in every RTL test at once.
"""

import itertools
import math
import random
from fractions import Fraction

import numpy as np
import pytest

from sim import arith

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
SEED = 20261128

EDGES = sorted({INT32_MIN, INT32_MIN + 1, INT32_MIN + 2, -(1 << 30) - 1, -(1 << 30),
                -(1 << 30) + 1, -65536, -3, -2, -1, 0, 1, 2, 3, 65536, (1 << 30) - 1, 1 << 30,
                (1 << 30) + 1, INT32_MAX - 1, INT32_MAX})


def i32(x):
    """Wrap to int32, as a C cast of a wider value does on every machine gemmlowp runs on."""
    return ((x + (1 << 31)) & 0xFFFF_FFFF) - (1 << 31)


def c_div(n, d):
    """C's integer division: the quotient truncated toward zero."""
    q = abs(n) // abs(d)
    return q if (n >= 0) == (d > 0) else -q


def gemmlowp_srdhm(a, b):
    """SaturatingRoundingDoublingHighMul(std::int32_t a, std::int32_t b), transcribed."""
    overflow = a == b and a == INT32_MIN
    a_64 = a
    b_64 = b
    ab_64 = a_64 * b_64
    nudge = (1 << 30) if ab_64 >= 0 else (1 - (1 << 30))
    ab_x2_high32 = i32(c_div(ab_64 + nudge, 1 << 31))
    return INT32_MAX if overflow else ab_x2_high32


def gemmlowp_rdbp(x, exponent):
    """RoundingDivideByPOT(std::int32_t x, int exponent), transcribed with gemmlowp's masks:
    MaskIfLessThan gives all ones (-1) or 0, and BitAnd with 1 turns that into 1 or 0."""
    assert 0 <= exponent <= 31
    mask = i32((1 << exponent) - 1)
    zero = 0
    one = 1
    remainder = i32(x & mask)
    mask_if_negative = -1 if x < zero else 0
    threshold = i32((mask >> 1) + (mask_if_negative & one))
    mask_if_round_up = -1 if remainder > threshold else 0
    return i32((x >> exponent) + (mask_if_round_up & one))


def spec_srdhm(a, b):
    """What SRDHM means: 2ab / 2**32 rounded to nearest, ties toward +infinity (the negative
    nudge plus truncation amounts to that), saturated."""
    exact = Fraction(a * b, 1 << 31)
    return min(INT32_MAX, math.floor(exact + Fraction(1, 2)))


def spec_rdbp(x, exponent):
    """What RoundingDivideByPOT means: x / 2**exponent rounded to nearest, ties away from 0."""
    exact = Fraction(x, 1 << exponent)
    magnitude = math.floor(abs(exact) + Fraction(1, 2))
    return magnitude if x >= 0 else -magnitude


def random_words(rng, n):
    """int32 values: uniform, small, near powers of two and near the ends."""
    out = []
    for _ in range(n):
        kind = rng.randrange(4)
        if kind == 0:
            out.append(rng.randint(INT32_MIN, INT32_MAX))
        elif kind == 1:
            out.append(rng.randint(-1000, 1000))
        elif kind == 2:
            p = rng.randint(0, 30)
            out.append(max(INT32_MIN, min(INT32_MAX, rng.choice((1, -1)) * (1 << p)
                                          + rng.randint(-2, 2))))
        else:
            out.append(rng.choice(EDGES) + rng.choice((0, 0, 1, -1)) * rng.randint(0, 3))
    return [max(INT32_MIN, min(INT32_MAX, v)) for v in out]


# -- the transcriptions themselves, on cases worked out by hand ---------------------------------

def test_transcriptions_on_known_values():
    assert gemmlowp_srdhm(INT32_MIN, INT32_MIN) == INT32_MAX
    assert gemmlowp_srdhm(INT32_MAX, INT32_MAX) == INT32_MAX - 1
    assert gemmlowp_srdhm(1 << 30, 1 << 30) == 1 << 29
    assert gemmlowp_srdhm(-(1 << 30), 1) == 0            # -0.5 rounds toward +infinity
    assert gemmlowp_srdhm(3, 1 << 30) == 2               # 1.5 -> 2
    assert gemmlowp_srdhm(-3, 1 << 30) == -1             # -1.5 -> -1
    assert gemmlowp_srdhm(5, INT32_MIN) == -5
    assert gemmlowp_rdbp(5, 1) == 3 and gemmlowp_rdbp(-5, 1) == -3   # ties away from zero
    assert gemmlowp_rdbp(7, 2) == 2 and gemmlowp_rdbp(-7, 2) == -2
    assert gemmlowp_rdbp(-6, 2) == -2 and gemmlowp_rdbp(6, 2) == 2
    assert gemmlowp_rdbp(INT32_MIN, 31) == -1 and gemmlowp_rdbp(INT32_MAX, 31) == 1
    assert gemmlowp_rdbp(-(1 << 30), 31) == -1 and gemmlowp_rdbp(1 << 30, 31) == 1
    assert gemmlowp_rdbp(-(1 << 30) + 1, 31) == 0 and gemmlowp_rdbp((1 << 30) - 1, 31) == 0
    assert gemmlowp_rdbp(-123, 0) == -123


def test_transcriptions_agree_with_the_exact_definitions():
    rng = random.Random(SEED)
    words = EDGES + random_words(rng, 300)
    for a, b in itertools.product(words[:60], words[:60]):
        assert gemmlowp_srdhm(a, b) == spec_srdhm(a, b), (a, b)
    for a, b in zip(words, reversed(words), strict=True):
        assert gemmlowp_srdhm(a, b) == spec_srdhm(a, b), (a, b)
    for x in words:
        for e in range(32):
            assert gemmlowp_rdbp(x, e) == spec_rdbp(x, e), (x, e)


# -- sim/arith.py against them -------------------------------------------------------------------

def test_srdhm_edges():
    pairs = list(itertools.product(EDGES, EDGES))
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    got = arith.srdhm(a, b)
    want = [gemmlowp_srdhm(x, y) for x, y in pairs]
    bad = [(x, y, int(g), w) for (x, y), g, w in zip(pairs, got, want, strict=True) if g != w]
    assert not bad, f"srdhm differs from gemmlowp on (a, b, got, want): {bad[:10]}"


def test_srdhm_random():
    rng = random.Random(SEED + 1)
    a = random_words(rng, 20000)
    b = random_words(rng, 20000)
    got = arith.srdhm(np.array(a), np.array(b))
    for x, y, g in zip(a, b, got, strict=True):
        assert int(g) == gemmlowp_srdhm(x, y), f"seed {SEED + 1}: srdhm({x}, {y}) = {int(g)}"


def test_srdhm_as_the_rtl_computes_it():
    """rtl/vector.py computes SRDHM as floor((a*b + 2**30) / 2**31), INT32_MAX when both are
    INT32_MIN: the same."""
    rng = random.Random(SEED + 2)
    for a, b in itertools.chain(itertools.product(EDGES, EDGES),
                                zip(random_words(rng, 5000), random_words(rng, 5000), strict=True)):
        rtl = INT32_MAX if a == b == INT32_MIN else i32((a * b + (1 << 30)) >> 31)
        assert rtl == gemmlowp_srdhm(a, b), (a, b)


def test_rounding_divide_by_pot_as_the_rtl_computes_it():
    """rtl/vector.py computes RoundingDivideByPOT(x, s) as (x + c) >> s (in 33 bits) with
    c = 2**(s-1) - (x < 0) for s >= 1 and c = 0 for s = 0: the same."""
    rng = random.Random(SEED + 5)
    xs = EDGES + random_words(rng, 3000)
    for x in xs:
        for s in range(32):
            c = ((1 << s) >> 1) - (x < 0 and s != 0)
            assert -(1 << 32) <= x + c < 1 << 32
            assert (x + c) >> s == gemmlowp_rdbp(x, s), (x, s)


def test_rounding_divide_by_pot_edges_and_ties():
    xs = []
    for e in range(1, 32):
        half = 1 << (e - 1)
        for k in (1, -1, 3, -3, 5, -5):
            for d in (-1, 0, 1):
                xs.append(k * half + d)
    xs = [x for x in xs + EDGES if INT32_MIN <= x <= INT32_MAX]
    for e in range(32):
        got = arith.rounding_divide_by_pot(np.array(xs), e)
        for x, g in zip(xs, got, strict=True):
            assert int(g) == gemmlowp_rdbp(x, e), f"rounding_divide_by_pot({x}, {e}) = {int(g)}"


def test_rounding_divide_by_pot_random():
    rng = random.Random(SEED + 3)
    xs = random_words(rng, 20000)
    es = [rng.randint(0, 31) for _ in xs]
    got = arith.rounding_divide_by_pot(np.array(xs), np.array(es))
    for x, e, g in zip(xs, es, got, strict=True):
        assert int(g) == gemmlowp_rdbp(x, e), f"seed {SEED + 3}: rdbp({x}, {e}) = {int(g)}"


@pytest.mark.parametrize("shift", [-1, 32])
def test_rounding_divide_by_pot_rejects_bad_shifts(shift):
    with pytest.raises(ValueError, match="shift"):
        arith.rounding_divide_by_pot(np.array([1]), shift)


def reference_requantize(acc, bias, mult, shift, zero_point, clamp_min, clamp_max):
    x = i32(acc + bias)
    x = gemmlowp_srdhm(x, mult)
    x = gemmlowp_rdbp(x, shift)
    return max(clamp_min, min(clamp_max, x + zero_point))


def test_requantize_random_and_extreme():
    rng = random.Random(SEED + 4)
    extremes = (INT32_MIN, INT32_MIN + 1, -1, 0, 1, INT32_MAX, 1 << 30)
    lanes = [(a, b, m, s) for a, b, m in itertools.product(extremes, repeat=3)
             for s in (0, 1, 30, 31)]
    lanes += [(rng.randint(INT32_MIN, INT32_MAX), rng.randint(INT32_MIN, INT32_MAX),
               rng.choice((rng.randint(INT32_MIN, INT32_MAX), rng.randint(1 << 30, INT32_MAX))),
               rng.randint(0, 31)) for _ in range(3000)]
    columns = [np.array(c) for c in zip(*lanes, strict=True)]
    for zero_point in (-128, -5, 0, 127):
        for clamp in ((-128, 127), (0, 0), (5, 5), (zero_point, 127), (-20, 20)):
            got = arith.requantize(*columns, zero_point, *clamp)
            assert got.dtype == np.int8
            for lane, g in zip(lanes, got, strict=True):
                want = reference_requantize(*lane, zero_point, *clamp)
                assert int(g) == want, f"requantize{lane + (zero_point, *clamp)} = {int(g)}"


def test_wrap_i32():
    for x in (INT32_MAX + 1, INT32_MIN - 1, 2 * INT32_MIN, 2 * INT32_MAX, 0, -1, 12345):
        assert int(arith.wrap_i32(x)) == i32(x)
