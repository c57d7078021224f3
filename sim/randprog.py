"""Random, valid programs with their data, for testing the core against the golden model.

Each case is a GEMM of random shape (not a multiple of R or C as a rule), split into K chunks
that accumulate, optionally on top of random accumulators, optionally followed by a
requantisation with random (and extreme) parameters and a random activation, with random
WAITs and explicit-or-overlapped weight loads.
"""

import numpy as np

from rtl import isa

from .arith import INT32_MAX, INT32_MIN, quantize_multiplier
from .model import CoreState
from .programs import (
    ceil_div,
    gemm_program,
    place_activations,
    place_qparams,
    place_weights,
    requant_program,
)

__all__ = ["random_case", "random_int8", "extreme_int32", "random_state"]

EXTREME_INT32 = np.array([INT32_MIN, INT32_MIN + 1, -1, 0, 1, 1 << 30, INT32_MAX], dtype=np.int64)


def random_int8(rng, shape, extreme_fraction=0.15):
    """int8 values with a good share of -128 and 127."""
    x = rng.integers(-128, 128, size=shape)
    pick = rng.random(shape) < extreme_fraction
    x[pick] = rng.choice([-128, 127], size=int(pick.sum()))
    return x.astype(np.int8)


def extreme_int32(rng, shape, fraction):
    x = rng.integers(INT32_MIN, INT32_MAX, size=shape, dtype=np.int64, endpoint=True)
    pick = rng.random(shape) < fraction
    x[pick] = rng.choice(EXTREME_INT32, size=int(pick.sum()))
    return x


