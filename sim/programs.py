"""Building blocks of programs: SRAM layouts of matrices and the instruction sequences of a GEMM
and of its requantisation. Used by the testbenches, the benchmarks and the compiler.

Layouts (R = rows, C = cols of the array):

* an int8 matrix X[M, K] in activation SRAM is M rows of K bytes, row m at byte
  ``base + m * stride`` (``stride >= K``): a MATMUL reads k-chunk kc of every row as the R-byte
  window at ``base + m * stride + kc * R`` (bytes beyond K meet zero weights);
* a weight matrix W[K, N] occupies one R-row tile per (n-tile, k-chunk), n-tiles outer:
  tile ``t0 + nt * KT + kc`` holds ``W[kc*R + r, nt*C + lane]`` in its row r (zero beyond K and N);
* an int32 result Y[M, N] occupies one M-row block of accumulators per n-tile:
  ``acc[base + nt*M + m, lane] = Y[m, nt*C + lane]``;
* requantisation parameters for output channel nt*C + lane sit in qparam row ``base + nt``.
"""

import numpy as np

from rtl import isa

__all__ = [
    "ceil_div", "setp", "write_bytes", "read_bytes", "place_matrix", "gather_matrix",
    "place_weights", "place_qparams", "gather_accumulators", "gemm_program", "requant_program",
    "matmul_program", "COUNT_MAX",
]

#: The largest SETP count: a pattern of this count never starts a new line within one
#: instruction (m < 4096).
COUNT_MAX = (1 << isa.FIELDS[isa.Op.SETP][1].width) - 1


