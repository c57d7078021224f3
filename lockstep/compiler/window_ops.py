"""The window unit's layers (POOL): depthwise convolution, average and max pooling, the
residual Add; and Flatten, which moves nothing.

A POOL works on ``lanes`` = ``cfg.pool_lanes`` channels of every pixel at once: a layer of C
channels is ceil(C / lanes) POOLs, each reading its channel group at ``g * lanes`` bytes into every
pixel and writing as many bytes of its result as the group has channels. Windowed POOLs stream
the rectangle of the (padded) input that their outputs cover, line by line; the unit's line
buffers hold the lines above. Each POOL needs two parameter rows: its channels' requantisation,
and one more (the Add's input scales; otherwise unused).
"""

import numpy as np

from rtl import isa
from sim.programs import COUNT_MAX, ceil_div

from ..qmodel import Add, AvgPool, DepthwiseConv2d, Flatten, MaxPool
from .errors import CompileError
from .lowering import lowers
from .plan import check_pool_unit, check_window

__all__ = []


def _param_rows(b, bias, mult, shift, lanes, groups, extra=None):
    """One parameter row per channel group (``lanes`` channels each), then one more (``extra``:
    (bias, mult, shift) lists for it, or zeros): the rows q and q + 1 that each POOL reads.
    Returns the first row."""
    rows_b = [bias[g * lanes:(g + 1) * lanes] for g in range(groups)]
    rows_m = [mult[g * lanes:(g + 1) * lanes] for g in range(groups)]
    rows_s = [shift[g * lanes:(g + 1) * lanes] for g in range(groups)]
    last = extra or ([0], [0], [0])
    return b.add_qrows(rows_b + [last[0]], rows_m + [last[1]], rows_s + [last[2]])


def _bands(out_h, in_lines_for, limit):
    """(first output row, rows) bands whose inputs take at most ``limit`` positions."""
    bands, y = [], 0
    while y < out_h:
        rows = 1
        while y + rows < out_h and in_lines_for(rows + 1) <= limit:
            rows += 1
        if in_lines_for(rows) > limit:
            return None
        bands.append((y, rows))
        y += rows
    return bands


def _windowed(ctx, layer, kind, kernel, stride, pads, weights, requant):
    """DW, AVG or MAX over a kh x kw window: ``weights`` [kh * kw, C] (DW) or None."""
    cfg, b = ctx.cfg, ctx.builder
    check_pool_unit(layer, cfg)
    check_window(layer, kernel, stride, cfg)
    kh, kw = kernel
    if stride[0] != stride[1]:
        raise CompileError(f"{layer.describe()}: the window unit takes one stride for both "
                           f"directions, not {stride[0]} x {stride[1]}")
    s = stride[0]
    src, out = ctx.layouts[layer.inputs[0]], ctx.layouts[layer.name]
    oh, ow, c = ctx.shape(layer.name)
    line = (ow - 1) * s + kw
    if line > cfg.pool_line:
        raise CompileError(f"{layer.describe()}: its lines of {line} pixels are longer than the "
                           f"window unit's line buffers ({cfg.pool_line} pixels)")
    lanes = cfg.pool_lanes
    groups = ceil_div(c, lanes)
    bands = _bands(oh, lambda rows: ((rows - 1) * s + kh) * line, COUNT_MAX)
    if bands is None:
        raise CompileError(f"{layer.describe()}: one output row needs {kh * line} inputs, more "
                           f"than a POOL streams ({COUNT_MAX})")
    tiles = []
    if weights is not None:
        per = ceil_div(kh * kw, cfg.rows)
        first = len(b.tiles)
        for g in range(groups):
            group = np.zeros((per * cfg.rows, cfg.cols), dtype=np.int8)
            part = weights[:, g * lanes:(g + 1) * lanes]
            group[:kh * kw, :part.shape[1]] = part
            b.add_tiles([group[i * cfg.rows:(i + 1) * cfg.rows] for i in range(per)])
            tiles.append(first + g * per)
    q_base = _param_rows(b, requant.bias, requant.mult, requant.shift, lanes, groups)
    b.setq(requant.zero_point, requant.clamp)
    zp = int(ctx.q(layer.inputs[0]).zero_point)
    pt, pl = pads[0], pads[1]
    for image in range(ctx.batch):
        for y0, rows in bands:
            m = ((rows - 1) * s + kh) * line
            origin = src.pixel_addr(image, y0 * s - pt, -pl)
            out_origin = out.pixel_addr(image, y0, 0)
            for g in range(groups):
                p_in = b.pattern(line, src.x_step, src.y_step, lanes=lanes)
                p_out = b.pattern(ow, out.x_step, out.y_step, lanes=min(lanes, c - g * lanes),
                                  keep=(p_in,))
                b.emit(isa.Op.SETW, kind=kind, kh=kh, kw=kw, stride=s - 1, line=line, zp_a=zp,
                       aux=tiles[g] if tiles else 0)
                b.emit(isa.Op.POOL, act_addr=(origin + g * lanes) % cfg.act_bytes,
                       out_addr=(out_origin + g * lanes) % cfg.act_bytes, m=m,
                       q_addr=q_base + g, pattern=p_in, out_pattern=p_out)


