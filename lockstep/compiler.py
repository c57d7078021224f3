"""The compiler: a :class:`~lockstep.qmodel.QModel` and a core configuration -> a program, the
SRAM images it needs, and its exact cycle count.

Lowering (docs/compiler.md):

* **Tensors in activation SRAM.** A feature vector [batch, F] is ceil(F/R) chunks of ``batch``
  rows (sim/programs.py). An image [batch, H, W, C] lives on a *canvas*: the network input's
  H0 x W0 grid, one row per pixel (``b*H0*W0 + y*W0 + x``), ceil(C/R) chunks. A valid
  convolution keeps the canvas and shrinks the valid top-left region, so its output pixel
  (y, x) stays at the same row as its input pixel (y, x).
* **Dense** is a tiled GEMM over the ``batch`` rows.
* **Conv2d** is lowered as a sum of shifted 1x1 convolutions: for kernel offset (dy, dx) the
  activation rows are read ``dy*W0 + dx`` rows further on, and every (dy, dx, k-chunk) tile
  accumulates into the same accumulators. No im2col copy is needed; rows beyond the valid
  region compute values that no valid output ever reads.
* **Flatten + Dense** after a convolution gathers, for every valid pixel and k-chunk, one
  row per image (MATMULs of one row), so only valid pixels are read.
* Every layer ends with VECs that requantise its accumulators into the next tensor. n-tiles
  are processed in groups that fit the accumulator SRAM; activation SRAM is two ping-pong
  regions reused by every layer; weights and requantisation rows are laid out one after the
  other.
* Each MATMUL that swaps a weight tile in also preloads the next one, so loads overlap compute.
"""

from dataclasses import dataclass, field

import numpy as np

from rtl import isa
from sim.model import CoreState, predict_cycles
from sim.programs import ceil_div, gather_activations, matmul_program, place_activations

from .qmodel import Conv2d, Dense, Flatten, ModelError

__all__ = ["compile_model", "CompiledModel", "CompileError", "MAX_ROWS_PER_INSTR"]

MAX_ROWS_PER_INSTR = (1 << isa.Field("m", 0, 12).width) - 1


class CompileError(ValueError):
    """The model does not fit the chosen core, or uses what the core cannot do. One line."""


@dataclass
class Tensor:
    """Where a tensor lives in activation SRAM."""
    base: int
    rows: int          # rows per chunk
    channels: int      # features (vector) or channels (image)
    image: tuple = None   # (h, w) valid region on the canvas, or None for a vector
    flattened: bool = False

    def chunks(self, cfg):
        return ceil_div(self.channels, cfg.rows)

    def size(self, cfg):
        return self.chunks(cfg) * self.rows


@dataclass
class CompiledModel:
    """A program and its data for one core, for inputs of ``batch`` samples."""
    cfg: object
    model: object
    batch: int
    state: CoreState
    input: Tensor
    output: Tensor
    canvas: tuple
    predicted_cycles: int
    layers: list = field(default_factory=list)   # one dict of figures per layer

    @property
    def instructions(self):
        return int(np.count_nonzero(self.state.prog)) + 1   # + HALT (the all-zero word)

    @property
    def macs(self):
        return sum(layer["macs"] for layer in self.layers)

    def with_input(self, x):
        """A copy of the SRAM images with the int8 input batch ``x`` placed."""
        x = np.asarray(x)
        expected = (self.batch, *self.model.input_shape)
        if x.dtype != np.int8 or x.shape != expected:
            raise ModelError(f"input must be int8 of shape {expected}, not {x.dtype} {x.shape}")
        state = self.state.copy()
        # An image goes on the canvas, one row per pixel; anything else one row per sample.
        rows = place_activations(self.cfg, x.reshape(-1, x.shape[-1]) if self.input.image
                                 else x.reshape(len(x), -1))
        state.act[self.input.base:self.input.base + len(rows)] = rows
        return state

    def read_output(self, act):
        """The int8 output batch from an activation SRAM image."""
        out = self.output
        values = gather_activations(self.cfg, act[out.base:], out.rows, out.channels)
        if out.image is None:
            return values.reshape(self.batch, out.channels)
        h0, w0 = self.canvas
        h, w = out.image
        index = [b * h0 * w0 + y * w0 + x for b in range(self.batch)
                 for y in range(h) for x in range(w)]
        return values[index].reshape(self.batch, h, w, out.channels)


