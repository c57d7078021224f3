"""The golden model of a whole core: executes a program as the core does, results and cycles.

:class:`CoreState` holds every SRAM and the array's weight registers as numpy arrays, in the
lane layout of the hardware. :func:`run` executes the program in ``state.prog`` from address 0
and returns a :class:`RunResult` with the exact cycle count the RTL reports, using only
rtl/isa.py for costs, checks and the interlock rules.
"""

from dataclasses import dataclass, field

import numpy as np

from rtl import isa
from rtl.config import CoreConfig

from .arith import gemm_i32, requantize, rescale_add_input

__all__ = ["CoreState", "RunResult", "run", "predict_cycles", "Registers", "Access", "access_of",
           "INTERLOCKS"]


@dataclass
class CoreState:
    """Everything a program can read or write. Arrays are indexed [row, lane]; ``act`` rows are
    ``cfg.act_row_bytes`` bytes, addressed by programs as one byte array (:attr:`act_bytes`)."""
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
            "act": ((c.act_depth, c.act_row_bytes), np.int8),
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

    #: The :class:`Access` tracker of the run in progress (``run(..., access=...)``), if any.
    access = None

    @property
    def act_bytes(self):
        """The activation SRAM as one byte array (a view: writes go to ``act``)."""
        return self.act.reshape(-1)

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
    #: With ``trace``: (pc, interlock, cycles) for every instruction that an interlock held,
    #: the interlock being one of :data:`INTERLOCKS`, the one that held it longest.
    waits: list = field(default_factory=list, repr=False)


#: The interlocks (docs/isa.md, section 4), as :attr:`RunResult.waits` names them.
INTERLOCKS = ("activation read after write", "activation write order",
              "accumulator read after write", "weight port")


