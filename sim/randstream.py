"""Constrained-random instruction streams: any opcode in any order, with random fields that the
ISA's own check (``isa.check``) accepts, over random SRAM images. Unlike sim/randprog.py's
GEMM and POOL templates, these follow no recipe, so they reach the orders that a compiler never
writes: VEC before MATMUL, several SETQs, MATMULs without a swap, loads racing streams,
accumulate chains, POOLs of any kind after anything.

In ``mutated`` mode a legal stream gets one random word or one flipped bit, so that most end in
an error code; the golden model says which, and at which instruction, and that nothing after
it was written. :class:`Coverage` counts what the streams reached: consecutive opcode pairs,
the interlocks that held an instruction (``sim.model.INTERLOCKS``), other hazards, and error
codes.
"""

import collections

import numpy as np

from rtl import isa
from rtl.config import CoreConfig

from .model import INTERLOCKS, CoreState, run
from .randprog import INT32_MAX, random_int8

__all__ = ["random_stream", "random_images", "Coverage", "MAX_CYCLES", "FEATURES",
           "stream_cores"]

Op, W = isa.Op, isa.Window

#: Streams predicted to run longer are drawn again (a flipped WAIT bit can ask for 32,768
#: cycles): the point is many orders, not long runs.
MAX_CYCLES = 1500

#: Hazards besides the interlocks, each counted once per stream that has it.
FEATURES = (
    "MATMUL accumulating onto rows a MATMUL still writes",
    "MATMUL preloading while it streams, swapped in by the next MATMUL",
    "MATMUL without a swap after a load",
    "VEC on a lane group other than 0",
    "two SETQs in a row",
    "a window that wraps around the activation SRAM",
    "an accumulator range ending at the last row",
    "a program that fills the program SRAM",
)


def stream_cores(fast_timing):
    """The small cores the streams run on, so that every SRAM reads back in a few dozen host
    reads: one without the window unit and with lane groups (C = 2R), one with it, LUT lanes
    and ``fast_timing`` (the ULX3S core's pipeline options, from boards/catalog.py)."""
    return {
        "4x8v2": CoreConfig(rows=4, cols=8, vec_lanes=2, act_depth=16, wgt_depth=32,
                            acc_depth=16, qparam_depth=4, prog_depth=32),
        "4x4v2-fastpool": CoreConfig(rows=4, cols=4, vec_lanes=2, act_depth=16, wgt_depth=48,
                                     acc_depth=16, qparam_depth=4, prog_depth=32, pool=True,
                                     pool_line=8, vec_lut=True, **fast_timing),
    }


