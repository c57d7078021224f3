"""The sequencer: fetches, checks and issues instructions, one fixed-cost instruction at a time.

Four stages: the program SRAM read and its output register (fetch), the checks and cost of
the word (decode, into registers) and the issuing of the instruction (execute); with
``cfg.decode_cycles`` = 2, decode takes two, the fields' compares and the cost registered first
(predecode). Since programs have no branches, the next words are always fetched and decoded
while the current instruction executes, so the pipeline costs cycles only once per run
(``isa.fetch_cycles``), and the SRAM addresses a cycle issues come from registers rather than
through the decoder.
"""

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from . import isa
from .config import ADDR_FIELD_BITS, COUNT_FIELD_BITS, GROUP_FIELD_BITS, QADDR_FIELD_BITS

__all__ = ["Sequencer", "matmul_issue_layout", "vec_issue_layout", "vec_step_bits"]

A = ADDR_FIELD_BITS
ERROR_BITS = max(isa.Error).bit_length()
#: The instruction checks in the order they are decided: the first that fails is the error.
CHECK_ORDER = (isa.Error.PC_OVERFLOW, isa.Error.ILLEGAL_OPCODE, isa.Error.BAD_FIELD,
               isa.Error.ACT_RANGE, isa.Error.WGT_RANGE, isa.Error.ACC_RANGE,
               isa.Error.QPARAM_RANGE)


def matmul_issue_layout():
    return data.StructLayout({
        "act_addr": unsigned(A), "acc_addr": unsigned(A), "accumulate": 1, "swap": 1,
    })


def vec_step_bits(cfg):
    """Width of the step index of a VEC row (0 .. vec_steps - 1); at least 1."""
    return max(1, (cfg.vec_steps - 1).bit_length())


def beat_bits(cfg):
    """Width of the cycle index within a VEC step (0 .. vec_mult_cycles - 1); 0 for K = 1."""
    return (cfg.vec_mult_cycles - 1).bit_length()


def vec_issue_layout(cfg):
    return data.StructLayout({
        "acc_addr": unsigned(A), "act_addr": unsigned(A), "q_addr": unsigned(QADDR_FIELD_BITS),
        "group": unsigned(GROUP_FIELD_BITS), "step": unsigned(vec_step_bits(cfg)),
        "zero_point": signed(8), "clamp_min": signed(8), "clamp_max": signed(8),
    })


