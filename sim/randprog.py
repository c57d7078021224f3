"""Random, valid programs with their data, for testing the core against the golden model.

Each case is a GEMM of random shape (not a multiple of R or C as a rule), split into K chunks
that accumulate, optionally on top of random accumulators, optionally followed by a
requantisation with random (and extreme) parameters and a random activation, with random
WAITs and explicit-or-overlapped weight loads. Its matrices sit in the byte-addressed
activation SRAM along random two-dimensional patterns (a line of positions, then a gap), at
random byte offsets, wrapping around the end of the SRAM; random FILLs write over the output
before or after the requantisation. On a core with the window unit, a case may instead be a
POOL (docs/isa.md) of a random kind, window, stride and line.
"""

import numpy as np

from rtl import isa

from .arith import INT32_MAX, INT32_MIN, quantize_multiplier
from .model import CoreState
from .programs import (
    ceil_div,
    matmul_program,
    place_qparams,
    place_weights,
    setp,
    write_bytes,
)

__all__ = ["random_case", "random_int8", "extreme_int32", "random_state", "RandomPattern"]

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


class RandomPattern:
    """A random 2-D placement of ``n`` positions of ``width`` bytes each (no two overlapping):
    ``count`` positions a line, ``step`` bytes apart, lines ``line`` bytes apart, every
    address a multiple of ``align``. ``span`` is the bytes from the first to past the last."""

    def __init__(self, rng, n, width, align=1):
        def up(v):
            return -(-v // align) * align
        self.count = int(rng.integers(1, n + 1)) if rng.random() < 0.6 else isa.FIELDS[
            isa.Op.SETP][1].mask
        self.step = up(width + int(rng.integers(0, 4)))
        lines = ceil_div(n, self.count)
        self.line = up(min(self.count, n) * self.step + int(rng.integers(0, 9)))
        self.span = (lines - 1) * self.line + min(self.count, n) * self.step
        self.n = n

    def word(self, index, lanes):
        return setp(index, count=self.count, step=self.step, line=self.line, lanes=lanes)

    def address(self, base, i, size):
        return (base + (i // self.count) * self.line + (i % self.count) * self.step) % size


def _max_dims(cfg):
    return dict(m=min(12, cfg.acc_depth // 3, isa.Field("m", 0, 12).mask), k_tiles=3, n_tiles=3)


def _fits(cfg, m, k, n):
    kt, nt = ceil_div(k, cfg.rows), ceil_div(n, cfg.cols)
    words = 2 * nt * kt + 2 * nt * isa.vec_groups(cfg) + 12
    return (nt * kt <= cfg.wgt_tiles and nt * m <= cfg.acc_depth and nt <= cfg.qparam_depth
            and words <= cfg.prog_depth)


def _requant_params(rng, x, w, n):
    style = rng.choice(["realistic", "realistic", "extreme", "uniform"])
    if style == "extreme":
        return extreme_int32(rng, n, 0.3), extreme_int32(rng, n, 0.4), \
            rng.choice([0, 1, 30, 31], size=n)
    if style == "uniform":
        return (rng.integers(-(1 << 16), 1 << 16, size=n),
                rng.integers(1 << 30, INT32_MAX, size=n, endpoint=True),
                rng.integers(0, 32, size=n))
    # Scales that map the actual accumulators onto roughly +-150, as a quantised network's
    # would: every rounding step then shows in the int8 result.
    acc = x.astype(np.int64) @ w.astype(np.int64)
    bias = rng.integers(-1000, 1000, size=n)
    peak = np.abs(acc + bias).max(axis=0) + 1
    pairs = [quantize_multiplier(min(0.999, 150.0 / p * rng.uniform(0.5, 1.5))) for p in peak]
    return bias, np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


def _clamp(rng, zero_point):
    activation = str(rng.choice(["none", "relu", "relu6", "clamp"]))
    if activation == "none":
        return activation, (-128, 127)
    if activation == "relu":
        return activation, (zero_point, 127)
    if activation == "relu6":
        return activation, (zero_point, min(127, zero_point + int(rng.integers(0, 100))))
    lo = int(rng.integers(-128, 128))
    return activation, (lo, int(rng.integers(lo, 128)))


def _gemm_case(cfg, rng, state):
    dims = _max_dims(cfg)
    size = cfg.act_bytes
    align = cfg.act_align
    for _ in range(500):
        m = int(rng.integers(1, dims["m"] + 1))
        k = int(rng.integers(1, dims["k_tiles"] * cfg.rows + 1))
        n = int(rng.integers(1, dims["n_tiles"] * cfg.cols + 1))
        kt, nt = ceil_div(k, cfg.rows), ceil_div(n, cfg.cols)
        # X's rows along a random pattern, each read as kt windows of R bytes; Y's after it.
        xp = RandomPattern(rng, m, kt * cfg.rows, align)
        yp = RandomPattern(rng, m, n)
        if _fits(cfg, m, k, n) and xp.span + yp.span + 8 + align <= size:
            break
    else:
        raise ValueError(f"no GEMM fits {cfg}")

    x = random_int8(rng, (m, k))
    w = random_int8(rng, (k, n))
    x_base = int(rng.integers(0, size // align)) * align
    y_base = (x_base + xp.span + int(rng.integers(0, 8))) % size
    for i in range(m):
        write_bytes(state, xp.address(x_base, i, size), x[i])
    w_rows = place_weights(cfg, w)
    tile0 = int(rng.integers(0, cfg.wgt_tiles - nt * kt + 1))
    state.wgt[tile0 * cfg.rows:tile0 * cfg.rows + len(w_rows)] = w_rows
    acc_base = int(rng.integers(0, cfg.acc_depth - nt * m + 1))
    q_base = int(rng.integers(0, cfg.qparam_depth - nt + 1))

    accumulate_first = bool(rng.random() < 0.3)
    if accumulate_first:
        state.acc[acc_base:acc_base + nt * m] = rng.integers(
            -(1 << 20), 1 << 20, size=(nt * m, cfg.cols))
    preload = bool(rng.random() < 0.7)
    read_index = int(rng.integers(0, cfg.patterns))
    tiles = []
    for t in range(nt):
        for c in range(kt):
            tiles.append((tile0 + t * kt + c,
                          [((x_base + c * cfg.rows) % size, acc_base + t * m, m,
                            c > 0 or accumulate_first, read_index)]))
    words = [xp.word(read_index, cfg.rows)] + matmul_program(cfg, tiles, preload=preload)

    requant = bool(rng.random() < 0.7)
    activation = None
    fills = 0
    if requant:
        bias, mult, shift = _requant_params(rng, x, w, n)
        b, mu, s = place_qparams(cfg, bias, mult, shift)
        state.bias[q_base:q_base + nt] = b
        state.mult[q_base:q_base + nt] = mu
        state.shift[q_base:q_base + nt] = s
        zero_point = int(rng.choice([-128, 127, int(rng.integers(-128, 128))]))
        activation, clamp = _clamp(rng, zero_point)
        write_index = int(rng.integers(0, cfg.patterns))
        words.append(isa.encode(isa.Op.SETQ, zero_point=zero_point, clamp_min=clamp[0],
                                clamp_max=clamp[1]))
        vecs = []
        for t in range(nt):
            for g in range(isa.vec_groups(cfg)):
                first = t * cfg.cols + g * cfg.lanes
                if first >= n:
                    break
                width = min(cfg.lanes, n - first)
                # Sometimes a SETP narrower than the row: fewer bytes written.
                lanes = int(rng.integers(1, width + 1)) if rng.random() < 0.2 else width
                vecs += [yp.word(write_index, lanes),
                         isa.encode(isa.Op.VEC, acc_addr=acc_base + t * m,
                                    act_addr=(y_base + first) % size, m=m, q_addr=q_base + t,
                                    group=g, pattern=write_index)]
        fill = _random_fill(cfg, rng, y_base, yp.span, write_index)
        if fill and rng.random() < 0.5:
            words += fill + vecs
        else:
            words += vecs + fill
        fills = len(fill) // 2
    return words, (f"GEMM M={m} K={k} N={n} x@{x_base}/{xp.count}x{xp.step}+{xp.line} "
                   f"y@{y_base} preload={preload} accumulate={accumulate_first} "
                   f"requant={requant} activation={activation} fills={fills}")


def _random_fill(cfg, rng, base, span, index):
    """Zero or one FILL over part of [base, base + span)."""
    if rng.random() < 0.5:
        return []
    lanes = int(rng.integers(1, cfg.rows + 1))
    count = int(rng.integers(1, 6))
    step = lanes + int(rng.integers(0, 4))
    m = int(rng.integers(1, 3 * count + 1))
    start = base + int(rng.integers(0, max(1, span)))
    return [setp(index, count=count, step=step, line=count * step + int(rng.integers(0, 5)),
                 lanes=lanes),
            isa.encode(isa.Op.FILL, act_addr=start % cfg.act_bytes, m=m,
                       value=int(rng.integers(-128, 128)), pattern=index)]


def _pool_case(cfg, rng, state):
    """A POOL of a random kind over random int8 data along random patterns."""
    W = isa.Window
    lanes, size = cfg.pool_lanes, cfg.act_bytes
    op = W(int(rng.choice(list(W))))
    kh, kw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    stride = int(rng.integers(0, 2))
    line = int(rng.integers(max(kw, 2 if kh > 1 else 1), min(cfg.pool_line, 9) + 1))
    for _ in range(100):
        if op == W.ADD:
            outputs = int(rng.integers(1, 16))
            m = 2 * outputs + int(rng.integers(0, 2))        # an odd last A has no B
            inputs = outputs + 1
        else:
            m = int(rng.integers(1, 4 * line + 1)) if op != W.SUM else int(rng.integers(1, 40))
            inputs = m
        ap = RandomPattern(rng, inputs, lanes, cfg.act_align)
        bp = RandomPattern(rng, inputs, lanes, cfg.act_align)
        op_pattern = RandomPattern(rng, max(1, inputs), lanes)
        if ap.span + bp.span + op_pattern.span + 4 * cfg.act_align + 16 <= size:
            break
    else:
        raise ValueError(f"no POOL fits {cfg}")
    a_base = int(rng.integers(0, size // cfg.act_align)) * cfg.act_align
    b_base = (a_base + ap.span + cfg.act_align * int(rng.integers(1, 4))) % size
    b_base -= b_base % cfg.act_align
    out_base = (b_base + bp.span + int(rng.integers(0, 8))) % size
    for i in range(inputs):
        write_bytes(state, ap.address(a_base, i, size), random_int8(rng, lanes))
        if op == W.ADD:
            write_bytes(state, bp.address(b_base, i, size), random_int8(rng, lanes))
    aux = b_base if op == W.ADD else 0
    if op == W.DW:
        aux = int(rng.integers(0, (cfg.wgt_depth - kh * kw) // cfg.rows + 1))
        state.wgt[aux * cfg.rows:aux * cfg.rows + kh * kw] = random_int8(
            rng, (kh * kw, cfg.cols))
    q = int(rng.integers(0, cfg.qparam_depth - 1))
    state.bias[q] = rng.integers(-3000, 3000, size=cfg.cols)
    state.mult[q] = rng.integers(1 << 30, INT32_MAX, size=cfg.cols, endpoint=True)
    state.shift[q] = rng.integers(0, 12, size=cfg.cols)
    if op == W.ADD:
        state.mult[q + 1, :2] = rng.integers(1 << 30, INT32_MAX, size=2, endpoint=True)
        state.shift[q + 1, :2] = rng.integers(0, 31, size=2)
    zero_point = int(rng.integers(-128, 128))
    _, clamp = _clamp(rng, zero_point)
    out_lanes = int(rng.integers(1, lanes + 1)) if rng.random() < 0.2 else lanes
    ia, ib, io = (int(v) for v in rng.permutation(cfg.patterns)[:3])
    words = [ap.word(ia, lanes), bp.word(ib, lanes), op_pattern.word(io, out_lanes),
        isa.encode(isa.Op.SETQ, zero_point=zero_point, clamp_min=clamp[0], clamp_max=clamp[1]),
        isa.encode(isa.Op.SETW, kind=op, kh=kh, kw=kw, stride=stride, line=line,
                   zp_a=int(rng.integers(-128, 128)), zp_b=int(rng.integers(-128, 128)),
                   aux=aux, aux_pattern=ib),
        isa.encode(isa.Op.POOL, act_addr=a_base, out_addr=out_base, m=m, q_addr=q,
                   pattern=ia, out_pattern=io),
    ]
    return words, (f"POOL {op.name} {kh}x{kw} stride {stride + 1} line {line} m={m} "
                   f"patterns {ia}/{ib}/{io}")


def random_case(cfg, rng, state=None):
    """A random valid case: returns (state, description). ``state`` (a CoreState) is modified:
    pass the core's current state to keep the unchanged parts (weights in the array)."""
    state = state.copy() if state is not None else CoreState(cfg)
    if cfg.pool and rng.random() < 0.4:
        words, description = _pool_case(cfg, rng, state)
    else:
        words, description = _gemm_case(cfg, rng, state)

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
    return state, f"{description}, {len(program)} instructions"


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
