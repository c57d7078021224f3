"""The sequencer: fetches, checks and issues instructions, one fixed-cost instruction at a time.

Four stages: the program SRAM read and its output register (fetch), the checks and cost of
the word (decode, into registers) and the issuing of the instruction (execute); with
``cfg.decode_cycles`` = 2, decode takes two, the fields' compares and the cost registered first
(predecode). Since programs have no branches, the next words are always fetched and decoded
while the current instruction executes, so the pipeline costs cycles only once per run
(``isa.fetch_cycles``), and the SRAM addresses a cycle issues come from registers rather than
through the decoder.

The execute stage owns the registers that SETQ, SETP and SETW set, and the address walkers that
follow the patterns (docs/isa.md): each activation address it issues is a register.
"""

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from . import isa
from .actmem import act_addr_bits
from .config import (
    ACC_ADDR_BITS,
    COUNT_FIELD_BITS,
    GROUP_FIELD_BITS,
    LINE_FIELD_BITS,
    QADDR_FIELD_BITS,
)
from .delay import times

__all__ = ["Sequencer", "matmul_issue_layout", "vec_issue_layout", "fill_issue_layout",
           "pool_issue_layout", "vec_step_bits", "ERROR_BITS", "window_layout", "count_bits"]

ERROR_BITS = max(isa.Error).bit_length()
#: The instruction checks in the order they are decided: the first that fails is the error.
CHECK_ORDER = (isa.Error.PC_OVERFLOW, isa.Error.ILLEGAL_OPCODE, isa.Error.BAD_FIELD,
               isa.Error.ACT_RANGE, isa.Error.WGT_RANGE, isa.Error.ACC_RANGE,
               isa.Error.QPARAM_RANGE)
#: The window unit's window: 3 x 3 positions, the kernel in its bottom-right corner.
WINDOW = 3


def count_bits(cfg):
    """Width of a write's byte count (1..R)."""
    return cfg.rows.bit_length()


def matmul_issue_layout(cfg):
    return data.StructLayout({
        "act_addr": unsigned(act_addr_bits(cfg)), "acc_addr": unsigned(ACC_ADDR_BITS),
        "accumulate": 1, "swap": 1,
    })


def vec_step_bits(cfg):
    """Width of the step index of a VEC row (0 .. vec_steps - 1); at least 1."""
    return max(1, (cfg.vec_steps - 1).bit_length())


def beat_bits(cfg):
    """Width of the cycle index within a VEC step (0 .. vec_mult_cycles - 1); 0 for K = 1."""
    return (cfg.vec_mult_cycles - 1).bit_length()


def _setq_layout():
    return {"zero_point": signed(8), "clamp_min": signed(8), "clamp_max": signed(8)}


def vec_issue_layout(cfg):
    return data.StructLayout({
        "acc_addr": unsigned(ACC_ADDR_BITS), "act_addr": unsigned(act_addr_bits(cfg)),
        "count": unsigned(count_bits(cfg)), "q_addr": unsigned(QADDR_FIELD_BITS),
        "group": unsigned(GROUP_FIELD_BITS), "step": unsigned(vec_step_bits(cfg)),
        **_setq_layout(),
    })


def fill_issue_layout(cfg):
    return data.StructLayout({
        "addr": unsigned(act_addr_bits(cfg)), "count": unsigned(count_bits(cfg)),
        "value": signed(8),
    })


def pool_issue_layout(cfg):
    """One POOL input: where to read it, and what the window unit does with it."""
    return data.StructLayout({
        "addr": unsigned(act_addr_bits(cfg)),
        "ix": unsigned(LINE_FIELD_BITS),     # its position in the line (line buffer index)
        "first": 1,                          # the POOL's first input (SUM starts over)
        "b": 1,                              # ADD: an input of B (else of A)
        "emit": 1,                           # a result leaves with this input
        "out_addr": unsigned(act_addr_bits(cfg)),
        "count": unsigned(count_bits(cfg)),
        **_setq_layout(),
    })


def window_layout():
    """The window unit's registers (SETW) as the sequencer holds them."""
    return data.StructLayout({"op": 3, "kh": 2, "kw": 2, "zp_a": signed(8), "zp_b": signed(8)})


def _pattern_layout(cfg):
    aw = act_addr_bits(cfg)
    return data.StructLayout({"last": LINE_FIELD_BITS, "step": aw, "line": aw,
                              "lanes": isa.LANES_BITS})