class Sequencer(wiring.Component):
    """Runs the program in program SRAM from address 0 until HALT or an error.

    Members
    -------
    start : In(1)
        Pulse to start (ignored unless idle). Clears done, error and the counters.
    prog_addr : Out(range(prog_depth))
        Address for the program SRAM's synchronous read port (straight from a register).
    prog_en : Out(1)
        Read enable of that port: ``prog_data`` is the word at ``prog_addr`` one cycle after
        ``prog_en``, and holds while ``prog_en`` is low.
    prog_data : In(64)
    mm : Out(stream.Signature(matmul_issue_layout(), always_ready=True))
        One activation row to read and push through the array, and where its result goes.
    vec : Out(stream.Signature(vec_issue_layout(cfg), always_ready=True))
        One accumulator row to requantise, and where its int8 result goes; ``step`` says which
        ``vec_lanes`` of the row's lane group (cfg.vec_steps steps per row). Valid in the first
        of each step's ``cfg.vec_mult_cycles`` cycles only (the serial multiplier's pace).
    load : Out(stream.Signature(unsigned(14), always_ready=True))
        Start of a weight-tile load at the given weight SRAM row.
    busy, done : Out(1)
    error : Out(3)
        An :class:`isa.Error` code, valid once ``done``.
    err_pc : Out(range(prog_depth + 1))
    cycles, mac_cycles, instret : Out(32)
        Counters of the last run (see rtl/hostmap.py, Reg).

    Timing: START in cycle x; cycles x+1 and x+2 fetch word 0, the next ``cfg.decode_cycles``
    decode it; the first instruction starts ``isa.fetch_cycles(cfg)`` (3 or 4) cycles after
    cycle x. Each
    instruction occupies exactly ``isa.cost`` cycles once it has started, and the next one
    starts in the cycle after. A MATMUL starts only when the last VEC's activation writes have
    landed, a VEC only when the last MATMUL's accumulator writes have landed, and HALT (or a
    faulting instruction) only when both have. Its last cycle is the last busy cycle, so CYCLES
    counts fetch and decode, every instruction and every interlock wait.
    """

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__({
            "start": In(1),
            "prog_addr": Out(range(cfg.prog_depth)),
            "prog_en": Out(1),
            "prog_data": In(isa.INSTR_BITS),
            "mm": Out(stream.Signature(matmul_issue_layout(), always_ready=True)),
            "vec": Out(stream.Signature(vec_issue_layout(cfg), always_ready=True)),
            "load": Out(stream.Signature(unsigned(A), always_ready=True)),
            "busy": Out(1),
            "done": Out(1),
            "error": Out(ERROR_BITS),
            "err_pc": Out(range(cfg.prog_depth + 1)),
            "cycles": Out(32),
            "mac_cycles": Out(32),
            "instret": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        Op = isa.Op

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
        # The SRAM rows the next issue cycle addresses, kept in registers rather than summed
        # from the fields: MATMUL activation/accumulator rows, VEC accumulator/activation rows.
        ptr_a = Signal(A)
        ptr_b = Signal(A)
        # The VEC row's cycle: step (cfg.vec_steps per row) times vec_mult_cycles, plus the
        # cycle within the step, whose first cycle alone issues.
        step = Signal(vec_step_bits(cfg) + beat_bits(cfg))
        mm_rows = Signal(COUNT_FIELD_BITS)    # MATMUL rows left to issue after this one
        mm_more = Signal()                    # a MATMUL row is issued this cycle
        mm_idle = Signal(init=1)              # mm_left == 0, as a register
        vec_idle = Signal(init=1)             # vec_left == 0, as a register
        max_m = 2 ** COUNT_FIELD_BITS - 1
        mm_left = Signal(range(isa.matmul_settle(cfg, max_m) + 1))
        vec_left = Signal(range(isa.vec_settle(cfg, max_m) + 1))
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
        # shares a cycle with the other (docs/benchmarks.md, "The ECP5 at 100 MHz").
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
        p_mm, p_vec = _fields(p_word, Op.MATMUL), _fields(p_word, Op.VEC)
        with m.If(advance):
            m.d.sync += [ir.eq(p_word), checks.eq(p_checks), left.eq(p_cost), pc.eq(p_dpc),
                         last.eq(p_last), stops.eq(p_checks.any() | p_op[Op.HALT]),
                         first.eq(1), started.eq(0), step.eq(0),
                         ptr_a.eq(Mux(p_op[Op.VEC], p_vec["acc_addr"], p_mm["act_addr"])),
                         ptr_b.eq(Mux(p_op[Op.VEC], p_vec["act_addr"], p_mm["acc_addr"])),
                         mm_rows.eq(p_mm["m"] - 1), mm_more.eq(p_op[Op.MATMUL])]
            m.d.sync += [is_op[op].eq(p_op[op]) for op in Op]

        mm_f, vec_f = _fields(ir, Op.MATMUL), _fields(ir, Op.VEC)
        ld_f, setq_f = _fields(ir, Op.LOADW), _fields(ir, Op.SETQ)

        # -- execute: interlocks, then cost cycles of issue -------------------------------------
        settled = mm_idle & vec_idle
        can_start = Mux(is_op[Op.MATMUL], vec_idle, Mux(is_op[Op.VEC], mm_idle, 1))

        with m.If(~mm_idle):
            m.d.sync += [mm_left.eq(mm_left - 1), mm_idle.eq(mm_left == 1)]
        with m.If(~vec_idle):
            m.d.sync += [vec_left.eq(vec_left - 1), vec_idle.eq(vec_left == 1)]

        self._payloads(m, started, is_op, mm_f, vec_f, ld_f,
                       zero_point, clamp_min, clamp_max, ptr_a, ptr_b, step)

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
                        dpc.eq(0), addr_next.eq(0), halting.eq(0), mm_idle.eq(1), vec_idle.eq(1),
                        mm_left.eq(0), vec_left.eq(0),
                        zero_point.eq(0), clamp_min.eq(-128), clamp_max.eq(127),
                    ]
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
                    self._issue(m, started, is_op, mm_f, vec_f, ld_f, setq_f, cfg,
                                zero_point, clamp_min, clamp_max, ptr_a, ptr_b, step, mm_more)
                    with m.If(~started):   # the first issue cycle: the settle counters start
                        with m.If(is_op[Op.MATMUL]):
                            m.d.sync += [mm_left.eq(isa.matmul_settle(cfg, 0) + mm_f["m"] - 1),
                                         mm_idle.eq(0)]
                        with m.If(is_op[Op.VEC]):
                            m.d.sync += [vec_left.eq(isa.vec_settle(cfg, 0)
                                                     + vec_f["m"] * cfg.vec_row_cycles - 1),
                                         vec_idle.eq(0)]
                    with m.If(last):
                        m.d.comb += advance.eq(1)
                        m.d.sync += self.instret.eq(self.instret + 1)
                    with m.Else():   # it goes on (on its last cycle, advance loads the next)
                        m.d.sync += [first.eq(0), started.eq(1), left.eq(left - 1),
                                     last.eq(left == 2)]
                        with m.If(is_op[Op.MATMUL] & mm_more):
                            m.d.sync += [ptr_a.eq(ptr_a + 1), ptr_b.eq(ptr_b + 1),
                                         mm_rows.eq(mm_rows - 1), mm_more.eq(mm_rows != 0)]
                        with m.If(is_op[Op.VEC]):
                            m.d.sync += step.eq(step + 1)
                            with m.If(step == cfg.vec_row_cycles - 1):
                                m.d.sync += [step.eq(0), ptr_a.eq(ptr_a + 1), ptr_b.eq(ptr_b + 1)]
                with m.Else():
                    m.d.sync += first.eq(0)

            with m.State("STOP"):
                # Let earlier instructions' writes land before the host may look at the SRAMs.
                m.d.sync += self.cycles.eq(self.cycles + 1)
                with m.If(settled):
                    with m.If(halting):
                        m.d.sync += self.instret.eq(self.instret + 1)
                    finish()

        with m.If(self.mm.valid):
            m.d.sync += self.mac_cycles.eq(self.mac_cycles + 1)
        return m

    def _decode(self, m, word, addr):
        """One-hot opcode, the failing conditions (for each error code, a list of terms: the
        check fails if any term is set; ``isa.check``'s, and PC_OVERFLOW when ``addr`` is past
        the end) and cost (``isa.cost``) of the instruction ``word`` fetched from ``addr``."""
        cfg = self.cfg
        Op = isa.Op
        opcode = word[isa.OPCODE_LSB:isa.OPCODE_LSB + isa.OPCODE_BITS]
        mm_f, vec_f, ld_f = _fields(word, Op.MATMUL), _fields(word, Op.VEC), _fields(word, Op.LOADW)
        wait_f, setq_f = _fields(word, Op.WAIT), _fields(word, Op.SETQ)
        is_op = {op: opcode == op for op in Op}

        # -- checks, in the order of isa.check: the lowest error code wins ----------------------
        reserved = Const(0, 1)
        for op in Op:
            reserved = reserved | (is_op[op] & (word & isa.reserved_mask(op)).any())
        Error = isa.Error
        # (wgt_depth >= R: rtl/config.py)
        return is_op, {
            Error.PC_OVERFLOW: [addr >= cfg.prog_depth],
            Error.ILLEGAL_OPCODE: [~Cat(is_op.values()).any()],
            Error.BAD_FIELD: [
                reserved,
                is_op[Op.WAIT] & (wait_f["cycles"] == 0),
                is_op[Op.MATMUL] & (mm_f["m"] == 0),
                is_op[Op.VEC] & (vec_f["m"] == 0),
                is_op[Op.MATMUL] & ~mm_f["preload"] & (mm_f["wgt_addr"] != 0),
                is_op[Op.VEC] & (vec_f["group"] >= cfg.groups),
                is_op[Op.SETQ] & (setq_f["clamp_min"] > setq_f["clamp_max"])],
            Error.ACT_RANGE: [
                is_op[Op.MATMUL] & _past_end(mm_f["act_addr"], mm_f["m"], cfg.act_depth),
                is_op[Op.VEC] & _past_end(vec_f["act_addr"], vec_f["m"], cfg.act_depth)],
            Error.WGT_RANGE: [
                is_op[Op.MATMUL] & mm_f["preload"] & (mm_f["wgt_addr"] > cfg.wgt_depth - cfg.rows),
                is_op[Op.LOADW] & (ld_f["wgt_addr"] > cfg.wgt_depth - cfg.rows)],
            Error.ACC_RANGE: [
                is_op[Op.MATMUL] & _past_end(mm_f["acc_addr"], mm_f["m"], cfg.acc_depth),
                is_op[Op.VEC] & _past_end(vec_f["acc_addr"], vec_f["m"], cfg.acc_depth)],
            Error.QPARAM_RANGE: [is_op[Op.VEC] & (vec_f["q_addr"] >= cfg.qparam_depth)],
        }, self._cost(m, opcode, mm_f, vec_f, wait_f)

    def _cost(self, m, opcode, mm_f, vec_f, wait_f):
        """``isa.cost`` of the instruction with ``opcode`` and these fields."""
        cfg = self.cfg
        Op = isa.Op
        load_cost = isa.load_cost(cfg)
        cost = Signal(range(isa.max_cost(cfg) + 1), name="d_cost")
        with m.Switch(opcode):
            with m.Case(Op.WAIT):
                m.d.comb += cost.eq(wait_f["cycles"])
            with m.Case(Op.LOADW):
                m.d.comb += cost.eq(load_cost)
            with m.Case(Op.MATMUL):
                with m.If(mm_f["preload"] & (mm_f["m"] < load_cost)):
                    m.d.comb += cost.eq(load_cost)
                with m.Else():
                    m.d.comb += cost.eq(mm_f["m"])
            with m.Case(Op.VEC):
                m.d.comb += cost.eq(vec_f["m"] * cfg.vec_row_cycles)
            with m.Default():
                m.d.comb += cost.eq(1)
        return cost

    def _issue(self, m, started, is_op, mm_f, vec_f, ld_f, setq_f, cfg,
               zero_point, clamp_min, clamp_max, ptr_a, ptr_b, step, mm_more):
        """What one issue cycle of the current instruction drives (``started`` is low in the
        first one): the valid bits and SETQ's registers. The payloads come straight from
        registers (:meth:`_payloads`); the pointers and counters it advances are updated by the
        caller."""
        Op = isa.Op
        first_cycle = ~started
        with m.If(is_op[Op.MATMUL]):
            m.d.comb += self.mm.valid.eq(mm_more)
            with m.If(first_cycle):
                m.d.comb += self.load.valid.eq(mm_f["preload"])
        with m.If(is_op[Op.LOADW] & first_cycle):
            m.d.comb += self.load.valid.eq(1)
        with m.If(is_op[Op.VEC]):
            # A step is issued in the first of its vec_mult_cycles cycles.
            beats = beat_bits(cfg)
            m.d.comb += self.vec.valid.eq(step[:beats] == 0 if beats else 1)
        with m.If(is_op[Op.SETQ] & first_cycle):
            m.d.sync += [zero_point.eq(setq_f["zero_point"]), clamp_min.eq(setq_f["clamp_min"]),
                         clamp_max.eq(setq_f["clamp_max"])]

    def _payloads(self, m, started, is_op, mm_f, vec_f, ld_f,
                  zero_point, clamp_min, clamp_max, ptr_a, ptr_b, step):
        """The issue payloads, driven every cycle from registers whether valid or not, so that
        the SRAM addresses do not wait for the interlock and issue logic."""
        Op = isa.Op
        m.d.comb += [
            self.mm.payload.act_addr.eq(ptr_a),
            self.mm.payload.acc_addr.eq(ptr_b),
            self.mm.payload.accumulate.eq(mm_f["accumulate"]),
            self.mm.payload.swap.eq(mm_f["swap"] & ~started),
            self.load.payload.eq(Mux(is_op[Op.LOADW], ld_f["wgt_addr"], mm_f["wgt_addr"])),
            self.vec.payload.acc_addr.eq(ptr_a),
            self.vec.payload.act_addr.eq(ptr_b),
            self.vec.payload.step.eq(step[beat_bits(self.cfg):]),
            self.vec.payload.q_addr.eq(vec_f["q_addr"]),
            self.vec.payload.group.eq(vec_f["group"]),
            self.vec.payload.zero_point.eq(zero_point),
            self.vec.payload.clamp_min.eq(clamp_min),
            self.vec.payload.clamp_max.eq(clamp_max),
        ]

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