class Access:
    """What a run's results depend on and what it changes: the program words it executes, the
    weight and parameter rows it reads, the activation bytes and accumulator rows it reads
    before it writes them (the rest of the SRAMs may hold anything at START), and those it
    writes. Addresses never depend on data, so this is a property of the program:
    ``run(state, access=Access(cfg))`` fills it in. Conservative: a MATMUL or POOL window
    counts all R bytes it reads, a MATMUL with ``accumulate`` the rows it adds to, a load the
    tile's R rows."""
    UNTOUCHED, READ_FIRST, WRITTEN_FIRST = 0, 1, 2

    def __init__(self, cfg):
        self.cfg = cfg
        self.act_first = np.zeros(cfg.act_bytes, dtype=np.uint8)
        self.act_written = np.zeros(cfg.act_bytes, dtype=bool)
        self.acc_first = np.zeros(cfg.acc_depth, dtype=np.uint8)
        self.acc_written = np.zeros(cfg.acc_depth, dtype=bool)
        self.prog_read = np.zeros(cfg.prog_depth, dtype=bool)
        self.wgt_read = np.zeros(cfg.wgt_depth, dtype=bool)
        self.qparam_read = np.zeros(cfg.qparam_depth, dtype=bool)

    def read_rows(self, name, rows):
        """The run reads ``rows`` (a slice) of the program, weight or parameter SRAM."""
        getattr(self, f"{name}_read")[rows] = True

    def rows_read(self, name):
        """The rows of SRAM ``name`` (see rtl.hostmap.SRAM_FIELDS) that the run's results
        depend on: for prog, wgt and qparam those it reads, for act and acc those it reads
        before writing them."""
        if name == "act":
            return self.act_rows_read_first
        if name == "acc":
            return self.acc_rows_read_first
        return np.flatnonzero(getattr(self, f"{name}_read"))

    @classmethod
    def _read(cls, first, index):
        first[index[first[index] == cls.UNTOUCHED]] = cls.READ_FIRST

    @classmethod
    def _write(cls, first, written, index):
        first[index[first[index] == cls.UNTOUCHED]] = cls.WRITTEN_FIRST
        written[index] = True

    def read_act(self, index):
        self._read(self.act_first, np.asarray(index))

    def write_act(self, index):
        self._write(self.act_first, self.act_written, np.asarray(index))

    def read_acc(self, rows):
        self._read(self.acc_first, np.arange(rows.start, rows.stop))

    def write_acc(self, rows):
        self._write(self.acc_first, self.acc_written, np.arange(rows.start, rows.stop))

    def _rows(self, byte_mask):
        return np.unique(np.flatnonzero(byte_mask) // self.cfg.act_row_bytes)

    @property
    def act_rows_read_first(self):
        """Activation SRAM rows (host rows) with a byte the run reads before writing it."""
        return self._rows(self.act_first == self.READ_FIRST)

    @property
    def act_rows_written(self):
        return self._rows(self.act_written)

    @property
    def acc_rows_read_first(self):
        return np.flatnonzero(self.acc_first == self.READ_FIRST)

    @property
    def acc_rows_written(self):
        return np.flatnonzero(self.acc_written)


def access_of(state):
    """The :class:`Access` of ``state``'s program (run on a copy; ``state`` is unchanged)."""
    access = Access(state.cfg)
    run(state.copy(), access=access)
    return access


class Registers:
    """The registers a program sets (SETQ, SETP, SETW), as START leaves them."""

    def __init__(self, cfg):
        self.setq = (0, -128, 127)
        self.patterns = [isa.Pattern.default(cfg)] * cfg.patterns
        self.window = dict(kind=isa.Window.DW, kh=1, kw=1, stride=0, line=1, zp_a=0, zp_b=0,
                           aux=0, aux_pattern=0)


def _window(state, addr):
    """The R bytes of the window at byte ``addr`` (rounded down to ``cfg.act_align``)."""
    cfg = state.cfg
    addr -= addr % cfg.act_align
    index = np.arange(addr, addr + cfg.rows) % cfg.act_bytes
    if state.access is not None:
        state.access.read_act(index)
    return state.act_bytes[index]


def _write(state, addr, values):
    index = np.arange(addr, addr + len(values)) % state.cfg.act_bytes
    if state.access is not None:
        state.access.write_act(index)
    state.act_bytes[index] = values


def _matmul(state, a, regs):
    cfg = state.cfg
    if a["swap"]:
        state.active[:] = state.shadow
    pattern = regs.patterns[a["pattern"]]
    x = np.stack([_window(state, pattern.address(cfg, a["act_addr"], i))
                  for i in range(a["m"])])
    rows = slice(a["acc_addr"], a["acc_addr"] + a["m"])
    if state.access is not None:
        if a["accumulate"]:
            state.access.read_acc(rows)
        state.access.write_acc(rows)
    state.acc[rows] = gemm_i32(x, state.active, state.acc[rows] if a["accumulate"] else None)
    if a["preload"]:
        # The tile lands in the shadows after this MATMUL's swap has passed (rtl/loader.py).
        tile = a["wgt_tile"] * cfg.rows
        if state.access is not None:
            state.access.read_rows("wgt", slice(tile, tile + cfg.rows))
        state.shadow[:] = state.wgt[tile:tile + cfg.rows]


def _vec(state, a, regs):
    cfg = state.cfg
    g, q, m = a["group"], a["q_addr"], a["m"]
    lanes = cfg.lanes
    ch = slice(g * lanes, (g + 1) * lanes)
    if state.access is not None:
        state.access.read_acc(slice(a["acc_addr"], a["acc_addr"] + m))
        state.access.read_rows("qparam", slice(q, q + 1))
    y = requantize(state.acc[a["acc_addr"]:a["acc_addr"] + m, ch],
                   state.bias[q, ch], state.mult[q, ch], state.shift[q, ch] & 0x1F, *regs.setq)
    pattern = regs.patterns[a["pattern"]]
    n = min(pattern.lanes, lanes)
    for i in range(m):
        _write(state, pattern.address(cfg, a["act_addr"], i), y[i, :n])


def _fill(state, a, regs):
    cfg = state.cfg
    pattern = regs.patterns[a["pattern"]]
    value = np.full(pattern.lanes, a["value"], dtype=np.int8)
    for i in range(a["m"]):
        _write(state, pattern.address(cfg, a["act_addr"], i), value)


def _pool_results(state, a, regs, read):
    """The int32 results of a POOL (before requantisation), one row of ``lanes`` each, in
    order, as (index of the last input it needs, result) (docs/isa.md, POOL). ``read(i,
    addr)`` reads input i, the window at byte ``addr``; inputs are read in order, one a cycle
    (ADD: A_j is input 2j, B_j input 2j + 1)."""
    cfg = state.cfg
    w = regs.window
    lanes, m = cfg.pool_lanes, a["m"]
    op = isa.Window(w["kind"])
    pattern = regs.patterns[a["pattern"]]

    def value(i, addr, zero_point):
        return read(i, addr)[:lanes].astype(np.int64) - zero_point

    if op == isa.Window.ADD:
        q = a["q_addr"] + 1
        b_pattern = regs.patterns[w["aux_pattern"]]
        for j in range(m // 2):
            xa = value(2 * j, pattern.address(cfg, a["act_addr"], j), w["zp_a"])
            xb = value(2 * j + 1, b_pattern.address(cfg, w["aux"], j), w["zp_b"])
            yield 2 * j + 1, (rescale_add_input(xa, state.mult[q, 0], state.shift[q, 0] & 0x1F)
                              + rescale_add_input(xb, state.mult[q, 1], state.shift[q, 1] & 0x1F))
        return
    kh, kw, stride, line = w["kh"], w["kw"], w["stride"] + 1, w["line"]
    taps = None
    if op == isa.Window.DW:
        base = w["aux"] * cfg.rows
        if state.access is not None:
            state.access.read_rows("wgt", slice(base, base + kh * kw))
        taps = state.wgt[base:base + kh * kw, :lanes].astype(np.int64)
    x = []
    for i in range(m):
        x.append(value(i, pattern.address(cfg, a["act_addr"], i), w["zp_a"]))
        if op == isa.Window.SUM:
            if i == m - 1:
                yield i, np.sum(x, axis=0)
            continue
        iy, ix = divmod(i, line)
        if (iy < kh - 1 or ix < kw - 1 or (iy - kh + 1) % stride
                or (ix - kw + 1) % stride):
            continue
        window = np.stack([x[(iy - kh + 1 + dy) * line + ix - kw + 1 + dx]
                           for dy in range(kh) for dx in range(kw)])
        if op == isa.Window.DW:
            yield i, (window * taps).sum(axis=0)
        elif op == isa.Window.AVG:
            yield i, window.sum(axis=0)
        else:
            yield i, window.max(axis=0)


def _pool(state, a, regs):
    """A POOL as the RTL times it: input i is read in the POOL's cycle ``POOL_PROLOGUE + i``
    and a result lands ``isa.pool_depth`` cycles after the read of its last input, so input
    i sees the results of inputs up to ``i - pool_depth - 1``. A POOL whose results land on
    its own later inputs is therefore defined, not a race."""
    cfg = state.cfg
    q, lanes = a["q_addr"], cfg.pool_lanes
    if state.access is not None:
        state.access.read_rows("qparam", slice(q, q + 2))   # q + 1: ADD's input scales
    pattern = regs.patterns[a["out_pattern"]]
    n = min(pattern.lanes, lanes)
    lag = isa.pool_depth(cfg) + 1
    pending = []     # writes in flight: (first input that sees it, address, bytes)

    def land(before):
        while pending and pending[0][0] <= before:
            _, addr, values = pending.pop(0)
            _write(state, addr, values)

    def read(i, addr):
        land(i)
        return _window(state, addr)

    # A generator: its reads interleave with the writes queued below.
    for j, (last, r) in enumerate(_pool_results(state, a, regs, read)):
        y = requantize(r[None], state.bias[q, :lanes], state.mult[q, :lanes],
                       state.shift[q, :lanes] & 0x1F, *regs.setq)[0]
        pending.append((last + lag, pattern.address(cfg, a["out_addr"], j), y[:n]))
    land(float("inf"))


def _execute(state, instr, regs):
    a, op = instr.args, instr.op
    if op == isa.Op.LOADW:
        tile = a["wgt_tile"] * state.cfg.rows
        if state.access is not None:
            state.access.read_rows("wgt", slice(tile, tile + state.cfg.rows))
        state.shadow[:] = state.wgt[tile:tile + state.cfg.rows]
    elif op == isa.Op.MATMUL:
        _matmul(state, a, regs)
    elif op == isa.Op.VEC:
        _vec(state, a, regs)
    elif op == isa.Op.FILL:
        _fill(state, a, regs)
    elif op == isa.Op.POOL:
        _pool(state, a, regs)
    elif op == isa.Op.SETQ:
        regs.setq = (a["zero_point"], a["clamp_min"], a["clamp_max"])
    elif op == isa.Op.SETP:
        regs.patterns[a["index"]] = isa.Pattern(a["count"], a["step"], a["line"], a["lanes"])
    elif op == isa.Op.SETW:
        regs.window = dict(a)


def run(state, max_instructions=1_000_000, trace=False, access=None):
    """Execute ``state.prog`` on ``state`` (mutated in place) and return a :class:`RunResult`;
    ``access``, an :class:`Access` to record what the run reads first and writes.

    Timing (docs/isa.md): ``t`` is the first cycle in which the next instruction can start
    (it was fetched and decoded while the one before ran); ``acc_settled`` / ``act_settled``
    the first cycle in which every earlier accumulator / activation write can be read;
    ``load_settled`` the first in which the weight loader has read its last row.

    Like START on the RTL, a run begins by zeroing the weight registers (``shadow`` and
    ``active``): its results depend only on the program and the SRAMs.
    """
    state.shadow[:] = 0
    state.active[:] = 0
    state.access = access
    try:
        return _run(state, max_instructions, trace)
    finally:
        del state.access


def _run(state, max_instructions, trace):
    cfg = state.cfg
    Op = isa.Op
    t = isa.fetch_cycles(cfg)
    acc_settled = act_settled = load_settled = 0
    mac_cycles = instret = 0
    regs = Registers(cfg)
    steps = []
    waits = []
    pc = 0
    for _ in range(max_instructions):
        if pc == cfg.prog_depth:
            error = isa.Error.PC_OVERFLOW
        else:
            error = isa.check(int(state.prog[pc]), cfg)
            if state.access is not None:
                state.access.read_rows("prog", slice(pc, pc + 1))
        instr = isa.decode(int(state.prog[pc])) if not error else None
        if error or instr.op == Op.HALT:
            end = max(t, acc_settled, act_settled) + 1
            if not error:
                instret += 1
            return RunResult(end, mac_cycles, instret, error, pc, steps, waits)
        op, m = instr.op, instr.args.get("m", 0)
        read, write, acc, port = INTERLOCKS
        bounds = []
        if op in (Op.MATMUL, Op.POOL, Op.SETW):          # they read activations
            bounds.append((act_settled, read))
        if op in (Op.VEC, Op.FILL, Op.POOL):             # they write activations
            bounds.append((act_settled - isa.write_depth(cfg, op), write))
        if op == Op.VEC:
            bounds.append((acc_settled, acc))
        if op == Op.POOL:
            bounds.append((load_settled, port))
        start = max([t] + [cycle for cycle, _ in bounds])
        if trace and start > t:
            held_by = next(name for cycle, name in bounds if cycle == start)
            waits.append((pc, held_by, start - t))
        if op == Op.MATMUL:
            acc_settled = start + isa.matmul_settle(cfg, m)
            mac_cycles += m
        elif op == Op.VEC:
            act_settled = start + isa.vec_settle(cfg, m)
        elif op == Op.FILL:
            act_settled = start + isa.fill_settle(cfg, m)
        elif op == Op.POOL:
            act_settled = start + isa.pool_settle(cfg, m)
        if op == Op.LOADW or (op == Op.MATMUL and instr.preload):
            load_settled = start + isa.load_busy(cfg)
        if trace:
            steps.append((pc, start, str(instr)))
        _execute(state, instr, regs)
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
