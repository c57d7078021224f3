"""The golden model of a whole core: executes a program as the core does, results and cycles.

:class:`CoreState` holds every SRAM and the array's weight registers as numpy arrays, in the
lane layout of the hardware. :func:`run` executes the program in ``state.prog`` from address 0
and returns a :class:`RunResult` with the exact cycle count the RTL reports, using only
rtl/isa.py for costs, checks and the interlock rule.
"""

from dataclasses import dataclass, field

import numpy as np

from rtl import isa
from rtl.config import CoreConfig

from .arith import gemm_i32, requantize

__all__ = ["CoreState", "RunResult", "run", "predict_cycles"]


@dataclass
class CoreState:
    """Everything a program can read or write. Arrays are indexed [row, lane]."""
    cfg: CoreConfig
    prog: np.ndarray = None
    act: np.ndarray = None
    wgt: np.ndarray = None
    acc: np.ndarray = None
    bias: np.ndarray = None
    mult: np.ndarray = None
    shift: np.ndarray = None
    shadow: np.ndarray = None
    active: np.ndarray = None

    def __post_init__(self):
        c = self.cfg
        defaults = {
            "prog": ((c.prog_depth,), np.uint64),
            "act": ((c.act_depth, c.rows), np.int8),
            "wgt": ((c.wgt_depth, c.cols), np.int8),
            "acc": ((c.acc_depth, c.cols), np.int32),
            "bias": ((c.qparam_depth, c.cols), np.int32),
            "mult": ((c.qparam_depth, c.cols), np.int32),
            "shift": ((c.qparam_depth, c.cols), np.uint8),
            "shadow": ((c.rows, c.cols), np.int8),
            "active": ((c.rows, c.cols), np.int8),
        }
        for name, (shape, dtype) in defaults.items():
            value = getattr(self, name)
            if value is None:
                value = np.zeros(shape, dtype=dtype)
            value = np.array(value, dtype=dtype)
            if value.shape != shape:
                raise ValueError(f"{name} must have shape {shape}, not {value.shape}")
            setattr(self, name, value)

    def load_program(self, words):
        words = list(words)
        if len(words) > self.cfg.prog_depth:
            raise ValueError(f"program of {len(words)} instructions does not fit in "
                             f"prog_depth {self.cfg.prog_depth}")
        self.prog[:] = 0
        self.prog[:len(words)] = np.array(words, dtype=np.uint64)

    def copy(self):
        return CoreState(self.cfg, **{n: getattr(self, n).copy() for n in
                                      ("prog", "act", "wgt", "acc", "bias", "mult", "shift",
                                       "shadow", "active")})


@dataclass
class RunResult:
    cycles: int
    mac_cycles: int
    instret: int
    error: isa.Error = isa.Error.NONE
    err_pc: int = 0
    trace: list = field(default_factory=list, repr=False)


def _execute(state, instr, setq):
    cfg, a = state.cfg, instr.args
    op = instr.op
    if op == isa.Op.LOADW:
        state.shadow[:] = state.wgt[a["wgt_addr"]:a["wgt_addr"] + cfg.rows]
    elif op == isa.Op.MATMUL:
        if a["swap"]:
            state.active[:] = state.shadow
        rows = slice(a["acc_addr"], a["acc_addr"] + a["m"])
        x = state.act[a["act_addr"]:a["act_addr"] + a["m"]]
        state.acc[rows] = gemm_i32(x, state.active, state.acc[rows] if a["accumulate"] else None)
        if a["preload"]:
            # The tile lands in the shadows after this MATMUL's swap has passed (rtl/loader.py).
            state.shadow[:] = state.wgt[a["wgt_addr"]:a["wgt_addr"] + cfg.rows]
    elif op == isa.Op.VEC:
        g, q, m = a["group"], a["q_addr"], a["m"]
        w = cfg.lanes
        ch = slice(g * w, (g + 1) * w) if cfg.cols >= cfg.rows else slice(0, cfg.cols)
        y = requantize(state.acc[a["acc_addr"]:a["acc_addr"] + m, ch],
                       state.bias[q, ch], state.mult[q, ch], state.shift[q, ch] & 0x1F,
                       *setq)
        dst = slice(a["act_addr"], a["act_addr"] + m)
        if cfg.cols >= cfg.rows:
            state.act[dst] = y
        else:
            state.act[dst, g * cfg.cols:(g + 1) * cfg.cols] = y
    elif op == isa.Op.SETQ:
        return (a["zero_point"], a["clamp_min"], a["clamp_max"])
    return setq


def run(state, max_instructions=1_000_000, trace=False):
    """Execute ``state.prog`` on ``state`` (mutated in place) and return a :class:`RunResult`.

    Timing (docs/isa.md): ``t`` is the first cycle in which the next instruction can start
    (it was fetched and decoded while the one before ran).
    """
    cfg = state.cfg
    t = isa.fetch_cycles(cfg)
    mm_settled = vec_settled = 0   # first cycle in which all earlier writes can be read
    mac_cycles = instret = 0
    setq = (0, -128, 127)
    steps = []
    pc = 0
    for _ in range(max_instructions):
        if pc == cfg.prog_depth:
            error = isa.Error.PC_OVERFLOW
        else:
            error = isa.check(int(state.prog[pc]), cfg)
        instr = isa.decode(int(state.prog[pc])) if not error else None
        if error or instr.op == isa.Op.HALT:
            end = max(t, mm_settled, vec_settled) + 1
            if not error:
                instret += 1
            return RunResult(end, mac_cycles, instret, error, pc, steps)
        start = t
        if instr.op == isa.Op.MATMUL:
            start = max(t, vec_settled)
            mm_settled = start + isa.matmul_settle(cfg, instr.m)
            mac_cycles += instr.m
        elif instr.op == isa.Op.VEC:
            start = max(t, mm_settled)
            vec_settled = start + isa.vec_settle(cfg, instr.m)
        if trace:
            steps.append((pc, start, str(instr)))
        setq = _execute(state, instr, setq)
        t = start + isa.cost(instr, cfg)
        instret += 1
        pc += 1
    raise RuntimeError(f"program did not stop within {max_instructions} instructions")


def predict_cycles(cfg, words):
    """Cycle count of a program (a list of instruction words) without its data: timing does not
    depend on data, so zeros do."""
    state = CoreState(cfg)
    state.load_program(words)
    return run(state).cycles