class Sequencer(wiring.Component):
    """Runs the program in program SRAM from address 0 until HALT or an error.

    Members
    -------
    start : In(1)
        Pulse to start (ignored unless idle). Clears done, error and the counters, and sets the
        SETQ, SETP and SETW registers to their defaults.
    prog_addr : Out(range(prog_depth))
        Address for the program SRAM's synchronous read port (straight from a register).
    prog_en : Out(1)
        Read enable of that port: ``prog_data`` is the word at ``prog_addr`` one cycle after
        ``prog_en``, and holds while ``prog_en`` is low.
    prog_data : In(64)
    mm : Out(stream.Signature(matmul_issue_layout(cfg), always_ready=True))
        One activation window to read and push through the array, and where its result goes.
    vec : Out(stream.Signature(vec_issue_layout(cfg), always_ready=True))
        One accumulator row to requantise, where its int8 result goes and how many of its bytes;
        ``step`` says which ``vec_lanes`` of the row's lane group (cfg.vec_steps steps per
        row). Valid in the first of each step's ``cfg.vec_mult_cycles`` cycles only.
    fill : Out(stream.Signature(fill_issue_layout(cfg), always_ready=True))
        One FILL write.
    pool : Out(stream.Signature(pool_issue_layout(cfg), always_ready=True))
        One POOL input (only with ``cfg.pool``).
    window : Out(window_layout())
        The window unit's SETW registers (only with ``cfg.pool``; they change only when the unit
        is idle).
    pool_q : Out(stream.Signature(unsigned(QADDR_FIELD_BITS), always_ready=True))
        A POOL's parameter rows, in its first two cycles: row q + 1 (ADD's input scales), then
        row q (the requantisation's), with ``pool_q_second`` set for the second.
    pool_q_second : Out(1)
    pool_tap : Out(stream.Signature(unsigned(4), always_ready=True))
        In a POOL's first 9 cycles, window position ``payload`` (0..8, row-major in the 3 x 3
        window); ``pool_tap_covered`` when the kernel covers it, and ``tap_row`` is then its
        weight row.
    tap_row : Out(range(wgt_depth))
    load : Out(stream.Signature(range(wgt_depth), always_ready=True))
        Start of a weight-tile load at the given weight SRAM row.
    busy, done : Out(1)
    error : Out(3)
        An :class:`isa.Error` code, valid once ``done``.
    err_pc : Out(range(prog_depth + 1))
    cycles, mac_cycles, instret : Out(32)
        Counters of the last run (see rtl/hostmap.py, Reg).

    Timing
    ------
    START in cycle x; cycles x+1 and x+2 fetch word 0, the next ``cfg.decode_cycles``
    decode it; the first instruction starts ``isa.fetch_cycles(cfg)`` (3 or 4) cycles after
    cycle x. Each instruction occupies exactly ``isa.cost`` cycles once it has started, and the
    next one starts in the cycle after, unless an interlock holds it (rtl/isa.py, docs/isa.md):
    activation readers (MATMUL, POOL, SETW) until every activation write has landed,
    activation writers (VEC, FILL, POOL) until their first write would land after every
    earlier one, VEC until every accumulator write has landed, POOL until the weight loader
    has read its last row, HALT (or a faulting instruction) until every write has landed. Its
    last cycle is the last busy cycle, so CYCLES counts fetch and decode, every instruction and
    every interlock wait.
    """

    def __init__(self, cfg):
        self.cfg = cfg
        members = {
            "start": In(1),
            "prog_addr": Out(range(cfg.prog_depth)),
            "prog_en": Out(1),
            "prog_data": In(isa.INSTR_BITS),
            "mm": Out(stream.Signature(matmul_issue_layout(cfg), always_ready=True)),
            "vec": Out(stream.Signature(vec_issue_layout(cfg), always_ready=True)),
            "fill": Out(stream.Signature(fill_issue_layout(cfg), always_ready=True)),
            "load": Out(stream.Signature(range(cfg.wgt_depth), always_ready=True)),
            "busy": Out(1),
            "done": Out(1),
            "error": Out(ERROR_BITS),
            "err_pc": Out(range(cfg.prog_depth + 1)),
            "cycles": Out(32),
            "mac_cycles": Out(32),
            "instret": Out(32),
        }
        if cfg.pool:
            members.update({
                "pool": Out(stream.Signature(pool_issue_layout(cfg), always_ready=True)),
                "window": Out(window_layout()),
                "pool_q": Out(stream.Signature(unsigned(QADDR_FIELD_BITS), always_ready=True)),
                "pool_q_second": Out(1),
                "pool_tap": Out(stream.Signature(unsigned(4), always_ready=True)),
                "pool_tap_covered": Out(1),
                "tap_row": Out(range(cfg.wgt_depth)),
            })
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        Op = isa.Op
        aw = act_addr_bits(cfg)

        pc = Signal(range(cfg.prog_depth + 1))       # address of the executing instruction
        dpc = Signal(range(cfg.prog_depth + 2))      # address of the word being decoded
        advance = Signal()    # the executing instruction ends: load the decoded word
        first = Signal()      # this cycle is the first one of the instruction at pc
        started = Signal()    # the instruction has passed its interlock and is issuing
        left = Signal(range(isa.max_cost(cfg) + 1))   # cycles left, this one included
        # left == 1 and "a fault or HALT", as registers: the issue logic's conditions come
        # from flip-flops, not through comparators.
        last = Signal()
        stops = Signal()
        acc_ptr = Signal(ACC_ADDR_BITS)      # the accumulator row the next issue cycle uses
        # The VEC row's cycle: step (cfg.vec_steps per row) times vec_mult_cycles, plus the
        # cycle within the step, whose first cycle alone issues.
        step = Signal(vec_step_bits(cfg) + beat_bits(cfg))
        rows_left = Signal(COUNT_FIELD_BITS)  # MATMUL rows / POOL inputs left after this one
        rows_more = Signal()                  # a MATMUL row / POOL input is issued this cycle
        # A POOL's prologue is over (its inputs issue), and its next input is its first.
        pool_ready = Signal() if cfg.pool else Const(1, 1)
        first_input = Signal()
        zero_point = Signal(signed(8))
        clamp_min = Signal(signed(8), init=-128)
        clamp_max = Signal(signed(8), init=127)

        # -- fetch: the word register holds word dpc, the SRAM's output word dpc + 1 ---------------
        # The SRAM's output only goes into a register (a block RAM's clock-to-output is a third of
        # a 100 MHz cycle). Its address is a register too, the next word's, read when the word
        # at the output moves on (advance) and not otherwise, so the output holds: the issue
        # logic's decision reaches the SRAM as its read enable, not through an address select.
        depth = cfg.prog_depth
        word = Signal(isa.INSTR_BITS)
        dpc_next = Signal(range(depth + 2))
        addr_next = Signal(range(depth))

        def wrapped(addr):
            return Mux(addr < depth, addr, 0)

        m.d.comb += [self.prog_addr.eq(addr_next), self.prog_en.eq(advance)]
        with m.If(advance):
            m.d.sync += [
                word.eq(self.prog_data),
                dpc.eq(dpc_next),
                dpc_next.eq(Mux(dpc_next > depth, depth + 1, dpc_next + 1)),
                addr_next.eq(wrapped(dpc_next + 2)),
            ]

        # -- (predecode the word register: its compares, opcode and cost, into registers) -------
        # -- decode: the checks and what the execute registers need ------------------------------
        # With two decode cycles, neither a field's compare nor the OR of the checks behind it
        # shares a cycle with the other (docs/architecture.md, "Core parameters").
        d_op, d_terms, d_cost = self._decode(m, word, dpc)
        if cfg.decode_cycles == 2:
            p_word = Signal(isa.INSTR_BITS)
            p_dpc = Signal.like(dpc)
            p_op = {op: Signal(name=f"p_is_{op.name.lower()}") for op in Op}
            p_cost = Signal.like(d_cost, name="p_cost")
            p_last = Signal()
            p_terms = {error: [Signal(name=f"p_{error.name.lower()}_{i}")
                               for i in range(len(terms))] for error, terms in d_terms.items()}
            with m.If(advance):
                m.d.sync += [p_word.eq(word), p_dpc.eq(dpc), p_cost.eq(d_cost),
                             p_last.eq(d_cost == 1)]
                m.d.sync += [p_op[op].eq(d_op[op]) for op in Op]
                for error, terms in d_terms.items():
                    m.d.sync += [reg.eq(term)
                                 for reg, term in zip(p_terms[error], terms, strict=True)]
        else:
            p_word, p_dpc, p_op, p_cost, p_last, p_terms = (word, dpc, d_op, d_cost, d_cost == 1,
                                                            d_terms)
        p_checks = Cat(Cat(p_terms[error]).any() for error in CHECK_ORDER)

        ir = Signal(isa.INSTR_BITS)
        is_op = {op: Signal(name=f"is_{op.name.lower()}") for op in Op}
        checks = Signal(len(CHECK_ORDER))
        fault = _first_error(checks)
        f = {op: _fields(ir, op) for op in Op}
        p_f = {op: _fields(p_word, op) for op in Op}

        # -- the pattern registers and the address walkers ------------------------------------
        patterns = Array(Signal(_pattern_layout(cfg), name=f"pattern{i}")
                         for i in range(cfg.patterns))
        read_walk = _Walker(m, "read", aw)      # MATMUL windows, POOL inputs (A)
        # VEC rows, FILL positions, POOL results; without the window unit no instruction reads
        # and writes at once, and one walker serves both.
        write_walk = _Walker(m, "write", aw) if cfg.pool else read_walk
        aux_walk = _Walker(m, "aux", aw)        # ADD's inputs B
        window = Signal(window_layout()) if cfg.pool else None
        w_stride = Signal()
        w_line_last = Signal(LINE_FIELD_BITS)
        w_aux = Signal(aw)
        w_aux_pattern = Signal(2)

        with m.If(advance):
            m.d.sync += [ir.eq(p_word), checks.eq(p_checks), left.eq(p_cost), pc.eq(p_dpc),
                         last.eq(p_last), stops.eq(p_checks.any() | p_op[Op.HALT]),
                         first.eq(1), started.eq(0), step.eq(0),
                         acc_ptr.eq(Mux(p_op[Op.VEC], p_f[Op.VEC]["acc_addr"],
                                        p_f[Op.MATMUL]["acc_addr"])),
                         rows_left.eq(Mux(p_op[Op.POOL], p_f[Op.POOL]["m"],
                                          p_f[Op.MATMUL]["m"]) - 1),
                         rows_more.eq(p_op[Op.MATMUL] | p_op[Op.POOL])]
            m.d.sync += [is_op[op].eq(p_op[op]) for op in Op]

        # The pattern registers each stream follows, selected once (an Array's element is a
        # new multiplexer wherever it is used).
        read_pattern, write_pattern, aux_pattern = (
            Signal(_pattern_layout(cfg), name=f"{name}_pattern")
            for name in ("read", "write", "aux"))
        m.d.comb += [
            read_pattern.eq(patterns[Mux(is_op[Op.POOL], f[Op.POOL]["pattern"],
                                         f[Op.MATMUL]["pattern"])]),
            write_pattern.eq(patterns[Mux(is_op[Op.POOL], f[Op.POOL]["out_pattern"],
                                          Mux(is_op[Op.FILL], f[Op.FILL]["pattern"],
                                              f[Op.VEC]["pattern"]))]),
        ]
        if not cfg.pool:   # one walker: the executing instruction's pattern
            read_pattern = write_pattern = Signal(_pattern_layout(cfg), name="walk_pattern")
            m.d.comb += read_pattern.eq(patterns[Mux(is_op[Op.MATMUL], f[Op.MATMUL]["pattern"],
                                                     Mux(is_op[Op.FILL], f[Op.FILL]["pattern"],
                                                         f[Op.VEC]["pattern"]))])
        if cfg.pool:
            m.d.comb += aux_pattern.eq(patterns[w_aux_pattern])
        # Bytes a write covers: the pattern's lanes, at most the row's (VEC, POOL) lanes.
        write_lanes = write_pattern.lanes
        row_count = Mux(write_lanes > cfg.lanes, cfg.lanes, write_lanes)
        pool_count = Mux(write_lanes > cfg.pool_lanes, cfg.pool_lanes, write_lanes)

        # -- interlocks: how long until every accumulator / activation write has landed, and
        # until the weight loader has read its last row --------------------------------------
        max_m = 2 ** COUNT_FIELD_BITS - 1
        acc_wait = _Countdown(m, "acc", isa.matmul_settle(cfg, max_m))
        act_wait = _Countdown(m, "act", max(isa.vec_settle(cfg, max_m),
                                            isa.fill_settle(cfg, max_m),
                                            isa.pool_settle(cfg, max_m)),
                              marks=sorted({isa.write_depth(cfg, op)
                                            for op in (Op.VEC, Op.FILL, Op.POOL)}))
        load_wait = _Countdown(m, "load", isa.load_busy(cfg))

        def act_writer_may(op):
            return act_wait.at_most(isa.write_depth(cfg, op))

        can_start = Cat(
            ~is_op[Op.MATMUL] | act_wait.idle,
            ~is_op[Op.VEC] | (acc_wait.idle & act_writer_may(Op.VEC)),
            ~is_op[Op.FILL] | act_writer_may(Op.FILL),
            ~is_op[Op.POOL] | (act_wait.idle & load_wait.idle),
            ~is_op[Op.SETW] | act_wait.idle,
        ).all()
        settled = acc_wait.idle & act_wait.idle

        issuing = Signal()    # the instruction issues in this cycle
        self._payloads(m, f, is_op, started, acc_ptr, step, read_walk, write_walk, aux_walk,
                       row_count, pool_count, write_lanes, zero_point, clamp_min, clamp_max)

        fault_q = Signal(ERROR_BITS)
        halting = Signal()
        m.d.comb += self.error.eq(fault_q)

        def finish():
            m.d.sync += [self.busy.eq(0), self.done.eq(1)]
            m.next = "IDLE"

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [
                        self.busy.eq(1), self.done.eq(0), fault_q.eq(0), self.err_pc.eq(0),
                        self.cycles.eq(0), self.mac_cycles.eq(0), self.instret.eq(0),
                        dpc.eq(0), addr_next.eq(0), halting.eq(0),
                        zero_point.eq(0), clamp_min.eq(-128), clamp_max.eq(127),
                        *acc_wait.clear(), *act_wait.clear(), *load_wait.clear(),
                    ]
                    default = isa.Pattern.default(cfg)
                    for pattern in patterns:
                        m.d.sync += [pattern.last.eq(default.count - 1),
                                     pattern.step.eq(default.step), pattern.line.eq(default.line),
                                     pattern.lanes.eq(default.lanes)]
                    if cfg.pool:
                        m.d.sync += [window.op.eq(isa.Window.DW), window.kh.eq(1),
                                     window.kw.eq(1), window.zp_a.eq(0), window.zp_b.eq(0),
                                     w_stride.eq(0), w_line_last.eq(0), w_aux.eq(0),
                                     w_aux_pattern.eq(0)]
                    m.next = "FETCH"

            with m.State("FETCH"):   # reads word 0
                m.d.comb += self.prog_en.eq(1)
                m.d.sync += [self.cycles.eq(self.cycles + 1), addr_next.eq(wrapped(1))]
                m.next = "FILL"

            with m.State("FILL"):    # reads word 1
                m.d.comb += self.prog_en.eq(1)
                m.d.sync += [self.cycles.eq(self.cycles + 1), word.eq(self.prog_data),
                             dpc.eq(0), dpc_next.eq(1), addr_next.eq(wrapped(2))]
                m.next = "PREDECODE" if cfg.decode_cycles == 2 else "DECODE"

            if cfg.decode_cycles == 2:
                with m.State("PREDECODE"):   # what the execute registers take is don't-care
                    m.d.comb += advance.eq(1)
                    m.d.sync += self.cycles.eq(self.cycles + 1)
                    m.next = "DECODE"

            with m.State("DECODE"):
                m.d.comb += advance.eq(1)
                m.d.sync += self.cycles.eq(self.cycles + 1)
                m.next = "EXEC"

            with m.State("EXEC"):
                m.d.sync += self.cycles.eq(self.cycles + 1)
                with m.If(first & stops):
                    m.d.sync += [fault_q.eq(fault), self.err_pc.eq(pc),
                                 halting.eq(~checks.any()), first.eq(0)]
                    with m.If(settled):
                        with m.If(~checks.any()):
                            m.d.sync += self.instret.eq(self.instret + 1)
                        finish()
                    with m.Else():
                        m.next = "STOP"
                with m.Elif(started | can_start):
                    m.d.comb += issuing.eq(1)
                    with m.If(~started):   # the first issue cycle: the interlock counters start
                        self._first_cycle(m, f, is_op, patterns, window, w_stride, w_line_last,
                                          w_aux, w_aux_pattern, zero_point, clamp_min,
                                          clamp_max, acc_wait, act_wait, load_wait, aux_walk)
                    with m.If(last):
                        m.d.comb += advance.eq(1)
                        m.d.sync += self.instret.eq(self.instret + 1)
                    with m.Else():   # it goes on (on its last cycle, advance loads the next)
                        m.d.sync += [first.eq(0), started.eq(1), left.eq(left - 1),
                                     last.eq(left == 2)]
                        with m.If(rows_more & (~is_op[Op.POOL] | pool_ready)):
                            m.d.sync += [rows_left.eq(rows_left - 1), rows_more.eq(rows_left != 0)]
                        with m.If(is_op[Op.MATMUL] & rows_more):
                            m.d.sync += acc_ptr.eq(acc_ptr + 1)
                        with m.If(is_op[Op.VEC]):
                            m.d.sync += step.eq(step + 1)
                            with m.If(step == cfg.vec_row_cycles - 1):
                                m.d.sync += [step.eq(0), acc_ptr.eq(acc_ptr + 1)]
                with m.Else():
                    m.d.sync += first.eq(0)

            with m.State("STOP"):
                # Let earlier instructions' writes land before the host may look at the SRAMs.
                m.d.sync += self.cycles.eq(self.cycles + 1)
                with m.If(settled):
                    with m.If(halting):
                        m.d.sync += self.instret.eq(self.instret + 1)
                    finish()

        self._issue(m, f, is_op, started, issuing, rows_more, rows_left, advance, step,
                    read_walk, write_walk, aux_walk, read_pattern, write_pattern, aux_pattern,
                    window, w_stride, w_line_last, w_aux, pool_ready, first_input)
        # The next instruction's walkers start at its base addresses (after the issue logic: in
        # the last issue cycle of an instruction, this wins over its own walkers' steps).
        written = Mux(p_op[Op.FILL], p_f[Op.FILL]["act_addr"], p_f[Op.VEC]["act_addr"])
        with m.If(advance):
            if cfg.pool:
                m.d.sync += read_walk.load(Mux(p_op[Op.POOL], p_f[Op.POOL]["act_addr"],
                                               p_f[Op.MATMUL]["act_addr"]))
                m.d.sync += write_walk.load(Mux(p_op[Op.POOL], p_f[Op.POOL]["out_addr"], written))
            else:
                m.d.sync += read_walk.load(Mux(p_op[Op.MATMUL], p_f[Op.MATMUL]["act_addr"],
                                               written))
        if cfg.pool:
            m.d.comb += self.window.eq(window)
        with m.If(self.mm.valid):
            m.d.sync += self.mac_cycles.eq(self.mac_cycles + 1)
        return m

    def _first_cycle(self, m, f, is_op, patterns, window, w_stride, w_line_last, w_aux,
                     w_aux_pattern, zero_point, clamp_min, clamp_max, acc_wait, act_wait,
                     load_wait, aux_walk):
        """What the first issue cycle of an instruction does besides issuing: start the
        interlock counters, set SETQ's, SETP's and SETW's registers."""
        cfg, Op = self.cfg, isa.Op
        mm, vec, fill, pool = f[Op.MATMUL], f[Op.VEC], f[Op.FILL], f[Op.POOL]
        with m.If(is_op[Op.MATMUL]):
            m.d.comb += acc_wait.set(isa.matmul_settle(cfg, 0) + mm["m"] - 1)
        with m.If(is_op[Op.VEC]):
            m.d.comb += act_wait.set(isa.vec_settle(cfg, 0) + vec["m"] * cfg.vec_row_cycles - 1)
        with m.If(is_op[Op.FILL]):
            m.d.comb += act_wait.set(isa.fill_settle(cfg, 0) + fill["m"] - 1)
        with m.If(is_op[Op.POOL]):
            m.d.comb += act_wait.set(isa.pool_settle(cfg, 0) + pool["m"] - 1)
        with m.If(is_op[Op.LOADW] | (is_op[Op.MATMUL] & mm["preload"])):
            m.d.comb += load_wait.set(isa.load_busy(cfg) - 1)
        with m.If(is_op[Op.SETQ]):
            setq = f[Op.SETQ]
            m.d.sync += [zero_point.eq(setq["zero_point"]), clamp_min.eq(setq["clamp_min"]),
                         clamp_max.eq(setq["clamp_max"])]
        with m.If(is_op[Op.SETP]):
            setp = f[Op.SETP]
            target = patterns[setp["index"]]
            m.d.sync += [target.last.eq(setp["count"] - 1), target.step.eq(setp["step"]),
                         target.line.eq(setp["line"]), target.lanes.eq(setp["lanes"])]
        if cfg.pool:
            with m.If(is_op[Op.SETW]):
                setw = f[Op.SETW]
                m.d.sync += [window.op.eq(setw["kind"]), window.kh.eq(setw["kh"]),
                             window.kw.eq(setw["kw"]), window.zp_a.eq(setw["zp_a"]),
                             window.zp_b.eq(setw["zp_b"]), w_stride.eq(setw["stride"]),
                             w_line_last.eq(setw["line"] - 1), w_aux.eq(setw["aux"]),
                             w_aux_pattern.eq(setw["aux_pattern"])]
            with m.If(is_op[Op.POOL]):
                m.d.sync += aux_walk.load(w_aux)

    def _payloads(self, m, f, is_op, started, acc_ptr, step, read_walk, write_walk, aux_walk,
                  row_count, pool_count, write_lanes, zero_point, clamp_min, clamp_max):
        """The issue payloads, driven every cycle from registers whether valid or not, so that
        the SRAM addresses do not wait for the interlock and issue logic."""
        cfg, Op = self.cfg, isa.Op
        mm, vec, fill = f[Op.MATMUL], f[Op.VEC], f[Op.FILL]
        m.d.comb += [
            self.mm.payload.act_addr.eq(read_walk.addr),
            self.mm.payload.acc_addr.eq(acc_ptr),
            self.mm.payload.accumulate.eq(mm["accumulate"]),
            self.mm.payload.swap.eq(mm["swap"] & ~started),
            self.load.payload.eq(times(Mux(is_op[Op.LOADW], f[Op.LOADW]["wgt_tile"],
                                           mm["wgt_tile"]), cfg.rows)),
            self.vec.payload.acc_addr.eq(acc_ptr),
            self.vec.payload.act_addr.eq(write_walk.addr),
            self.vec.payload.count.eq(row_count),
            self.vec.payload.step.eq(step[beat_bits(cfg):]),
            self.vec.payload.q_addr.eq(vec["q_addr"]),
            self.vec.payload.group.eq(vec["group"]),
            self.vec.payload.zero_point.eq(zero_point),
            self.vec.payload.clamp_min.eq(clamp_min),
            self.vec.payload.clamp_max.eq(clamp_max),
            self.fill.payload.addr.eq(write_walk.addr),
            self.fill.payload.count.eq(write_lanes),
            self.fill.payload.value.eq(fill["value"]),
        ]
        if cfg.pool:
            p = self.pool.payload
            m.d.comb += [p.out_addr.eq(write_walk.addr), p.count.eq(pool_count),
                         p.zero_point.eq(zero_point), p.clamp_min.eq(clamp_min),
                         p.clamp_max.eq(clamp_max)]

    def _issue(self, m, f, is_op, started, issuing, rows_more, rows_left, advance, step,
               read_walk, write_walk, aux_walk, read_pattern, write_pattern, aux_pattern,
               window, w_stride, w_line_last, w_aux, pool_ready, first_input):
        """What an issue cycle of the current instruction drives and advances: valid bits, the
        walkers, and a POOL's window position."""
        cfg, Op = self.cfg, isa.Op
        first_cycle = ~started
        mm = f[Op.MATMUL]
        with m.If(issuing):
            with m.If(is_op[Op.MATMUL]):
                m.d.comb += self.mm.valid.eq(rows_more)
                with m.If(first_cycle):
                    m.d.comb += self.load.valid.eq(mm["preload"])
                with m.If(rows_more):
                    m.d.sync += read_walk.advance(read_pattern)
            with m.If(is_op[Op.LOADW] & first_cycle):
                m.d.comb += self.load.valid.eq(1)
            with m.If(is_op[Op.VEC]):
                # A step is issued in the first of its vec_mult_cycles cycles; the row's address
                # moves on after its last cycle.
                beats = beat_bits(cfg)
                m.d.comb += self.vec.valid.eq(step[:beats] == 0 if beats else 1)
                with m.If(step == cfg.vec_row_cycles - 1):
                    m.d.sync += write_walk.advance(write_pattern)
            with m.If(is_op[Op.FILL]):
                m.d.comb += self.fill.valid.eq(1)
                m.d.sync += write_walk.advance(write_pattern)
        if cfg.pool:
            self._pool_issue(m, f, is_op, first_cycle, issuing, rows_more, rows_left, advance,
                             read_walk, write_walk, aux_walk, read_pattern, write_pattern,
                             aux_pattern, window, w_stride, w_line_last, w_aux, pool_ready,
                             first_input)

    def _pool_issue(self, m, f, is_op, first_cycle, issuing, rows_more, rows_left, advance,
                    read_walk, write_walk, aux_walk, read_pattern, write_pattern, aux_pattern,
                    window, w_stride, w_line_last, w_aux, pool_ready, first_input):
        """A POOL's inputs: which window each reads, its place in the line and the window, and
        whether a result leaves with it; its prologue of parameter and weight reads."""
        cfg, Op = self.cfg, isa.Op
        pool = f[Op.POOL]
        p = self.pool.payload
        W = isa.Window
        op = window.op
        is_add, is_sum = op == W.ADD, op == W.SUM
        # The position of the next input in the line and how many lines are complete (up to 2,
        # enough for a 3-high window), with the parities that a stride of 2 looks at.
        ix = Signal(LINE_FIELD_BITS)
        iy = Signal(2)
        ix_odd = Signal()
        iy_odd = Signal()
        b_turn = Signal()     # ADD: the next input is B's
        kh_m1, kw_m1 = window.kh - 1, window.kw - 1
        in_window = ((iy >= kh_m1) & (ix >= kw_m1)
                     & (~w_stride | ((iy_odd == kh_m1[0]) & (ix_odd == kw_m1[0]))))
        emit = Mux(is_add, b_turn, Mux(is_sum, rows_left == 0, in_window))
        m.d.comb += [
            p.addr.eq(Mux(is_add & b_turn, aux_walk.addr, read_walk.addr)),
            p.ix.eq(ix), p.first.eq(first_input), p.b.eq(is_add & b_turn), p.emit.eq(emit),
        ]
        with m.If(is_op[Op.POOL] & issuing):
            m.d.comb += self.pool.valid.eq(rows_more & pool_ready)
        with m.If(self.pool.valid):
            with m.If(emit):
                m.d.sync += write_walk.advance(write_pattern)
            with m.If(is_add & b_turn):
                m.d.sync += [aux_walk.advance(aux_pattern), b_turn.eq(0)]
            with m.Else():
                m.d.sync += [read_walk.advance(read_pattern), b_turn.eq(is_add)]
                with m.If(ix == w_line_last):
                    m.d.sync += [ix.eq(0), ix_odd.eq(0), iy_odd.eq(~iy_odd),
                                 iy.eq(Mux(iy == 2, 2, iy + 1))]
                with m.Else():
                    m.d.sync += [ix.eq(ix + 1), ix_odd.eq(~ix_odd)]
        with m.If(advance):     # last: the next instruction's first input starts a line
            m.d.sync += [ix.eq(0), iy.eq(0), ix_odd.eq(0), iy_odd.eq(0), b_turn.eq(0)]

        # The prologue: the parameter rows in cycles 0 and 1, the window's weight rows in
        # cycles 0 to 8 (position pos = wy * 3 + wx; the kernel fills the bottom-right corner:
        # tap (wy - 3 + kh) * kw + (wx - 3 + kw)).
        prologue = Signal(range(isa.POOL_PROLOGUE))
        in_prologue = is_op[Op.POOL] & issuing & ~pool_ready
        pos = prologue
        with m.If(in_prologue):
            m.d.sync += prologue.eq(prologue + 1)
            with m.If(prologue == isa.POOL_PROLOGUE - 1):
                m.d.sync += pool_ready.eq(1)
        with m.If(self.pool.valid):
            m.d.sync += first_input.eq(0)
        with m.If(advance):     # last: a POOL starts with its prologue
            m.d.sync += [prologue.eq(0), pool_ready.eq(0), first_input.eq(1)]
        m.d.comb += [
            self.pool_q.valid.eq(in_prologue & (pos < 2)),
            self.pool_q.payload.eq(pool["q_addr"] + ~pos[0]),
            self.pool_q_second.eq(pos[0]),
            self.pool_tap.payload.eq(pos),
        ]
        taps = {}
        for kh in (1, 2, 3):
            for kw in (1, 2, 3):
                for wy in range(WINDOW):
                    for wx in range(WINDOW):
                        dy, dx = wy - WINDOW + kh, wx - WINDOW + kw
                        if dy >= 0 and dx >= 0:
                            taps[kh, kw, wy * WINDOW + wx] = dy * kw + dx
        tap = Signal(4)
        covered = Signal()
        with m.Switch(Cat(pos, window.kw, window.kh)):
            for (kh, kw, position), t in taps.items():
                with m.Case(position | kw << 4 | kh << 6):
                    m.d.comb += [tap.eq(t), covered.eq(1)]
        m.d.comb += [
            self.pool_tap.valid.eq(in_prologue),
            self.pool_tap_covered.eq(covered),
            self.tap_row.eq(times(w_aux[:isa.FIELDS[Op.LOADW][0].width], cfg.rows) + tap),
        ]

    def _decode(self, m, word, addr):
        """One-hot opcode, the failing conditions (for each error code, a list of terms: the
        check fails if any term is set; ``isa.check``'s, and PC_OVERFLOW when ``addr`` is past
        the end) and cost (``isa.cost``) of the instruction ``word`` fetched from ``addr``."""
        cfg = self.cfg
        Op, Error, W = isa.Op, isa.Error, isa.Window
        opcode = word[isa.OPCODE_LSB:isa.OPCODE_LSB + isa.OPCODE_BITS]
        f = {op: _fields(word, op) for op in Op}
        is_op = {op: opcode == op for op in Op}
        legal = Cat(is_op[op] for op in isa.legal_ops(cfg)).any()

        reserved = Const(0, 1)
        for op in Op:
            reserved = reserved | (is_op[op] & (word & isa.reserved_mask(op)).any())
        streams = [op for op in (Op.MATMUL, Op.VEC, Op.FILL, Op.POOL)
                   if cfg.pool or op != Op.POOL]
        mm, vec, setp, setw = f[Op.MATMUL], f[Op.VEC], f[Op.SETP], f[Op.SETW]
        act_bytes = cfg.act_bytes
        kh, kw = setw["kh"], setw["kw"]
        taps = Signal(4)
        with m.Switch(Cat(kw, kh)):
            for h in range(4):
                for w in range(4):
                    with m.Case(w | h << 2):
                        m.d.comb += taps.eq(h * w)
        is_dw, is_wadd = setw["kind"] == W.DW, setw["kind"] == W.ADD
        return is_op, {
            Error.PC_OVERFLOW: [addr >= cfg.prog_depth],
            Error.ILLEGAL_OPCODE: [~legal],
            Error.BAD_FIELD: [
                reserved,
                is_op[Op.WAIT] & (f[Op.WAIT]["cycles"] == 0),
                *[is_op[op] & (f[op]["m"] == 0) for op in streams],
                is_op[Op.MATMUL] & ~mm["preload"] & (mm["wgt_tile"] != 0),
                is_op[Op.VEC] & (vec["group"] >= isa.vec_groups(cfg)),
                is_op[Op.SETQ] & (f[Op.SETQ]["clamp_min"] > f[Op.SETQ]["clamp_max"]),
                is_op[Op.SETP] & ((setp["count"] == 0) | (setp["lanes"] == 0)
                                  | (setp["lanes"] > cfg.rows)),
                *([is_op[Op.SETW] & ((setw["kind"] > max(W)) | (kh == 0) | (kw == 0)
                                     | (setw["line"] == 0) | (setw["line"] > cfg.pool_line)
                                     | (kw > setw["line"]) | ((kh > 1) & (setw["line"] < 2)))]
                  if cfg.pool else []),
                *[is_op[op] & (f[op][name] >= cfg.patterns)
                  for op, names in isa.PATTERN_FIELDS.items() for name in names
                  if cfg.patterns < isa.PATTERNS and (cfg.pool or op not in (Op.POOL, Op.SETW))],
            ],
            Error.ACT_RANGE: [
                *[is_op[op] & (f[op]["act_addr"] >= act_bytes) for op in streams
                  if cfg.pool or op != Op.POOL],
                *([is_op[Op.POOL] & (f[Op.POOL]["out_addr"] >= act_bytes),
                   is_op[Op.SETW] & is_wadd & (setw["aux"] >= act_bytes)] if cfg.pool else []),
            ],
            Error.WGT_RANGE: [
                is_op[Op.MATMUL] & mm["preload"] & (mm["wgt_tile"] >= cfg.wgt_tiles),
                is_op[Op.LOADW] & (f[Op.LOADW]["wgt_tile"] >= cfg.wgt_tiles),
                *([is_op[Op.SETW] & is_dw
                   & (times(setw["aux"], cfg.rows) + taps > cfg.wgt_depth)] if cfg.pool else []),
            ],
            Error.ACC_RANGE: [
                is_op[Op.MATMUL] & _past_end(mm["acc_addr"], mm["m"], cfg.acc_depth),
                is_op[Op.VEC] & _past_end(vec["acc_addr"], vec["m"], cfg.acc_depth)],
            Error.QPARAM_RANGE: [
                is_op[Op.VEC] & (vec["q_addr"] >= cfg.qparam_depth),
                *([is_op[Op.POOL] & (f[Op.POOL]["q_addr"] >= cfg.qparam_depth - 1)]
                  if cfg.pool else [])],
        }, self._cost(m, opcode, f)

    def _cost(self, m, opcode, f):
        """``isa.cost`` of the instruction with ``opcode`` and these fields."""
        cfg = self.cfg
        Op = isa.Op
        load_cost = isa.load_cost(cfg)
        mm = f[Op.MATMUL]
        cost = Signal(range(isa.max_cost(cfg) + 1), name="d_cost")
        with m.Switch(opcode):
            with m.Case(Op.WAIT):
                m.d.comb += cost.eq(f[Op.WAIT]["cycles"])
            with m.Case(Op.LOADW):
                m.d.comb += cost.eq(load_cost)
            with m.Case(Op.MATMUL):
                with m.If(mm["preload"] & (mm["m"] < load_cost)):
                    m.d.comb += cost.eq(load_cost)
                with m.Else():
                    m.d.comb += cost.eq(mm["m"])
            with m.Case(Op.VEC):
                m.d.comb += cost.eq(f[Op.VEC]["m"] * cfg.vec_row_cycles)
            with m.Case(Op.FILL):
                m.d.comb += cost.eq(f[Op.FILL]["m"])
            if cfg.pool:
                with m.Case(Op.POOL):
                    m.d.comb += cost.eq(f[Op.POOL]["m"] + isa.POOL_PROLOGUE)
            with m.Default():
                m.d.comb += cost.eq(1)
        return cost


