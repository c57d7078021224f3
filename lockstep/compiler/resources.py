"""The resources a program is built from, shared by every lowering: instruction words, weight
tiles, requantisation parameter rows, the pattern registers and SETQ's."""

from dataclasses import dataclass

import numpy as np

from rtl import isa
from rtl.config import QADDR_FIELD_BITS, WGT_TILE_BITS
from sim.programs import COUNT_MAX, ceil_div

from .errors import CompileError, bytes_text, fits_field

__all__ = ["Builder", "PatternSpec"]


@dataclass(frozen=True)
class PatternSpec:
    """A pattern register's value (SETP)."""
    count: int
    step: int
    line: int
    lanes: int


class Builder:
    """Collects a program: ``words`` (instructions), ``tiles`` (R x C int8 weight tiles),
    ``qrows`` (bias, mult, shift rows of C channels) and what each layer emitted."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.words = []
        self.tiles = []
        self.qrows = []
        self.patterns = [None] * cfg.patterns      # what each register holds (None: unknown)
        self.pattern_use = [0] * cfg.patterns
        self.setq_state = None
        self.layers = []

    # -- instructions ---------------------------------------------------------------------------

    def emit(self, op, **fields):
        for f in isa.FIELDS[op]:
            if f.name in fields:
                fits_field(self.layer_name, op, f, fields[f.name])
        self.words.append(isa.encode(op, **fields))

    def extend(self, words):
        self.words.extend(words)

    @property
    def layer_name(self):
        return self.layers[-1]["name"] if self.layers else "program"

    def begin_layer(self, name, macs=0):
        self.layers.append({"name": name, "macs": int(macs), "first": len(self.words),
                            "wgt_rows": len(self.tiles), "qparam_rows": len(self.qrows)})

    def end_layer(self):
        """Closes the layer: its instruction count, and the weight and parameter rows it
        added."""
        layer = self.layers[-1]
        layer["instructions"] = len(self.words) - layer["first"]
        layer["wgt_rows"] = (len(self.tiles) - layer["wgt_rows"]) * self.cfg.rows
        layer["qparam_rows"] = len(self.qrows) - layer["qparam_rows"]

    # -- registers ------------------------------------------------------------------------------

    def pattern(self, count=COUNT_MAX, step=0, line=0, lanes=None, keep=()):
        """A pattern register holding this pattern (SETP if none does), not one of ``keep``."""
        cfg = self.cfg
        lanes = cfg.rows if lanes is None else lanes
        count = min(count, COUNT_MAX)
        spec = PatternSpec(count, step % cfg.act_bytes, line % cfg.act_bytes, lanes)
        self._tick = getattr(self, "_tick", 0) + 1
        for index, held in enumerate(self.patterns):
            if held == spec:
                self.pattern_use[index] = self._tick
                return index
        free = [i for i in range(cfg.patterns) if i not in keep]
        index = min(free, key=lambda i: self.pattern_use[i])
        self.emit(isa.Op.SETP, index=index, count=spec.count, step=spec.step, line=spec.line,
                  lanes=spec.lanes)
        self.patterns[index] = spec
        self.pattern_use[index] = self._tick
        return index

    def setq(self, zero_point, clamp):
        state = (int(zero_point), int(clamp[0]), int(clamp[1]))
        if state != self.setq_state:
            self.emit(isa.Op.SETQ, zero_point=state[0], clamp_min=state[1], clamp_max=state[2])
            self.setq_state = state

    # -- weights and parameters -----------------------------------------------------------------

    def add_tiles(self, blocks):
        """Place R x C int8 weight tiles (each zero-padded from a block); returns the first's
        tile index (the others follow it)."""
        cfg = self.cfg
        first = len(self.tiles)
        for block in blocks:
            tile = np.zeros((cfg.rows, cfg.cols), dtype=np.int8)
            block = np.asarray(block)
            tile[:block.shape[0], :block.shape[1]] = block
            self.tiles.append(tile)
        self._addressable("weight SRAM", len(self.tiles), WGT_TILE_BITS, "tiles",
                          f"{cfg.wgt_tiles} tiles ({cfg.wgt_depth} rows, "
                          f"{bytes_text(cfg.wgt_depth * cfg.cols)})")
        return first

    def add_qrows(self, bias, mult, shift):
        """Place requantisation parameter rows (arrays [rows, <= C]); returns the first row."""
        cfg = self.cfg
        first = len(self.qrows)
        for b, m, s in zip(bias, mult, shift, strict=True):
            row = (np.zeros(cfg.cols, np.int32), np.zeros(cfg.cols, np.int32),
                   np.zeros(cfg.cols, np.uint8))
            row[0][:len(b)], row[1][:len(m)], row[2][:len(s)] = b, m, s
            self.qrows.append(row)
        self._addressable("requantisation SRAM", len(self.qrows), QADDR_FIELD_BITS, "rows",
                          f"{cfg.qparam_depth} rows "
                          f"({bytes_text(cfg.qparam_depth * cfg.cols * 9)})")
        return first

    def _addressable(self, memory, used, field_bits, unit, has):
        """Refuse ``used`` entries of ``memory`` beyond what a ``field_bits``-bit instruction
        field addresses, before an index overflows it (a smaller excess is refused with the
        total once the whole model is lowered)."""
        if used > 2 ** field_bits:
            raise CompileError(
                f"{memory} needs more than {2 ** field_bits} {unit} (the most an instruction "
                f"addresses) already by layer {self.layer_name!r} (layer {len(self.layers)}), "
                f"the core has {has}")

    def channel_rows(self, requant, width):
        """Rows of ``width`` channels each of a layer's per-channel parameters."""
        n = len(requant.bias)
        rows = ceil_div(n, width)
        out = []
        for name in ("bias", "mult", "shift"):
            values = getattr(requant, name)
            out.append([values[r * width:(r + 1) * width] for r in range(rows)])
        return self.add_qrows(*out)

    # -- writes of a constant -------------------------------------------------------------------

    def fill(self, addr, length, value):
        """FILL exactly the bytes [addr, addr + length) with ``value``."""
        cfg = self.cfg
        full, rest = divmod(length, cfg.rows)
        pos = addr
        while full:
            m = min(full, COUNT_MAX)
            index = self.pattern(step=cfg.rows, lanes=cfg.rows)
            self.emit(isa.Op.FILL, act_addr=pos % cfg.act_bytes, m=m, value=value,
                      pattern=index)
            pos += m * cfg.rows
            full -= m
        if rest:
            index = self.pattern(step=cfg.rows, lanes=rest)
            self.emit(isa.Op.FILL, act_addr=pos % cfg.act_bytes, m=1, value=value,
                      pattern=index)

    def fill_lines(self, addr, length, stride, count, value):
        """FILL exactly ``count`` ranges of ``length`` bytes, ``stride`` bytes apart: whole R-byte
        writes, then what is left of each range."""
        cfg = self.cfg
        full, rest = divmod(length, cfg.rows)
        parts = []
        if full:
            parts.append((0, full, cfg.rows, cfg.rows))
        if rest:
            parts.append((full * cfg.rows, 1, 0, rest))
        for offset, per, step, lanes in parts:
            done = 0
            while done < count:
                lines = min(count - done, COUNT_MAX // per)
                index = self.pattern(count=per, step=step, line=stride, lanes=lanes)
                self.emit(isa.Op.FILL, act_addr=(addr + offset + done * stride) % cfg.act_bytes,
                          m=lines * per, value=value, pattern=index)
                done += lines