def ceil_div(a, b):
    return -(-a // b)


def setp(index, *, count=COUNT_MAX, step=0, line=0, lanes):
    """A SETP word: pattern ``index``, position i at ``base + (i // count) * line +
    (i % count) * step``, writes of ``lanes`` bytes."""
    return isa.encode(isa.Op.SETP, index=index, count=count, step=step, line=line, lanes=lanes)


def write_bytes(state, base, values):
    """Put int8 ``values`` (any shape, flattened) at byte ``base`` of the activation SRAM."""
    values = np.asarray(values, dtype=np.int8).reshape(-1)
    index = np.arange(base, base + len(values)) % state.cfg.act_bytes
    state.act_bytes[index] = values


def read_bytes(act, base, count):
    """``count`` int8 bytes from byte ``base`` of an activation SRAM image (rows x bytes)."""
    flat = np.asarray(act).reshape(-1)
    return np.take(flat, np.arange(base, base + count), mode="wrap").astype(np.int8)


def place_matrix(x, stride=None):
    """The bytes of X[M, K] as M rows of ``stride`` (default K) bytes, zero beyond K."""
    x = np.asarray(x, dtype=np.int8)
    m, k = x.shape
    stride = k if stride is None else stride
    out = np.zeros((m, stride), dtype=np.int8)
    out[:, :k] = x
    return out.reshape(-1)


def gather_matrix(act, base, m, n, stride=None):
    """Inverse of :func:`place_matrix`: X[M, N] from an activation SRAM image."""
    stride = n if stride is None else stride
    return read_bytes(act, base, m * stride).reshape(m, stride)[:, :n]


def place_weights(cfg, w):
    """Weight SRAM rows (ceil(N/C)*ceil(K/R)*R of them, C lanes) holding W[K, N]."""
    w = np.asarray(w, dtype=np.int8)
    k, n = w.shape
    kt, nt = ceil_div(k, cfg.rows), ceil_div(n, cfg.cols)
    padded = np.zeros((kt * cfg.rows, nt * cfg.cols), dtype=np.int8)
    padded[:k, :n] = w
    tiles = padded.reshape(kt, cfg.rows, nt, cfg.cols).transpose(2, 0, 1, 3)
    return tiles.reshape(nt * kt * cfg.rows, cfg.cols)


def place_qparams(cfg, bias, mult, shift):
    """(bias, mult, shift) qparam rows for N output channels: ceil(N/C) rows of C lanes."""
    n = len(bias)
    nt = ceil_div(n, cfg.cols)
    out = []
    for values, dtype in ((bias, np.int32), (mult, np.int32), (shift, np.uint8)):
        padded = np.zeros(nt * cfg.cols, dtype=dtype)
        padded[:n] = values
        out.append(padded.reshape(nt, cfg.cols))
    return tuple(out)


def gather_accumulators(cfg, acc_rows, m, n):
    """Y[M, N] (int32) from the accumulator rows of a GEMM's result."""
    nt = ceil_div(n, cfg.cols)
    rows = np.asarray(acc_rows)[:nt * m].reshape(nt, m, cfg.cols)
    return rows.transpose(1, 0, 2).reshape(m, nt * cfg.cols)[:, :n]


def matmul_program(cfg, tiles, *, preload=True):
    """Instructions that stream activations through a sequence of weight tiles.

    ``tiles`` is a list of ``(wgt_tile, rows)``: the weight tile and the MATMULs that use it,
    each ``(act_addr, acc_addr, m, accumulate, pattern)``. The first MATMUL of a tile swaps the
    tile in and, with ``preload``, loads the next tile while it streams; without it, each next
    tile gets its own LOADW after the last MATMUL of the current one.
    """
    if not tiles:
        return []
    words = [isa.encode(isa.Op.LOADW, wgt_tile=tiles[0][0])]
    for i, (_, rows) in enumerate(tiles):
        has_next = i + 1 < len(tiles)
        for j, (act_addr, acc_addr, m, accumulate, pattern) in enumerate(rows):
            args = dict(act_addr=act_addr, acc_addr=acc_addr, m=m, swap=int(j == 0),
                        accumulate=int(accumulate), pattern=pattern)
            if preload and has_next and j == 0:
                args.update(preload=1, wgt_tile=tiles[i + 1][0])
            words.append(isa.encode(isa.Op.MATMUL, **args))
        if not preload and has_next:
            words.append(isa.encode(isa.Op.LOADW, wgt_tile=tiles[i + 1][0]))
    return words


def gemm_program(cfg, m, k, n, *, x_base=0, x_stride=None, tile_base=0, acc_base=0,
                 preload=True, accumulate_first=False, pattern=0):
    """Instructions for Y = X @ W (+ Y if ``accumulate_first``) with the layouts above: a SETP
    of pattern ``pattern`` (one row every ``x_stride`` bytes), then the MATMULs.

    With ``preload`` each MATMUL loads the next weight tile while it streams (the tile after the
    last one is not loaded); without it, each tile gets its own LOADW.
    """
    x_stride = k if x_stride is None else x_stride
    kt, nt = ceil_div(k, cfg.rows), ceil_div(n, cfg.cols)
    tiles = []
    for t in range(nt):
        for c in range(kt):
            tiles.append((tile_base + t * kt + c,
                          [(x_base + c * cfg.rows, acc_base + t * m, m,
                            c > 0 or accumulate_first, pattern)]))
    return [setp(pattern, step=x_stride, lanes=cfg.rows)] + matmul_program(
        cfg, tiles, preload=preload)


def requant_program(cfg, m, n, *, acc_base=0, y_base=0, y_stride=None, q_base=0,
                    zero_point=0, clamp=(-128, 127), pattern=1):
    """Instructions that requantise a GEMM result (see :func:`gemm_program`) into the int8
    matrix Y[M, N] at ``y_base`` (rows of ``y_stride`` bytes): SETQ, then per n-tile (and lane
    group, when C > R) a SETP for the channels it writes and a VEC."""
    y_stride = n if y_stride is None else y_stride
    lanes = cfg.lanes
    words = [isa.encode(isa.Op.SETQ, zero_point=zero_point, clamp_min=clamp[0],
                        clamp_max=clamp[1])]
    last = None
    for t in range(ceil_div(n, cfg.cols)):
        for g in range(isa.vec_groups(cfg)):
            first = t * cfg.cols + g * lanes
            if first >= n:
                break
            width = min(lanes, n - first)
            if width != last:
                words.append(setp(pattern, step=y_stride, lanes=width))
                last = width
            words.append(isa.encode(isa.Op.VEC, acc_addr=acc_base + t * m,
                                    act_addr=y_base + first, m=m, q_addr=q_base + t, group=g,
                                    pattern=pattern))
    return words