def _max_dims(cfg):
    """Largest M, K, N whose GEMM and requantisation fit the configuration's SRAMs."""
    return dict(m=min(12, cfg.acc_depth // 3, isa.Field("m", 0, 12).mask),
                k_tiles=3, n_tiles=3)


def _fits(cfg, m, k, n):
    kt, nt = ceil_div(k, cfg.rows), ceil_div(n, cfg.cols)
    x_rows = kt * m
    y_rows = ceil_div(n, cfg.rows) * m
    # Worst case: a LOADW per tile, one VEC per lane group, SETQ and HALT.
    words = 2 * nt * kt + nt * cfg.groups + 2
    return (x_rows + y_rows <= cfg.act_depth and nt * kt * cfg.rows <= cfg.wgt_depth
            and nt * m <= cfg.acc_depth and nt <= cfg.qparam_depth
            and words <= cfg.prog_depth)


def random_case(cfg, rng, state=None):
    """A random valid case: returns (state, description). ``state`` (a CoreState) is modified:
    pass the core's current state to keep the unchanged parts (weights in the array)."""
    state = state.copy() if state is not None else CoreState(cfg)
    dims = _max_dims(cfg)
    for _ in range(100):
        m = int(rng.integers(1, dims["m"] + 1))
        k = int(rng.integers(1, dims["k_tiles"] * cfg.rows + 1))
        n = int(rng.integers(1, dims["n_tiles"] * cfg.cols + 1))
        if _fits(cfg, m, k, n):
            break
    else:
        raise ValueError(f"no GEMM fits {cfg}")
    nt = ceil_div(n, cfg.cols)

    x = random_int8(rng, (m, k))
    w = random_int8(rng, (k, n))
    x_rows = place_activations(cfg, x)
    w_rows = place_weights(cfg, w)
    y_chunks = ceil_div(n, cfg.rows)
    # Random, non-overlapping placements.
    x_base = int(rng.integers(0, cfg.act_depth - len(x_rows) - y_chunks * m + 1))
    y_base = x_base + len(x_rows) + int(rng.integers(
        0, cfg.act_depth - x_base - len(x_rows) - y_chunks * m + 1))
    w_base = int(rng.integers(0, cfg.wgt_depth - len(w_rows) + 1))
    acc_base = int(rng.integers(0, cfg.acc_depth - nt * m + 1))
    q_base = int(rng.integers(0, cfg.qparam_depth - nt + 1))
    state.act[x_base:x_base + len(x_rows)] = x_rows
    state.wgt[w_base:w_base + len(w_rows)] = w_rows

    accumulate_first = bool(rng.random() < 0.3)
    if accumulate_first:
        state.acc[acc_base:acc_base + nt * m] = rng.integers(
            -(1 << 20), 1 << 20, size=(nt * m, cfg.cols))
    preload = bool(rng.random() < 0.7)
    words = gemm_program(cfg, m, k, n, x_base=x_base, w_base=w_base, acc_base=acc_base,
                         preload=preload, accumulate_first=accumulate_first)

    requant = bool(rng.random() < 0.7)
    activation = None
    if requant:
        style = rng.choice(["realistic", "realistic", "extreme", "uniform"])
        if style == "extreme":
            bias = extreme_int32(rng, n, 0.3)
            mult = extreme_int32(rng, n, 0.4)
            shift = rng.choice([0, 1, 30, 31], size=n)
        elif style == "uniform":
            bias = rng.integers(-(1 << 16), 1 << 16, size=n)
            mult = rng.integers(1 << 30, INT32_MAX, size=n, endpoint=True)
            shift = rng.integers(0, 32, size=n)
        else:
            # Scales that map the actual accumulators onto roughly +-150, as a quantised
            # network's would: every rounding step then shows in the int8 result.
            acc = x.astype(np.int64) @ w.astype(np.int64)
            bias = rng.integers(-1000, 1000, size=n)
            peak = np.abs(acc + bias).max(axis=0) + 1
            pairs = [quantize_multiplier(min(0.999, 150.0 / p * rng.uniform(0.5, 1.5)))
                     for p in peak]
            mult = np.array([p[0] for p in pairs])
            shift = np.array([p[1] for p in pairs])
        b, mu, s = place_qparams(cfg, bias, mult, shift)
        state.bias[q_base:q_base + nt] = b
        state.mult[q_base:q_base + nt] = mu
        state.shift[q_base:q_base + nt] = s
        zero_point = int(rng.choice([-128, 127, int(rng.integers(-128, 128))]))
        activation = str(rng.choice(["none", "relu", "relu6", "clamp"]))
        if activation == "none":
            clamp = (-128, 127)
        elif activation == "relu":
            clamp = (zero_point, 127)
        elif activation == "relu6":
            clamp = (zero_point, min(127, zero_point + int(rng.integers(0, 100))))
        else:
            lo = int(rng.integers(-128, 128))
            clamp = (lo, int(rng.integers(lo, 128)))
        words += requant_program(cfg, m, n, acc_base=acc_base, y_base=y_base, q_base=q_base,
                                 zero_point=zero_point, clamp=clamp)

    # Random WAITs between instructions change timing but never results.
    program = []
    room = cfg.prog_depth - len(words) - 1
    for word in words:
        if room > 0 and rng.random() < 0.15:
            room -= 1
            program.append(isa.encode(isa.Op.WAIT, cycles=int(rng.integers(1, 40))))
        program.append(word)
    program.append(isa.encode(isa.Op.HALT))
    state.load_program(program)
    description = (f"GEMM M={m} K={k} N={n} preload={preload} accumulate={accumulate_first} "
                   f"requant={requant} activation={activation} {len(program)} instructions")
    return state, description


def random_state(cfg, rng):
    """Every SRAM image filled with random values (no program semantics): for host-port tests."""
    state = CoreState(cfg)
    state.prog[:] = rng.integers(0, 1 << 63, size=cfg.prog_depth, dtype=np.uint64)
    state.act[:] = random_int8(rng, state.act.shape)
    state.wgt[:] = random_int8(rng, state.wgt.shape)
    for name in ("acc", "bias", "mult"):
        getattr(state, name)[:] = rng.integers(INT32_MIN, INT32_MAX, endpoint=True,
                                               size=getattr(state, name).shape)
    state.shift[:] = rng.integers(0, 256, size=state.shift.shape)
    return state