def _field_values(cfg, rng, op):
    """Random fields of ``op``, mostly small counts and in-range addresses, sometimes at the
    limits."""
    def pick(limit, edge=0.15):
        """A value in [0, limit), the last one with probability ``edge``."""
        return limit - 1 if rng.random() < edge else int(rng.integers(0, limit))

    act, acc = cfg.act_bytes, cfg.acc_depth
    m = int(rng.integers(1, 9)) if rng.random() < 0.8 else int(rng.integers(1, 2 * cfg.rows + 2))
    if op == Op.WAIT:
        return dict(cycles=int(rng.integers(1, 6)))
    if op == Op.LOADW:
        return dict(wgt_tile=pick(cfg.wgt_tiles))
    if op == Op.MATMUL:
        m = min(m, acc)
        preload = int(rng.random() < 0.3)
        return dict(act_addr=pick(act), acc_addr=pick(acc - m + 1), m=m,
                    swap=int(rng.random() < 0.6), accumulate=int(rng.random() < 0.4),
                    preload=preload, wgt_tile=pick(cfg.wgt_tiles) if preload else 0,
                    pattern=int(rng.integers(0, cfg.patterns)))
    if op == Op.VEC:
        m = min(m, acc)
        return dict(acc_addr=pick(acc - m + 1), act_addr=pick(act), m=m,
                    q_addr=pick(cfg.qparam_depth), group=pick(isa.vec_groups(cfg)),
                    pattern=int(rng.integers(0, cfg.patterns)))
    if op == Op.SETQ:
        low, high = sorted(int(v) for v in rng.integers(-128, 128, size=2))
        if rng.random() < 0.5:
            low, high = -128, 127
        return dict(zero_point=int(rng.integers(-128, 128)), clamp_min=low, clamp_max=high)
    if op == Op.SETP:
        return dict(index=int(rng.integers(0, cfg.patterns)), count=int(rng.integers(1, 6)),
                    step=pick(act), line=pick(act), lanes=int(rng.integers(1, cfg.rows + 1)))
    if op == Op.FILL:
        return dict(act_addr=pick(act), m=m, value=int(rng.integers(-128, 128)),
                    pattern=int(rng.integers(0, cfg.patterns)))
    if op == Op.POOL:
        return dict(act_addr=pick(act), out_addr=pick(act), m=m,
                    q_addr=pick(cfg.qparam_depth - 1), pattern=int(rng.integers(0, cfg.patterns)),
                    out_pattern=int(rng.integers(0, cfg.patterns)))
    if op == Op.SETW:
        kind = W(int(rng.integers(0, len(W))))
        kh, kw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        line = int(rng.integers(max(kw, 2 if kh > 1 else 1), cfg.pool_line + 1))
        if kind == W.DW:
            aux = pick((cfg.wgt_depth - kh * kw) // cfg.rows + 1)
        else:
            aux = pick(act)
        return dict(kind=kind, kh=kh, kw=kw, stride=int(rng.integers(0, 2)), line=line,
                    zp_a=int(rng.integers(-128, 128)), zp_b=int(rng.integers(-128, 128)),
                    aux=aux, aux_pattern=int(rng.integers(0, cfg.patterns)))
    raise ValueError(op)


def _legal_word(cfg, rng, op):
    for _ in range(100):
        word = isa.encode(op, **_field_values(cfg, rng, op))
        if isa.check(word, cfg) == isa.Error.NONE:
            return word
    raise RuntimeError(f"no legal {op.name} drawn for {cfg.name}")


def random_images(cfg, rng, base=None):
    """Random SRAM images: the activations always new, the rest new in one stream of five
    (fewer host writes on the bench), or all of it without a ``base``."""
    state = base.copy() if base is not None else CoreState(cfg)
    state.act[:] = random_int8(rng, state.act.shape)
    if base is not None and rng.random() < 0.8:
        return state
    state.wgt[:] = random_int8(rng, state.wgt.shape)
    state.acc[:] = rng.integers(-(1 << 24), 1 << 24, size=state.acc.shape)
    state.bias[:] = rng.integers(-3000, 3000, size=state.bias.shape)
    state.mult[:] = rng.integers(1 << 29, INT32_MAX, size=state.mult.shape, endpoint=True)
    state.shift[:] = rng.integers(0, 14, size=state.shift.shape)
    # ADD's input scales: the second parameter row of a POOL, lanes 0 and 1.
    state.shift[:, :2] = rng.integers(0, 31, size=(cfg.qparam_depth, min(2, cfg.cols)))
    return state


def _mutate(cfg, rng, words):
    """One random word in place of one of ``words``, or one bit of one flipped."""
    words = list(words)
    i = int(rng.integers(0, len(words)))
    if rng.random() < 0.3:
        words[i] = int(rng.integers(0, 1 << 63, dtype=np.uint64)) | (int(rng.integers(0, 2)) << 63)
        how = f"word {i} random"
    else:
        bit = int(rng.integers(0, isa.INSTR_BITS))
        words[i] ^= 1 << bit
        how = f"word {i} bit {bit} flipped"
    return words, how


def random_stream(cfg, rng, mutated=False, base=None):
    """(CoreState with its program loaded, description, golden RunResult with its trace): a
    random stream of legal instructions ending in HALT (sometimes exactly in the program
    SRAM's last word), or in ``mutated`` mode the same with one word broken. ``base``: a
    CoreState whose SRAMs the stream's may keep (what the core holds)."""
    ops = [op for op in isa.legal_ops(cfg) if op != Op.HALT]
    for _ in range(100):
        state = random_images(cfg, rng, base)
        full = rng.random() < 0.1
        length = cfg.prog_depth - 1 if full else int(rng.integers(1, min(24, cfg.prog_depth)))
        words = [_legal_word(cfg, rng, ops[int(rng.integers(0, len(ops)))])
                 for _ in range(length)]
        words.append(isa.encode(Op.HALT))
        how = "legal"
        if mutated:
            words, how = _mutate(cfg, rng, words)
        state.load_program(words)
        result = run(state.copy(), trace=True)
        if result.cycles <= MAX_CYCLES:
            return state, f"{len(words)} words, {how}", result
    raise RuntimeError("no stream short enough drawn in 100 tries")


class Coverage:
    """What a set of streams reached, from the golden model's traces."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.pairs = collections.Counter()
        self.interlocks = collections.Counter()
        self.features = collections.Counter()
        self.errors = collections.Counter()
        self.streams = 0

    def add(self, state, result):
        cfg = self.cfg
        self.streams += 1
        executed = [isa.decode(int(state.prog[pc])) for pc, _, _ in result.trace]
        if result.error != isa.Error.NONE:
            self.errors[result.error.name] += 1
        else:
            executed.append(isa.decode(int(state.prog[result.err_pc])))    # the HALT
        for a, b in zip(executed, executed[1:], strict=False):
            self.pairs[a.op.name, b.op.name] += 1
        for _, interlock, _ in result.waits:
            self.interlocks[interlock] += 1
        seen = set()
        for a, b in zip(executed, executed[1:], strict=False):
            if a.op == Op.SETQ and b.op == Op.SETQ:
                seen.add(FEATURES[4])
            if a.op == Op.MATMUL and a.args["preload"] and b.op == Op.MATMUL and b.args["swap"]:
                seen.add(FEATURES[1])
            if a.op == Op.LOADW and b.op == Op.MATMUL and not b.args["swap"]:
                seen.add(FEATURES[2])
            if (a.op == Op.MATMUL and b.op == Op.MATMUL and b.args["accumulate"]
                    and {*range(a.args["acc_addr"], a.args["acc_addr"] + a.args["m"])}
                    & {*range(b.args["acc_addr"], b.args["acc_addr"] + b.args["m"])}):
                seen.add(FEATURES[0])
        for instr in executed:
            args = instr.args
            if instr.op == Op.VEC and args["group"] > 0:
                seen.add(FEATURES[3])
            if instr.op in (Op.MATMUL, Op.VEC) and args["acc_addr"] + args["m"] == cfg.acc_depth:
                seen.add(FEATURES[6])
            if (instr.op in (Op.MATMUL, Op.POOL)
                    and args["act_addr"] + cfg.rows > cfg.act_bytes):
                seen.add(FEATURES[5])
        if result.err_pc == cfg.prog_depth - 1 and result.error == isa.Error.NONE:
            seen.add(FEATURES[7])
        self.features.update(seen)

    def merge(self, other):
        for name in ("pairs", "interlocks", "features", "errors"):
            getattr(self, name).update(getattr(other, name))
        self.streams += other.streams

    def missing(self):
        """What was not reached: opcode pairs, interlocks and features (error codes are the
        mutation mode's, listed by :meth:`table` but not required)."""
        ops = [op.name for op in isa.legal_ops(self.cfg) if op != Op.HALT]
        pairs = [(a, b) for a in ops for b in ops + ["HALT"] if (a, b) not in self.pairs]
        interlocks = [name for name in INTERLOCKS if name not in self.interlocks
                      and (self.cfg.pool or name != INTERLOCKS[3])]
        features = [name for name in FEATURES if name not in self.features
                     and (isa.vec_groups(self.cfg) > 1 or name != FEATURES[3])]
        return pairs, interlocks, features

    def table(self):
        ops = [op.name for op in isa.legal_ops(self.cfg) if op != Op.HALT]
        width = max(len(op) for op in ops) + 1
        lines = [f"coverage of {self.streams} streams on {self.cfg.name}",
                 "opcode pairs (row: first, column: next; count of executions):",
                 " " * width + "".join(f"{b:>{width}}" for b in ops + ["HALT"])]
        for a in ops:
            lines.append(f"{a:<{width}}" + "".join(f"{self.pairs[a, b]:>{width}}"
                                                   for b in ops + ["HALT"]))
        lines.append("interlocks that held an instruction:")
        lines += [f"  {self.interlocks[name]:>6}  {name}" for name in INTERLOCKS]
        lines.append("other hazards (streams):")
        lines += [f"  {self.features[name]:>6}  {name}" for name in FEATURES]
        if self.errors:
            lines.append("error codes (mutated streams):")
            lines += [f"  {count:>6}  {name}" for name, count in sorted(self.errors.items())]
        pairs, interlocks, features = self.missing()
        lines.append(f"not reached: {len(pairs)} pairs {pairs[:8]}, interlocks {interlocks}, "
                     f"hazards {features}" if pairs or interlocks or features
                     else "not reached: nothing")
        return "\n".join(lines)

    def to_dict(self):
        return dict(streams=self.streams,
                    pairs={f"{a}->{b}": n for (a, b), n in self.pairs.items()},
                    interlocks=dict(self.interlocks), features=dict(self.features),
                    errors=dict(self.errors))

    @classmethod
    def from_dict(cls, cfg, data):
        cov = cls(cfg)
        cov.streams = data["streams"]
        cov.pairs.update({tuple(k.split("->")): n for k, n in data["pairs"].items()})
        for name in ("interlocks", "features", "errors"):
            getattr(cov, name).update(data[name])
        return cov