class _Walker:
    """An address walker: the byte address of the position a stream issues next, following a
    pattern register (docs/isa.md, SETP): after ``last + 1`` positions a line is done and the
    next starts ``line`` bytes after the line's first; within a line each position is ``step``
    bytes after the one before. Addresses wrap at the activation SRAM's size."""

    def __init__(self, m, name, width):
        self.addr = Signal(width, name=f"{name}_addr")
        self.line_addr = Signal(width, name=f"{name}_line")
        self.col = Signal(LINE_FIELD_BITS, name=f"{name}_col")

    def load(self, base):
        return [self.addr.eq(base), self.line_addr.eq(base), self.col.eq(0)]

    def advance(self, pattern):
        """Statements that move to the next position along ``pattern`` (a register)."""
        new_line = self.line_addr + pattern.line
        end = self.col == pattern.last
        return [
            self.addr.eq(Mux(end, new_line, self.addr + pattern.step)),
            self.line_addr.eq(Mux(end, new_line, self.line_addr)),
            self.col.eq(Mux(end, 0, self.col + 1)),
        ]


class _Countdown:
    """Cycles until an event (a write landing, the loader's last read): 0 once it has happened.
    ``idle`` and ``at_most(d)`` are registers, decided a cycle ahead."""

    def __init__(self, m, name, maximum, marks=()):
        self.m = m
        self.left = Signal(range(maximum + 1), name=f"{name}_left")
        self.idle = Signal(init=1, name=f"{name}_idle")
        self.marks = {d: Signal(init=1, name=f"{name}_le{d}") for d in marks}
        self._set = Signal(name=f"{name}_set")
        self._value = Signal.like(self.left, name=f"{name}_value")
        nxt = Mux(self._set, self._value, Mux(self.left == 0, 0, self.left - 1))
        m.d.sync += [self.left.eq(nxt), self.idle.eq(nxt == 0)]
        m.d.sync += [flag.eq(nxt <= d) for d, flag in self.marks.items()]

    def at_most(self, d):
        return self.marks[d]

    def set(self, value):
        """Statements (comb) that make ``left`` ``value`` in the next cycle."""
        return [self._set.eq(1), self._value.eq(value)]

    def clear(self):
        return [self.left.eq(0), self.idle.eq(1), *[f.eq(1) for f in self.marks.values()]]


def _first_error(checks):
    """The error code of the first failing check in ``checks`` (CHECK_ORDER), or NONE."""
    code = Const(isa.Error.NONE, ERROR_BITS)
    for index in reversed(range(len(CHECK_ORDER))):
        code = Mux(checks[index], CHECK_ORDER[index], code)
    return code


def _past_end(addr, count, depth):
    """``addr + count > depth``, with an adder as narrow as ``depth``: with k bits to
    ``depth``, an ``addr`` or ``count`` of 2**k or more is past the end by itself, and two
    numbers below 2**k have an exact (k + 1)-bit sum."""
    k = depth.bit_length()
    beyond = Const(0, 1)
    for value in (addr, count):
        if len(value) > k:
            beyond = beyond | value[k:].any()
    return beyond | (addr[:k] + count[:k] > depth)


def _fields(word, op):
    """The fields of instruction ``op`` sliced from ``word`` (signed ones as signed values)."""
    out = {}
    for f in isa.FIELDS[op]:
        value = word[f.lsb:f.lsb + f.width]
        out[f.name] = value.as_signed() if f.signed else value
    return out
