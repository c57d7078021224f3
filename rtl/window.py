"""The window unit: depthwise convolution, average and max pooling over a sliding window, global
sums, and TFLite's residual add, on ``lanes`` channels at a time (POOL, docs/isa.md)."""

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .isa import Window, act_read_latency, window_latency
from .lutmath import partial_products, reduce_tree
from .sequencer import WINDOW, pool_issue_layout, window_layout
from .vecfeed import vec_tag_layout
from .vector import input_layout

__all__ = ["WindowUnit"]

#: Rows of the window the line buffers keep: all but the newest.
OLD_ROWS = WINDOW - 1
#: TFLite's Add: inputs shifted left by 20, so SaturatingRoundingDoublingHighMul(v << 20, m) is
#: floor((v * m + 2**10) / 2**11) for the 9-bit v (rtl/vector.py shows the nudge's algebra).
ADD_ROUND_BITS = 11


class WindowUnit(wiring.Component):
    """Combines the inputs of a POOL per lane and hands each result, with the POOL's
    requantisation parameters, to the vector unit.

    Per lane (``cfg.pool_lanes`` = ``cfg.vec_lanes`` channels; v = x - zp, 9 bits):

    * DW: the sum over the kh x kw window of v times the window position's weight;
    * AVG: the sum of v over the window; MAX: its maximum;
    * SUM: the sum of v over all the POOL's inputs, a result with the last one;
    * ADD: ``RoundingDivideByPOT(SRDHM(v << 20, m), s)`` of an input of A plus the same of the
      next input, of B (each with its own zero point, multiplier and shift).

    The window is 3 x 3; a smaller kernel sits in its bottom-right corner. Its newest column
    is the input; the two rows above come from line buffers (``cfg.pool_line`` positions
    each) indexed by the input's place in its line. The weights (DW) or ones (AVG) of the
    window positions, and which positions the kernel covers, are loaded in the POOL's first 9
    cycles; ADD's scales and the requantisation's parameters in its first 2.

    Members
    -------
    issue : In(stream.Signature(pool_issue_layout(cfg), always_ready=True))
        The sequencer's POOL inputs, in the cycle their windows are read.
    x : In(ArrayLayout(unsigned(8), R))
        The activation window of an input, ``isa.act_read_latency - 1`` cycles after its issue
        (the activation memory's ``read_data``).
    window : In(window_layout())
        SETW's registers (op, kernel, zero points).
    tap : In(stream.Signature(unsigned(4), always_ready=True))
        A window position to load (0..8), in a POOL's prologue; ``tap_covered`` says whether
        the kernel covers it.
    tap_covered : In(1)
    wgt_data : In(8 * C)
        The weight SRAM's read data, a cycle after ``tap``.
    q : In(stream.Signature(unsigned(1), always_ready=True))
        A parameter row read in the prologue: ``payload`` 0 is row q + 1 (ADD's scales, lanes
        0 and 1), 1 is row q (the requantisation's).
    bias_data, mult_data, shift_data : In
        The parameter memories' read data, a cycle after ``q``.
    o : Out(stream.Signature(input_layout(lanes, tag), always_ready=True))
        A result for the vector unit, from registers: ``isa.window_latency()`` cycles after its
        input's window reached the unit's input register (``isa.act_read_latency`` after the
        issue).

    Timing
    ------
    One input a cycle, no back-pressure, after a prologue of ``isa.POOL_PROLOGUE`` cycles
    (taps, weights and parameters); each result on ``o`` ``isa.window_latency()`` cycles after
    its input's window reached the input register. ``isa.pool_depth`` and ``isa.pool_settle``
    give the whole POOL's timing.
    """

    def __init__(self, cfg):
        self.cfg = cfg
        lanes = cfg.pool_lanes
        tag = vec_tag_layout(cfg)
        super().__init__({
            "issue": In(stream.Signature(pool_issue_layout(cfg), always_ready=True)),
            "x": In(data.ArrayLayout(unsigned(8), cfg.rows)),
            "window": In(window_layout()),
            "tap": In(stream.Signature(unsigned(4), always_ready=True)),
            "tap_covered": In(1),
            "wgt_data": In(8 * cfg.cols),
            "q": In(stream.Signature(unsigned(1), always_ready=True)),
            "bias_data": In(32 * lanes),
            "mult_data": In(32 * lanes),
            "shift_data": In(8 * lanes),
            "o": Out(stream.Signature(input_layout(lanes, tag.size), always_ready=True)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        lanes = cfg.pool_lanes
        win = self.window
        kind = win.op
        latency = window_latency()
        positions = WINDOW * WINDOW

        # -- the prologue: weights (or ones) and coverage of the window positions; parameters
        taps = [[Signal(signed(8), name=f"tap{p}_{j}", reset_less=True) for j in range(lanes)]
                for p in range(positions)]
        covered = Signal(positions, name="covered")
        tap_valid = Signal()
        tap_pos = Signal(4)
        tap_cov = Signal()
        m.d.sync += [tap_valid.eq(self.tap.valid), tap_pos.eq(self.tap.payload),
                     tap_cov.eq(self.tap_covered)]
        with m.If(tap_valid):
            with m.Switch(tap_pos):
                for p in range(positions):
                    with m.Case(p):
                        m.d.sync += covered[p].eq(tap_cov)
                        for j in range(lanes):
                            weight = Mux(kind == Window.AVG, 1,
                                         self.wgt_data[8 * j:8 * j + 8].as_signed())
                            m.d.sync += taps[p][j].eq(Mux(tap_cov, weight, 0))

        q_valid, q_second = Signal(), Signal()
        m.d.sync += [q_valid.eq(self.q.valid), q_second.eq(self.q.payload)]
        bias = Signal(32 * lanes, reset_less=True)
        mult = Signal(32 * lanes, reset_less=True)
        shift = Signal(8 * lanes, reset_less=True)
        add_mult = [Signal(signed(32), name=f"add_mult_{k}", reset_less=True) for k in "ab"]
        add_shift = [Signal(5, name=f"add_shift_{k}", reset_less=True) for k in "ab"]
        with m.If(q_valid & q_second):
            m.d.sync += [bias.eq(self.bias_data), mult.eq(self.mult_data),
                         shift.eq(self.shift_data)]
        with m.If(q_valid & ~q_second):
            for k in range(2):
                m.d.sync += [add_mult[k].eq(self.mult_data[32 * k:32 * k + 32]),
                             add_shift[k].eq(self.shift_data[8 * k:8 * k + 5])]

        # -- c0: the input register; the line buffers are read a cycle before -------------------
        issue_layout = data.StructLayout({"valid": 1, "payload": pool_issue_layout(cfg)})
        early = Signal(issue_layout, name="issue")
        m.d.comb += [early.valid.eq(self.issue.valid), early.payload.eq(self.issue.payload)]
        for stage in range(act_read_latency(cfg) - 1):
            reg = Signal.like(early, name=f"issue_d{stage + 1}")
            m.d.sync += reg.eq(early)
            early = reg
        line = Memory(shape=unsigned(8 * lanes * OLD_ROWS), depth=cfg.pool_line, init=[])
        m.submodules.line_buffer = line
        line_rd, line_wr = line.read_port(), line.write_port()
        m.d.comb += line_rd.addr.eq(early.payload.ix)
        c0 = Signal(issue_layout, name="c0")
        x0 = Signal(data.ArrayLayout(unsigned(8), lanes), reset_less=True)
        m.d.sync += [c0.eq(early)]
        m.d.sync += [x0[j].eq(self.x[j]) for j in range(lanes)]
        older = line_rd.data                    # rows iy - 2, iy - 1 of this column, per lane
        m.d.comb += [line_wr.addr.eq(c0.payload.ix),
                     line_wr.data.eq(Cat(older[8 * lanes:], x0.as_value())),
                     line_wr.en.eq(c0.valid & (kind <= Window.MAX))]

        zp = Mux(c0.payload.b, win.zp_b, win.zp_a)
        v0 = [(x0[j].as_signed() - zp)[:9].as_signed() for j in range(lanes)]
        column = [[(older[8 * (r * lanes + j):8 * (r * lanes + j) + 8].as_signed()
                    - win.zp_a)[:9].as_signed() for j in range(lanes)] for r in range(OLD_ROWS)]
        column.append(v0)

        # c1: the 3 x 3 window (position wy * 3 + wx; column 2 the newest), and v of the input.
        wins = [[Signal(signed(9), name=f"win{p}_{j}", reset_less=True) for j in range(lanes)]
                for p in range(positions)]
        with m.If(c0.valid):
            for wy in range(WINDOW):
                for wx in range(WINDOW):
                    for j in range(lanes):
                        src = (wins[wy * WINDOW + wx + 1][j] if wx < WINDOW - 1
                               else column[wy][j])
                        m.d.sync += wins[wy * WINDOW + wx][j].eq(src)
        c1 = Signal(issue_layout, name="c1")
        v1 = [Signal(signed(9), name=f"v1_{j}", reset_less=True) for j in range(lanes)]
        m.d.sync += [c1.eq(c0)] + [v1[j].eq(v0[j]) for j in range(lanes)]

        # -- the results, each registered to arrive at the output after ``latency`` cycles ----
        stages_left = latency - 1      # c1 -> the output register
        results = []
        for j in range(lanes):
            # DW / AVG: products (8 partial products each, 3 levels), then the 9-term sum.
            products = []
            for p in range(positions):
                value, used = reduce_tree(m, partial_products(wins[p][j], taps[p][j]),
                                          lambda a, b: a + b, signed(17), f"dwp{p}_{j}")
                products.append(value)
            dw_sum, used2 = reduce_tree(m, products, lambda a, b: a + b, signed(21),
                                        f"dws_{j}", levels_per_stage=2)
            # MAX: the covered positions' values, the others below any value.
            masked = [Mux(covered[p], wins[p][j], -256) for p in range(positions)]
            mx, used3 = reduce_tree(m, masked, lambda a, b: Mux(a > b, a, b), signed(10),
                                    f"max_{j}", levels_per_stage=2)
            # SUM: v of every input since the first.
            acc = Signal(signed(24), name=f"sum_{j}", reset_less=True)
            with m.If(c1.valid):
                m.d.sync += acc.eq(Mux(c1.payload.first, 0, acc) + v1[j])
            # ADD: each input rescaled; B's result plus the A result before it.
            add_y = self._rescale(m, j, v1[j], c1.payload.b, add_mult, add_shift)
            results.append(((used + used2, dw_sum), (used3, mx), (1, acc), add_y))

        # Align: each kind's value to the register before the output, then select.
        out_stage = stages_left - 1
        selected = []
        for j, ((dw_used, dw_sum), (mx_used, mx), (sum_used, acc), (add_used, add)) in \
                enumerate(results):
            aligned = {}
            for key, used, value in (("dw", dw_used, dw_sum), ("max", mx_used, mx),
                                     ("sum", sum_used, acc), ("add", add_used, add)):
                for stage in range(used, out_stage):
                    reg = Signal.like(value, name=f"{key}_{j}_d{stage}")
                    m.d.sync += reg.eq(value)
                    value = reg
                assert used <= out_stage, (key, used, out_stage)
                aligned[key] = value
            selected.append(Mux(kind == Window.MAX, aligned["max"],
                                Mux(kind == Window.SUM, aligned["sum"],
                                    Mux(kind == Window.ADD, aligned["add"], aligned["dw"]))))

        tag = c1
        for stage in range(out_stage):
            reg = Signal.like(tag, name=f"tag_d{stage + 2}")
            m.d.sync += reg.eq(tag)
            tag = reg
        o = self.o.payload
        valid = Signal()
        m.d.sync += valid.eq(tag.valid & tag.payload.emit)
        m.d.comb += self.o.valid.eq(valid)
        m.d.sync += [o.acc[j].eq(selected[j]) for j in range(lanes)]
        m.d.sync += [
            o.bias.eq(bias), o.mult.eq(mult),
            o.zero_point.eq(tag.payload.zero_point), o.clamp_min.eq(tag.payload.clamp_min),
            o.clamp_max.eq(tag.payload.clamp_max),
            o.tag.eq(Cat(tag.payload.out_addr, tag.payload.count, Const(0, 8))),
        ]
        m.d.sync += [o.shift[j].eq(shift[8 * j:8 * j + 5]) for j in range(lanes)]
        return m

    def _rescale(self, m, j, v, is_b, add_mult, add_shift):
        """TFLite's rescaling of one Add input in lane ``j``, then B's result plus the A
        result before it: (registers used after c1, the value)."""
        mult = Array(add_mult)[is_b]
        shift = Array(add_shift)[is_b]
        # c1 -> 3 levels of the 9 partial products (v's bits) of v * m.
        product, used = reduce_tree(m, partial_products(mult, v), lambda a, b: a + b,
                                    signed(41), f"addp_{j}", levels_per_stage=1)
        s = shift
        for stage in range(used):
            reg = Signal(5, name=f"adds_{j}_d{stage}", reset_less=True)
            m.d.sync += reg.eq(s)
            s = reg
        b = is_b
        for stage in range(used):
            reg = Signal(name=f"addb_{j}_d{stage}")
            m.d.sync += reg.eq(b)
            b = reg
        # SRDHM(v << 20, m) and RoundingDivideByPOT's rounding term, then its shift.
        high = Signal(signed(32), name=f"add_high_{j}", reset_less=True)
        s1 = Signal(5, name=f"add_s1_{j}", reset_less=True)
        b1 = Signal(name=f"add_b1_{j}")
        m.d.sync += [high.eq((product + (1 << (ADD_ROUND_BITS - 1))) >> ADD_ROUND_BITS),
                     s1.eq(s), b1.eq(b)]
        rounded = Signal(signed(33), name=f"add_round_{j}", reset_less=True)
        s2 = Signal(5, name=f"add_s2_{j}", reset_less=True)
        b2 = Signal(name=f"add_b2_{j}")
        half = (Const(1, 32) << s1) >> 1
        m.d.sync += [rounded.eq(high + half - (high[31] & (s1 != 0))), s2.eq(s1), b2.eq(b1)]
        y = Signal(signed(32), name=f"add_y_{j}", reset_less=True)
        b3 = Signal(name=f"add_b3_{j}")
        m.d.sync += [y.eq(rounded >> s2), b3.eq(b2)]
        # The A result waits a cycle for B's.
        a_held = Signal(signed(32), name=f"add_a_{j}", reset_less=True)
        total = Signal(signed(32), name=f"add_total_{j}", reset_less=True)
        m.d.sync += [a_held.eq(y), total.eq(a_held + y)]
        return used + 4, total