@lowers(DepthwiseConv2d)
def depthwise(ctx, layer):
    kh, kw, c = layer.weight.shape
    _windowed(ctx, layer, isa.Window.DW, (kh, kw), layer.stride, layer.pads,
              layer.weight.reshape(kh * kw, c), layer.requant(ctx.q(layer.inputs[0])))


@lowers(MaxPool)
def max_pool(ctx, layer):
    c = ctx.shape(layer.inputs[0])[2]
    _windowed(ctx, layer, isa.Window.MAX, layer.kernel, layer.stride, layer.pads, None,
              layer.requant(ctx.q(layer.inputs[0]), c))


@lowers(AvgPool)
def avg_pool(ctx, layer):
    cfg, b = ctx.cfg, ctx.builder
    shape = ctx.shape(layer.inputs[0])
    requant = layer.requant(ctx.q(layer.inputs[0]), shape)
    if layer.kernel is not None and tuple(layer.kernel) != tuple(shape[:2]):
        _windowed(ctx, layer, isa.Window.AVG, layer.kernel, layer.stride, (0, 0, 0, 0), None,
                  requant)
        return
    # Global: one SUM per image and channel group.
    check_pool_unit(layer, cfg)
    h, w, c = shape
    if h * w > COUNT_MAX:
        raise CompileError(f"{layer.describe()}: averages {h * w} pixels, more than a POOL "
                           f"streams ({COUNT_MAX})")
    src, out = ctx.layouts[layer.inputs[0]], ctx.layouts[layer.name]
    lanes = cfg.pool_lanes
    groups = ceil_div(c, lanes)
    q_base = _param_rows(b, requant.bias, requant.mult, requant.shift, lanes, groups)
    b.setq(requant.zero_point, requant.clamp)
    zp = int(ctx.q(layer.inputs[0]).zero_point)
    for image in range(ctx.batch):
        for g in range(groups):
            p_in = b.pattern(w, src.x_step, src.y_step, lanes=lanes)
            p_out = b.pattern(1, 0, 0, lanes=min(lanes, c - g * lanes), keep=(p_in,))
            b.emit(isa.Op.SETW, kind=isa.Window.SUM, kh=1, kw=1, line=1, zp_a=zp)
            b.emit(isa.Op.POOL, act_addr=(src.pixel_addr(image) + g * lanes) % cfg.act_bytes,
                   out_addr=(out.pixel_addr(image) + g * lanes) % cfg.act_bytes, m=h * w,
                   q_addr=q_base + g, pattern=p_in, out_pattern=p_out)


@lowers(Add)
def add(ctx, layer):
    cfg, b = ctx.cfg, ctx.builder
    check_pool_unit(layer, cfg)
    qa, qb = ctx.q(layer.inputs[0]), ctx.q(layer.inputs[1])
    requant = layer.requant(qa, qb)
    src_a, src_b = ctx.layouts[layer.inputs[0]], ctx.layouts[layer.inputs[1]]
    out = ctx.layouts[layer.name]
    shape = ctx.shape(layer.name)
    lanes = cfg.pool_lanes
    h, w, c = shape if len(shape) == 3 else (1, 1, shape[0])
    groups = ceil_div(c, lanes)
    # Two parameter rows serve every channel group: the output's multiplier and shift in every
    # lane (one scale for the tensor), then the inputs' in lanes 0 and 1.
    (m1, s1), (m2, s2) = requant.inputs
    q_row = b.add_qrows([[0] * lanes, [0, 0]], [[requant.mult[0]] * lanes, [m1, m2]],
                        [[requant.shift[0]] * lanes, [s1, s2]])
    bands = _bands(h, lambda rows: 2 * rows * w, COUNT_MAX)
    if bands is None:
        raise CompileError(f"{layer.describe()}: one row of {w} pixels needs {2 * w} inputs, "
                           f"more than a POOL streams ({COUNT_MAX})")
    b.setq(requant.zero_point, requant.clamp)
    for image in range(ctx.batch):
        for y0, rows in bands:
            for g in range(groups):
                if len(shape) == 3:
                    a0, b0 = src_a.pixel_addr(image, y0), src_b.pixel_addr(image, y0)
                    o0 = out.pixel_addr(image, y0)
                    specs = [(w, src_a.x_step, src_a.y_step), (w, src_b.x_step, src_b.y_step),
                             (w, out.x_step, out.y_step)]
                else:
                    a0, b0, o0 = (t.pixel_addr(image) for t in (src_a, src_b, out))
                    specs = [(1, 0, 0)] * 3
                p_a = b.pattern(*specs[0], lanes=lanes)
                p_b = b.pattern(*specs[1], lanes=lanes, keep=(p_a,))
                p_out = b.pattern(*specs[2], lanes=min(lanes, c - g * lanes), keep=(p_a, p_b))
                b.emit(isa.Op.SETW, kind=isa.Window.ADD, kh=1, kw=1, line=1,
                       zp_a=int(qa.zero_point), zp_b=int(qb.zero_point),
                       aux=(b0 + g * lanes) % cfg.act_bytes, aux_pattern=p_b)
                b.emit(isa.Op.POOL, act_addr=(a0 + g * lanes) % cfg.act_bytes,
                       out_addr=(o0 + g * lanes) % cfg.act_bytes, m=2 * rows * w,
                       q_addr=q_row, pattern=p_a, out_pattern=p_out)


@lowers(Flatten)
def flatten(ctx, layer):
    """A Flatten moves nothing: its output is its input's bytes (plan.py shares them)."""
