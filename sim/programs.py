"""Building blocks of programs: SRAM layouts of matrices and the instruction sequences of a GEMM
and of its requantisation. Used by the testbenches, the benchmarks and the compiler.

Layouts (R = rows, C = cols of the array):

* an activation matrix X[M, K] occupies ceil(K/R) *chunks* of M consecutive activation rows:
  ``act[base + kc*M + m, lane] = X[m, kc*R + lane]`` (zero beyond K);
* a weight matrix W[K, N] occupies one R-row tile per (n-tile, k-chunk), n-tiles outer:
  ``wgt[base + (nt*KT + kc)*R + r, lane] = W[kc*R + r, nt*C + lane]`` (zero beyond K and N);
* an int32 result Y[M, N] occupies one M-row block of accumulators per n-tile:
  ``acc[base + nt*M + m, lane] = Y[m, nt*C + lane]``;
* requantisation parameters for output channel nt*C + lane sit in qparam row ``base + nt``.
"""

import numpy as np

from rtl import isa

__all__ = [
    "ceil_div", "place_activations", "place_weights", "place_qparams", "gather_accumulators",
    "gather_activations", "gemm_program", "requant_program", "matmul_program",
]


def ceil_div(a, b):
    return -(-a // b)


def place_activations(cfg, x):
    """Activation SRAM rows (ceil(K/R)*M of them, R lanes) holding X[M, K]."""
    x = np.asarray(x, dtype=np.int8)
    m, k = x.shape
    kt = ceil_div(k, cfg.rows)
    padded = np.zeros((m, kt * cfg.rows), dtype=np.int8)
    padded[:, :k] = x
    return padded.reshape(m, kt, cfg.rows).transpose(1, 0, 2).reshape(kt * m, cfg.rows)


def gather_activations(cfg, act_rows, m, n):
    """Inverse of :func:`place_activations`: X[M, N] from ceil(N/R)*M activation rows."""
    kt = ceil_div(n, cfg.rows)
    rows = np.asarray(act_rows)[:kt * m].reshape(kt, m, cfg.rows)
    return rows.transpose(1, 0, 2).reshape(m, kt * cfg.rows)[:, :n]


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

    ``tiles`` is a list of ``(wgt_addr, rows)``: the weight tile at ``wgt_addr`` and the MATMULs
    that use it, each ``(act_addr, acc_addr, m, accumulate)``. The first MATMUL of a tile swaps
    the tile in and, with ``preload``, loads the next tile while it streams; without it, each
    next tile gets its own LOADW after the last MATMUL of the current one.
    """
    if not tiles:
        return []
    words = [isa.encode(isa.Op.LOADW, wgt_addr=tiles[0][0])]
    for i, (_, rows) in enumerate(tiles):
        has_next = i + 1 < len(tiles)
        for j, (act_addr, acc_addr, m, accumulate) in enumerate(rows):
            args = dict(act_addr=act_addr, acc_addr=acc_addr, m=m, swap=int(j == 0),
                        accumulate=int(accumulate))
            if preload and has_next and j == 0:
                args.update(preload=1, wgt_addr=tiles[i + 1][0])
            words.append(isa.encode(isa.Op.MATMUL, **args))
        if not preload and has_next:
            words.append(isa.encode(isa.Op.LOADW, wgt_addr=tiles[i + 1][0]))
    return words


def gemm_program(cfg, m, k, n, *, x_base=0, w_base=0, acc_base=0, preload=True,
                 accumulate_first=False):
    """Instructions for Y = X @ W (+ Y if ``accumulate_first``) with the layouts above.

    With ``preload`` each MATMUL loads the next weight tile while it streams (the tile after the
    last one is not loaded); without it, each tile gets its own LOADW.
    """
    kt, nt = ceil_div(k, cfg.rows), ceil_div(n, cfg.cols)
    tiles = []
    for t in range(nt):
        for c in range(kt):
            tiles.append((w_base + (t * kt + c) * cfg.rows,
                          [(x_base + c * m, acc_base + t * m, m, c > 0 or accumulate_first)]))
    return matmul_program(cfg, tiles, preload=preload)


def requant_program(cfg, m, n, *, acc_base=0, y_base=0, q_base=0, zero_point=0,
                    clamp=(-128, 127)):
    """Instructions that requantise a GEMM result (see :func:`gemm_program`) into the
    activation layout of an M x N int8 matrix at ``y_base``."""
    nt = ceil_div(n, cfg.cols)
    words = [isa.encode(isa.Op.SETQ, zero_point=zero_point, clamp_min=clamp[0],
                        clamp_max=clamp[1])]
    for t in range(nt):
        if cfg.cols >= cfg.rows:
            # One n-tile spans `groups` activation chunks; each VEC fills one of them.
            for g in range(cfg.groups):
                chunk = t * cfg.groups + g
                if chunk * cfg.rows >= n:
                    break
                words.append(isa.encode(isa.Op.VEC, acc_addr=acc_base + t * m,
                                        act_addr=y_base + chunk * m, m=m, q_addr=q_base + t,
                                        group=g))
        else:
            # `groups` n-tiles share one activation chunk, each in its own lanes.
            words.append(isa.encode(isa.Op.VEC, acc_addr=acc_base + t * m,
                                    act_addr=y_base + (t // cfg.groups) * m, m=m,
                                    q_addr=q_base + t, group=t % cfg.groups))
    return words
