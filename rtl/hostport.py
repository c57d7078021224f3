"""The core's host port: decodes host-bus accesses into SRAM writes, START and register reads."""

from amaranth import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .delay import below, delay, padded, row_slot
from .hostbus import HostBusSignature
from .hostmap import DATA_BITS, QPARAM_FIELDS, REGION_BITS, STATUS_ERROR_SHIFT, HostMap, Reg, Region
from .sequencer import ERROR_BITS

__all__ = ["HostPort", "qparam_slots"]


def qparam_slots(cfg):
    """Memory rows per requantisation parameter row: the parameter SRAMs are ``vec_lanes``
    channels wide, so a parameter row of C channels is C / vec_lanes memory rows."""
    return cfg.cols // cfg.vec_lanes


class HostPort(wiring.Component):
    """Turns host-bus accesses (rtl/hostbus.py, rtl/hostmap.py) into SRAM writes, the START
    pulse and register reads, and selects the word a read returns from the SRAMs' rows.

    The port multiplexing (the core owns the SRAMs while busy) is the core's: this block says
    what the host would do to each SRAM, the core lets it while idle.

    Members
    -------
    host : In(HostBusSignature(cfg))
        The host bus.
    busy : In(1)
        The core runs: SRAM reads answer 0 (the registers still answer).
    done, error, cycles, mac_cycles, instret, err_pc : In
        The sequencer's status and counters, for STATUS and the counter registers.
    start : Out(1)
        A write of CTRL_START to CTRL, registered: one pulse.
    row : Out(row_bits)
        The SRAM row the access addresses (prog, act, wgt, acc: read and write address).
    q_row : Out
        The parameter memories' row the access addresses (:func:`qparam_slots` per row).
    w_data : Out(32)
        The word to write.
    prog_w_en, act_w_en, wgt_w_en, acc_w_en : Out(lanes)
        Write enables of each SRAM's lanes (2 words of a program row; the words of an
        activation row; C byte lanes; C int32 lanes), not yet gated by ``busy``.
    bias_w_en, mult_w_en, shift_w_en : Out(vec_lanes)
        Write enables of the parameter memories' lanes.
    prog_row, act_row, wgt_row, acc_row, bias_row, mult_row, shift_row : In
        The SRAMs' read data, one cycle after ``row`` / ``q_row`` (their read ports' data).

    Timing
    ------
    With ``cfg.host_read_latency`` = L, ``row``, ``q_row``, ``w_data`` and the write
    enables are the access of the same cycle (L <= 3) or of the cycle before (L = 4: each access
    is decoded into registers first, and acts a cycle later); ``start`` a cycle after that. A
    read's word is registered in ``host.r_data`` with ``host.r_valid`` L cycles after the
    access: the SRAM read, then (L >= 3) a register for every SRAM's row, then the word
    selected into ``r_data``.
    """

    def __init__(self, cfg):
        self.cfg = cfg
        self.map = hmap = HostMap(cfg)
        slots = qparam_slots(cfg)
        vl = cfg.vec_lanes
        super().__init__({
            "host": In(HostBusSignature(cfg)),
            "busy": In(1),
            "done": In(1),
            "error": In(ERROR_BITS),
            "cycles": In(32),
            "mac_cycles": In(32),
            "instret": In(32),
            "err_pc": In(range(cfg.prog_depth + 1)),
            "start": Out(1),
            "row": Out(hmap.row_bits),
            "q_row": Out(range(cfg.qparam_depth * slots)),
            "w_data": Out(DATA_BITS),
            "prog_w_en": Out(2),
            "act_w_en": Out(cfg.act_row_bytes // 4),
            "wgt_w_en": Out(cfg.cols),
            "acc_w_en": Out(cfg.cols),
            "bias_w_en": Out(vl),
            "mult_w_en": Out(vl),
            "shift_w_en": Out(vl),
            "prog_row": In(64),
            "act_row": In(8 * cfg.act_row_bytes),
            "wgt_row": In(8 * cfg.cols),
            "acc_row": In(32 * cfg.cols),
            "bias_row": In(32 * vl),
            "mult_row": In(32 * vl),
            "shift_row": In(8 * vl),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, hmap = self.cfg, self.map
        cols, vec_lanes = cfg.cols, cfg.vec_lanes
        qslots = qparam_slots(cfg)

        # With cfg.host_read_latency = 4 every host access is decoded in the bus cycle and acts a
        # cycle later, from registers (``staged``): an SRAM's write enables come from flip-flops
        # of their own rather than from the address compares, and the SRAM banks are spread
        # over the chip. Reads, writes and START keep their order: the whole port is a cycle
        # late, as if the bus had one more register.
        host = self.host
        row = host.addr[:hmap.row_bits]
        word = host.addr[hmap.row_bits:hmap.row_bits + hmap.word_bits]
        region = host.addr[hmap.row_bits + hmap.word_bits:]
        assert len(region) == REGION_BITS
        decode_stage = max(0, cfg.host_read_latency - 3)     # 1 with a latency of 4

        def staged(value, name, reset_less=False):
            return delay(m, value, decode_stage, f"host_{name}", reset_less=reset_less)

        def host_hits(r):
            return ((region == r) & below(row, hmap.depth(r))
                    & below(word, hmap.words_per_row(r)))

        h_row, h_word, h_data = (staged(value, name, reset_less=True)
                                 for name, value in (("row", row), ("word", word),
                                                     ("w_data", host.w_data)))
        m.d.comb += [self.row.eq(h_row), self.w_data.eq(h_data)]

        def write_enables(r, lanes_per_word, lane_count):
            """The write lanes of region ``r`` that this access writes, ``lanes_per_word`` to a
            32-bit word, as the SRAM sees them."""
            lanes = Cat(lane // max(1, lanes_per_word) == word for lane in range(lane_count))
            return staged(Mux(host.w_en & host_hits(r), lanes, 0), f"{r.name.lower()}_w_en")

        # The start is registered: the host port's decode and the sequencer's clearing of its
        # registers each get a cycle (so the core is busy from the second cycle after the CTRL
        # write, docs/isa.md; a cycle later with the decode stage).
        m.d.sync += self.start.eq(staged(host.w_en & (region == Region.CTRL) & (word == 0)
                                         & (row == Reg.CTRL) & host.w_data[0], "start"))

        m.d.comb += [
            self.act_w_en.eq(write_enables(Region.ACT, 1, cfg.act_row_bytes // 4)),
            self.acc_w_en.eq(write_enables(Region.ACC, 1, cols)),
            self.prog_w_en.eq(write_enables(Region.PROG, 1, 2)),
            self.wgt_w_en.eq(write_enables(Region.WGT, 4, cols)),
        ]

        # QPARAM words: 4 per channel (bias, mult, shift, reserved).
        channel, kind = word[2:], word[:2]
        channel_slot = Array(Const(c // vec_lanes, range(qslots)) for c in range(cols))
        channel_lane = Array(Const(c % vec_lanes, range(vec_lanes)) for c in range(cols))
        m.d.comb += self.q_row.eq(staged(row_slot(row, channel_slot[channel], qslots), "q_addr",
                                         reset_less=True))
        for enables, k in ((self.bias_w_en, 0), (self.mult_w_en, 1), (self.shift_w_en, 2)):
            lanes = (Const(1, vec_lanes) << channel_lane[channel])[:vec_lanes]
            m.d.comb += enables.eq(staged(
                Mux(host.w_en & host_hits(Region.QPARAM) & (kind == k), lanes, 0),
                f"{QPARAM_FIELDS[k]}_w_en"))

        # -- host reads: cfg.host_read_latency cycles ------------------------------------------
        # The SRAM word is selected in the cycle after the read and registered here, next to
        # the SRAMs: a block RAM's output must not travel to the host link in the same cycle.
        # With a latency of 3, each SRAM's output row is registered first (``lag``), and the word
        # is selected from those registers a cycle later: on an ECP5 at 100 MHz, a block RAM's
        # clock-to-output leaves too little of the cycle for the selection behind it. A latency
        # of 4 is that and the decode stage in front of the SRAMs.
        busy = self.busy
        lag = cfg.host_read_latency - 2 - decode_stage
        h_read = staged(host.r_en & Cat(host_hits(r) for r in Region).any(), "r_hit")
        h_ctrl = staged(region == Region.CTRL, "r_ctrl")
        r_region = Signal(REGION_BITS)
        r_word = Signal(hmap.word_bits)
        r_hit = Signal()
        r_reg = Signal(DATA_BITS)
        r_data = Signal(DATA_BITS)
        r_valid = Signal()
        m.d.sync += [
            r_valid.eq(staged(host.r_en, "r_en")),
            host.r_valid.eq(delay(m, r_valid, lag, "host_r_valid")),
            host.r_data.eq(r_data),
            r_region.eq(staged(region, "region", reset_less=True)),
            r_word.eq(h_word),
            r_hit.eq(h_read & (h_ctrl | ~busy)),
        ]
        status = Cat(busy, self.done, Const(0, STATUS_ERROR_SHIFT - 2), self.error)
        registers = {
            Reg.CTRL: Const(0, 1), Reg.STATUS: status, Reg.CYCLES: self.cycles,
            Reg.MAC_CYCLES: self.mac_cycles, Reg.INSTRET: self.instret, Reg.ERR_PC: self.err_pc,
        }
        registers.update(hmap.register_values())
        with m.Switch(h_row):       # a register is a row of Region.CTRL
            for reg, value in registers.items():
                with m.Case(reg):
                    m.d.sync += r_reg.eq(value)

        # What the word select sees: the SRAM rows and the read's fields, ``lag`` cycles later.
        r_hit = delay(m, r_hit, lag, "host_hit")      # r_data is 0 without r_valid
        r_region, r_word, r_reg = (
            delay(m, value, lag, f"host_{name}", reset_less=True)
            for name, value in (("region", r_region), ("word", r_word), ("reg", r_reg)))
        prog_row, act_row, wgt_row, acc_row, bias_row, mult_row, shift_row = (
            delay(m, data, lag, f"host_{name}_row", reset_less=True)
            for name, data in (("prog", self.prog_row), ("act", self.act_row),
                               ("wgt", self.wgt_row), ("acc", self.acc_row),
                               ("bias", self.bias_row), ("mult", self.mult_row),
                               ("shift", self.shift_row)))

        r_channel, r_kind = r_word[2:], r_word[:2]
        r_lane = channel_lane[r_channel]
        qparam_word = Signal(DATA_BITS)
        with m.Switch(r_kind):
            with m.Case(0):
                m.d.comb += qparam_word.eq(bias_row.word_select(r_lane, 32))
            with m.Case(1):
                m.d.comb += qparam_word.eq(mult_row.word_select(r_lane, 32))
            with m.Case(2):
                m.d.comb += qparam_word.eq(shift_row.word_select(r_lane, 8))
        with m.If(r_hit):
            with m.Switch(r_region):
                with m.Case(Region.CTRL):
                    m.d.comb += r_data.eq(r_reg)
                with m.Case(Region.PROG):
                    m.d.comb += r_data.eq(prog_row.word_select(r_word, 32))
                with m.Case(Region.ACT):
                    m.d.comb += r_data.eq(padded(act_row, 32).word_select(r_word, 32))
                with m.Case(Region.WGT):
                    m.d.comb += r_data.eq(padded(wgt_row, 32).word_select(r_word, 32))
                with m.Case(Region.ACC):
                    m.d.comb += r_data.eq(acc_row.word_select(r_word, 32))
                with m.Case(Region.QPARAM):
                    m.d.comb += r_data.eq(qparam_word)
        return m
