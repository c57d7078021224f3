"""Dense and Conv2d on the array, as window GEMMs.

Every output position (a pixel of a convolution, a sample of a Dense) reads its inputs at fixed
byte offsets from an origin: ``dy * y_step + dx * x_step + c`` for a convolution's taps, ``k``
for a Dense, the image's pixels for a Dense after a Flatten. The offsets are covered by as few
R-byte windows as possible (greedy, from the lowest uncovered offset: optimal for points on a
line), and each window is one weight tile whose row r holds the weights of the input at offset
``start + r`` (zero where no input is). So kh x kw x Cin is folded into the array's K dimension
wherever the bytes of a receptive field lie close together: a 3 x 3 convolution of a
one-channel 8-pixel-wide image takes two windows, not nine.

A MATMUL streams the positions of a block along a pattern (a line of output pixels, then the
next line ``stride`` rows down) and accumulates window after window; the VECs requantise each
n-tile's accumulators into the output tensor's layout (its border included), C channels at
``channel`` bytes into each pixel.
"""

from dataclasses import dataclass

import numpy as np

from rtl import isa
from sim.programs import COUNT_MAX, ceil_div, matmul_program

from ..qmodel import Conv2d, Dense
from .errors import CompileError
from .lowering import lowers

__all__ = ["cover", "window_gemm", "Block"]


@dataclass
class Block:
    """``m`` positions from byte ``origin`` along (count, step, line), their results to
    ``out_origin`` along (out_count, out_step, out_line)."""
    origin: int
    count: int
    step: int
    line: int
    m: int
    out_origin: int
    out_count: int
    out_step: int
    out_line: int


def cover(taps, rows, align=1):
    """Windows of ``rows`` bytes covering the taps [(k, offset)]: a list of (start, [k or None
    for each of the window's rows])."""
    windows = []
    end = None
    for k, offset in sorted(taps, key=lambda t: t[1]):
        if end is None or offset >= end:
            start = offset - offset % align
            end = start + rows
            windows.append((start, [None] * rows))
        windows[-1][1][offset - windows[-1][0]] = k
    return windows


def window_gemm(ctx, layer, weight, taps, blocks, requant):
    """Emit ``layer``: the int8 weight [K, N], the taps [(k, byte offset)], the position blocks
    and the requantisation (one row per n-tile)."""
    cfg, b = ctx.cfg, ctx.builder
    k_total, n = weight.shape
    windows = cover(taps, cfg.rows, cfg.act_align)
    n_tiles = ceil_div(n, cfg.cols)
    blocks_w = []
    for t in range(n_tiles):
        cols = slice(t * cfg.cols, (t + 1) * cfg.cols)
        for _, ks in windows:
            block = np.zeros((cfg.rows, min(cfg.cols, n - t * cfg.cols)), dtype=np.int8)
            for r, k in enumerate(ks):
                if k is not None:
                    block[r] = weight[k, cols]
            blocks_w.append(block)
    first_tile = b.add_tiles(blocks_w)
    q_base = b.channel_rows(requant, cfg.cols)
    b.setq(requant.zero_point, requant.clamp)
    lanes = cfg.lanes
    groups = isa.vec_groups(cfg)
    for blk in blocks:
        if blk.m > cfg.acc_depth:
            raise CompileError(f"{ctx_name(layer)}: {blk.m} positions per block do not fit the "
                               f"accumulator SRAM's {cfg.acc_depth} rows")
        group = max(1, cfg.acc_depth // blk.m)
        for t0 in range(0, n_tiles, group):
            members = range(t0, min(n_tiles, t0 + group))
            p_in = b.pattern(blk.count, blk.step, blk.line)
            tiles = []
            for slot, t in enumerate(members):
                for j, (start, _) in enumerate(windows):
                    tiles.append((first_tile + t * len(windows) + j,
                                  [((blk.origin + start) % cfg.act_bytes, slot * blk.m, blk.m,
                                    j > 0, p_in)]))
            b.extend(matmul_program(cfg, tiles))
            for slot, t in enumerate(members):
                for g in range(groups):
                    first = t * cfg.cols + g * lanes
                    if first >= n:
                        break
                    p_out = b.pattern(blk.out_count, blk.out_step, blk.out_line,
                                      lanes=min(lanes, n - first))
                    b.emit(isa.Op.VEC, acc_addr=slot * blk.m,
                           act_addr=(blk.out_origin + first) % cfg.act_bytes, m=blk.m,
                           q_addr=q_base + t, group=g, pattern=p_out)


def ctx_name(layer):
    return layer.describe()


def _row_blocks(out_h, out_w, limit):
    """(first row, rows, first column, columns) blocks of an out_h x out_w output with at most
    ``limit`` positions each: whole rows where they fit."""
    if out_w <= limit:
        rows = max(1, limit // out_w)
        return [(y, min(rows, out_h - y), 0, out_w) for y in range(0, out_h, rows)]
    return [(y, 1, x, min(limit, out_w - x)) for y in range(out_h) for x in range(0, out_w, limit)]


@lowers(Conv2d)
def conv2d(ctx, layer):
    cfg = ctx.cfg
    src, out = ctx.layouts[layer.inputs[0]], ctx.layouts[layer.name]
    kh, kw, cin, cout = layer.weight.shape
    sy, sx = layer.stride
    pt, pl = layer.pads[0], layer.pads[1]
    oh, ow, _ = ctx.shape(layer.name)
    taps = [((dy * kw + dx) * cin + c, dy * src.y_step + dx * src.x_step + c)
            for dy in range(kh) for dx in range(kw) for c in range(cin)]
    limit = min(COUNT_MAX, cfg.acc_depth)
    blocks = []
    for b in range(ctx.batch):
        for y0, rows, x0, cols in _row_blocks(oh, ow, limit):
            blocks.append(Block(
                origin=src.pixel_addr(b, y0 * sy - pt, x0 * sx - pl), count=cols,
                step=sx * src.x_step, line=sy * src.y_step, m=rows * cols,
                out_origin=out.pixel_addr(b, y0, x0), out_count=cols, out_step=out.x_step,
                out_line=out.y_step))
    requant = layer.requant(ctx.q(layer.inputs[0]))
    window_gemm(ctx, layer, layer.weight.reshape(-1, cout), taps, blocks, requant)


@lowers(Dense)
def dense(ctx, layer):
    cfg = ctx.cfg
    src, out = ctx.layouts[layer.inputs[0]], ctx.layouts[layer.name]
    if src.image:    # a Dense after a Flatten: its K inputs are the image's pixels, HWC order
        h, w, c = src.shape
        taps = [((y * w + x) * c + ch, src.pixel_addr(0, y, x) - src.pixel_addr(0) + ch)
                for y in range(h) for x in range(w) for ch in range(c)]
    else:
        taps = [(k, k) for k in range(src.shape[0])]
    limit = min(COUNT_MAX, cfg.acc_depth)
    blocks = [Block(origin=src.pixel_addr(b0), count=COUNT_MAX, step=src.image_bytes, line=0,
                    m=min(limit, ctx.batch - b0), out_origin=out.pixel_addr(b0),
                    out_count=COUNT_MAX, out_step=out.image_bytes, out_line=0)
              for b0 in range(0, ctx.batch, limit)]
    requant = layer.requant(ctx.q(layer.inputs[0]))
    window_gemm(ctx, layer, layer.weight, taps, blocks, requant)