def _segments(rows):
    """Split ``rows`` into pieces one instruction can stream."""
    return [(start, min(MAX_ROWS_PER_INSTR, rows - start))
            for start in range(0, rows, MAX_ROWS_PER_INSTR)]


def _bytes(rows, lanes, lane_bytes):
    return rows * lanes * lane_bytes


class _Builder:
    def __init__(self, cfg, model, batch):
        self.cfg, self.model, self.batch = cfg, model, batch
        self.state = CoreState(cfg)
        self.words = []
        self.wgt_rows = []       # weight SRAM rows, appended tile by tile
        self.q_rows = 0
        self.regions = [0, 0]    # ping-pong activation region sizes (rows)
        self.layers = []

    # -- resources ------------------------------------------------------------------------------

    def add_tile(self, block):
        """Place an R x C int8 weight tile (zero-padded from ``block``); returns its address."""
        cfg = self.cfg
        tile = np.zeros((cfg.rows, cfg.cols), dtype=np.int8)
        tile[:block.shape[0], :block.shape[1]] = block
        addr = len(self.wgt_rows) * cfg.rows
        self.wgt_rows.append(tile)
        return addr

    def add_qparams(self, layer, requant):
        cfg = self.cfg
        n = len(requant.bias)
        nt = ceil_div(n, cfg.cols)
        base = self.q_rows
        if base + nt > cfg.qparam_depth:
            raise CompileError(
                f"{layer.describe()}: requantisation SRAM needs {base + nt} rows "
                f"({_bytes(base + nt, cfg.cols, 9)} bytes), the core has {cfg.qparam_depth} rows "
                f"({_bytes(cfg.qparam_depth, cfg.cols, 9)} bytes)")
        for name in ("bias", "mult", "shift"):
            values = np.zeros(nt * cfg.cols, dtype=getattr(self.state, name).dtype)
            values[:n] = getattr(requant, name)
            getattr(self.state, name)[base:base + nt] = values.reshape(nt, cfg.cols)
        self.q_rows += nt
        return base

    # -- layers ---------------------------------------------------------------------------------

    def matmul_layer(self, layer, requant, steps, out_rows, n, out):
        """Emit a layer: for each n-tile, ``steps(nt)`` gives the (weight block, [(act_addr,
        acc_offset, m)]) list; then requantise into ``out``."""
        cfg = self.cfg
        nt_count = ceil_div(n, cfg.cols)
        if out_rows > cfg.acc_depth:
            raise CompileError(
                f"{layer.describe()}: accumulator SRAM needs {out_rows} rows "
                f"({_bytes(out_rows, cfg.cols, 4)} bytes) for one output tile, the core has "
                f"{cfg.acc_depth} rows ({_bytes(cfg.acc_depth, cfg.cols, 4)} bytes)")
        q_base = self.add_qparams(layer, requant)
        group = max(1, cfg.acc_depth // out_rows)
        self.words.append(isa.encode(isa.Op.SETQ, zero_point=requant.zero_point,
                                     clamp_min=requant.clamp[0], clamp_max=requant.clamp[1]))
        macs = 0
        for first in range(0, nt_count, group):
            tiles = []
            members = range(first, min(nt_count, first + group))
            for slot, t in enumerate(members):
                for i, (block, reads) in enumerate(steps(t)):
                    addr = self.add_tile(block)
                    rows = [(act_addr, slot * out_rows + acc_offset, m, i > 0)
                            for act_addr, acc_offset, m in reads]
                    tiles.append((addr, rows))
                    macs += sum(m for _, _, m in reads) * cfg.rows * cfg.cols
            self.words += matmul_program(cfg, tiles)
            for slot, t in enumerate(members):
                self.words += self.vec_tile(t, slot * out_rows, out, q_base + t, n)
        return macs

    def vec_tile(self, t, acc_base, out, q_addr, n):
        """VECs that requantise n-tile ``t`` (``out.rows`` accumulator rows) into ``out``."""
        cfg = self.cfg
        words = []
        for start, m in _segments(out.rows):
            if cfg.cols >= cfg.rows:
                for g in range(cfg.groups):
                    chunk = t * cfg.groups + g
                    if chunk * cfg.rows >= n:
                        break
                    words.append(isa.encode(isa.Op.VEC, acc_addr=acc_base + start,
                                            act_addr=out.base + chunk * out.rows + start, m=m,
                                            q_addr=q_addr, group=g))
            else:
                words.append(isa.encode(isa.Op.VEC, acc_addr=acc_base + start,
                                        act_addr=out.base + (t // cfg.groups) * out.rows + start,
                                        m=m, q_addr=q_addr, group=t % cfg.groups))
        return words

    def dense(self, layer, x, q, out_base):
        cfg = self.cfg
        k, n = layer.weight.shape
        requant = layer.requant(q)
        if x.flattened:
            return self.dense_after_flatten(layer, requant, x, out_base)
        out = Tensor(out_base, x.rows, n)

        def steps(t):
            cols = slice(t * cfg.cols, (t + 1) * cfg.cols)
            return [(layer.weight[c * cfg.rows:(c + 1) * cfg.rows, cols],
                     [(x.base + c * x.rows + start, start, m) for start, m in _segments(x.rows)])
                    for c in range(ceil_div(k, cfg.rows))]

        macs = self.matmul_layer(layer, requant, steps, x.rows, n, out)
        return out, macs

    def dense_after_flatten(self, layer, requant, x, out_base):
        cfg = self.cfg
        n = layer.weight.shape[1]
        h, w = x.image
        h0, w0 = self.canvas
        c = x.channels
        out = Tensor(out_base, self.batch, n)
        weight = layer.weight.reshape(h, w, c, n)

        def steps(t):
            cols = slice(t * cfg.cols, (t + 1) * cfg.cols)
            out_steps = []
            for y in range(h):
                for xx in range(w):
                    for kc in range(ceil_div(c, cfg.rows)):
                        block = weight[y, xx, kc * cfg.rows:(kc + 1) * cfg.rows, cols]
                        reads = [(x.base + kc * x.rows + b * h0 * w0 + y * w0 + xx, b, 1)
                                 for b in range(self.batch)]
                        out_steps.append((block, reads))
            return out_steps

        macs = self.matmul_layer(layer, requant, steps, self.batch, n, out)
        return out, macs

    def conv(self, layer, x, q, out_base):
        cfg = self.cfg
        kh, kw, cin, cout = layer.weight.shape
        h0, w0 = self.canvas
        shift = (kh - 1) * w0 + (kw - 1)
        rows = x.rows - shift
        h, w = x.image
        out = Tensor(out_base, rows, cout, image=(h - kh + 1, w - kw + 1))
        requant = layer.requant(q)

        def steps(t):
            cols = slice(t * cfg.cols, (t + 1) * cfg.cols)
            out_steps = []
            for dy in range(kh):
                for dx in range(kw):
                    for kc in range(ceil_div(cin, cfg.rows)):
                        block = layer.weight[dy, dx, kc * cfg.rows:(kc + 1) * cfg.rows, cols]
                        offset = dy * w0 + dx
                        reads = [(x.base + kc * x.rows + offset + start, start, m)
                                 for start, m in _segments(rows)]
                        out_steps.append((block, reads))
            return out_steps

        macs = self.matmul_layer(layer, requant, steps, rows, cout, out)
        return out, macs


def _build(model, cfg, batch, region1_base):
    """Emit the whole program with activation region 1 at ``region1_base``."""
    b = _Builder(cfg, model, batch)
    shape = model.input_shape
    if len(shape) == 3 and isinstance(model.layers[0], Flatten):
        # Flattening the input itself costs nothing: the host places it flat.
        b.canvas = None
        x = Tensor(0, batch, int(np.prod(shape)))
    elif len(shape) == 3:
        b.canvas = shape[:2]
        x = Tensor(0, batch * shape[0] * shape[1], shape[2], image=shape[:2])
    elif len(shape) == 1:
        b.canvas = None
        x = Tensor(0, batch, shape[0])
    else:
        raise CompileError(f"input shape {shape}: expected (features,) or (height, width, "
                           "channels)")
    b.input = x
    b.regions[0] = x.size(cfg)
    region = 0
    for layer, q in zip(model.layers, model.quant_params(), strict=False):
        info = {"name": layer.describe(), "macs": 0}
        start_words = len(b.words)
        if isinstance(layer, Flatten):
            if x.image is not None:
                x = Tensor(x.base, x.rows, x.channels, image=x.image, flattened=True)
            b.layers.append(dict(info, instructions=0))
            continue
        # Ping-pong: a layer's output never overlaps its input.
        region = 1 - region
        out_base = region1_base if region == 1 else 0
        if isinstance(layer, Dense):
            out, macs = b.dense(layer, x, q, out_base)
        elif isinstance(layer, Conv2d):
            out, macs = b.conv(layer, x, q, out_base)
        else:
            raise CompileError(f"unsupported layer {type(layer).__name__}")
        b.regions[region] = max(b.regions[region], out.size(cfg))
        info.update(macs=macs, instructions=len(b.words) - start_words)
        b.layers.append(info)
        x = out
    b.output = x
    return b


def compile_model(model, cfg, batch=1):
    """Lower ``model`` for a core of configuration ``cfg`` and inputs of ``batch`` samples.

    Raises :class:`CompileError` (one line: what does not fit where, needed vs available) or
    :class:`~lockstep.qmodel.ModelError`.
    """
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise CompileError(f"batch must be a positive integer, not {batch!r}")
    # Region sizes do not depend on where region 1 starts: measure them, then place.
    b = _build(model, cfg, batch, region1_base=0)
    b = _build(model, cfg, batch, region1_base=b.regions[0])

    needed = b.regions[0] + b.regions[1]
    if needed > cfg.act_depth:
        raise CompileError(
            f"activation SRAM needs {needed} rows ({_bytes(needed, cfg.rows, 1)} bytes) for "
            f"batch {batch}, the core has {cfg.act_depth} rows "
            f"({_bytes(cfg.act_depth, cfg.rows, 1)} bytes)")
    wgt_needed = len(b.wgt_rows) * cfg.rows
    if wgt_needed > cfg.wgt_depth:
        raise CompileError(
            f"weight SRAM needs {wgt_needed} rows ({_bytes(wgt_needed, cfg.cols, 1)} bytes), "
            f"the core has {cfg.wgt_depth} rows ({_bytes(cfg.wgt_depth, cfg.cols, 1)} bytes)")
    words = b.words + [isa.encode(isa.Op.HALT)]
    if len(words) > cfg.prog_depth:
        raise CompileError(f"program needs {len(words)} instructions ({8 * len(words)} bytes), "
                           f"the core has room for {cfg.prog_depth} ({8 * cfg.prog_depth} bytes)")
    if b.wgt_rows:
        b.state.wgt[:wgt_needed] = np.concatenate(b.wgt_rows)
    b.state.load_program(words)
    return CompiledModel(cfg=cfg, model=model, batch=batch, state=b.state, input=b.input,
                         output=b.output, canvas=b.canvas,
                         predicted_cycles=predict_cycles(cfg, words), layers=b.layers)
