"""The Lockstep core: SRAMs, sequencer, weight loader, systolic array, vector unit, host port."""

from amaranth import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .array import SystolicArray
from .config import ADDR_FIELD_BITS, GROUP_FIELD_BITS
from .hostbus import HostBusSignature
from .hostmap import DATA_BITS, REGION_BITS, STATUS_ERROR_SHIFT, HostMap, Reg, Region
from .loader import WeightLoader
from .sequencer import ERROR_BITS, Sequencer
from .vector import VectorUnit

__all__ = ["LockstepCore"]


def _delay(m, value, cycles, name):
    """``value`` delayed by ``cycles`` registers of the sync domain (reset to ``value``'s init,
    so delayed valid bits come out of reset low)."""
    for stage in range(cycles):
        reg = Signal.like(value, name=f"{name}_d{stage + 1}")
        m.d.sync += reg.eq(value)
        value = reg
    return value


def _padded(value, width):
    """``value`` zero-extended to a multiple of ``width`` bits, for word_select."""
    pad = -len(value) % width
    return Cat(value, Const(0, pad)) if pad else value


class LockstepCore(wiring.Component):
    """One Lockstep core of configuration ``cfg`` (see rtl/config.py).

    Members
    -------
    host : In(HostBusSignature(cfg))
        The host port: every SRAM and the control/status registers (rtl/hostmap.py).
    busy, done : Out(1)
        The program is running / has stopped (for LEDs; the host reads STATUS).
    error : Out(3)
        Error code of the last run (rtl/isa.py, ``Error``).

    Timing: instructions cost what ``isa.cost`` says, plus the interlock waits described in
    rtl/sequencer.py; the datapaths are fully pipelined, one row per cycle:

    * MATMUL row i issued in cycle s+i: activation read in s+i, array input in s+i+1, array
      output and accumulator read-add-write in s+i+1+``isa.array_latency`` (``matmul_settle``);
    * VEC row i issued in cycle s+i: accumulator and parameter read in s+i, vector unit input in
      s+i+1, activation write in s+i+6 (``isa.vec_settle``);
    * weight loads: shadow row j written in s+C+j (rtl/loader.py).
    """

    def __init__(self, cfg):
        self.cfg = cfg
        self.map = HostMap(cfg)
        super().__init__({
            "host": In(HostBusSignature(cfg)),
            "busy": Out(1),
            "done": Out(1),
            "error": Out(ERROR_BITS),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, hmap = self.cfg, self.map
        rows, cols = cfg.rows, cfg.cols
        lanes, groups = cfg.lanes, cfg.groups

        m.submodules.seq = seq = Sequencer(cfg)
        m.submodules.loader = loader = WeightLoader(cfg)
        m.submodules.array = array = SystolicArray(rows, cols)
        m.submodules.vector = vector = VectorUnit(lanes, ADDR_FIELD_BITS + GROUP_FIELD_BITS)

        def memory(name, width, depth, granularity):
            mem = Memory(shape=unsigned(width), depth=depth, init=[])
            m.submodules[name] = mem
            return mem, mem.write_port(granularity=granularity)

        prog, prog_w = memory("prog_mem", 64, cfg.prog_depth, 32)
        act, act_w = memory("act_mem", 8 * rows, cfg.act_depth, 8)
        wgt, wgt_w = memory("wgt_mem", 8 * cols, cfg.wgt_depth, 8)
        acc, acc_w = memory("acc_mem", 32 * cols, cfg.acc_depth, 32)
        bias, bias_w = memory("bias_mem", 32 * cols, cfg.qparam_depth, 32)
        mult, mult_w = memory("mult_mem", 32 * cols, cfg.qparam_depth, 32)
        shift, shift_w = memory("shift_mem", 8 * cols, cfg.qparam_depth, 8)
        prog_r, act_r, wgt_r = prog.read_port(), act.read_port(), wgt.read_port()
        # A MATMUL may add into the row that the previous cycle's result is being written to.
        acc_r = acc.read_port(transparent_for=(acc_w,))
        bias_r, mult_r, shift_r = bias.read_port(), mult.read_port(), shift.read_port()

        busy = seq.busy
        m.d.comb += [self.busy.eq(seq.busy), self.done.eq(seq.done), self.error.eq(seq.error)]

        # -- host address decode ----------------------------------------------------------------
        host = self.host
        word = host.addr[:hmap.word_bits]
        row = host.addr[hmap.word_bits:hmap.word_bits + hmap.row_bits]
        region = host.addr[hmap.word_bits + hmap.row_bits:]
        assert len(region) == REGION_BITS

        def host_hits(r):
            return (region == r) & (row < hmap.depth(r)) & (word < hmap.words_per_row(r))

        host_write = host.w_en & ~busy

        def host_write_port(port, r, lanes_per_word, lane_count):
            """Drive ``port`` from the host: ``lanes_per_word`` write lanes per 32-bit word."""
            lane_bits = DATA_BITS // lanes_per_word if lanes_per_word else DATA_BITS
            copies = -(-lane_count * lane_bits // DATA_BITS)
            m.d.comb += [
                port.addr.eq(row),
                port.data.eq(Cat(*[host.w_data] * copies)[:len(port.data)]),
            ]
            with m.If(host_write & host_hits(r)):
                for lane in range(lane_count):
                    m.d.comb += port.en[lane].eq(lane // max(1, lanes_per_word) == word)

        m.d.comb += seq.start.eq(
            host.w_en & (region == Region.CTRL) & (row == 0) & (word == Reg.CTRL)
            & host.w_data[0])

        host_write_port(prog_w, Region.PROG, 1, 2)
        host_write_port(wgt_w, Region.WGT, 4, cols)

        # QPARAM words: 4 per channel (bias, mult, shift, reserved).
        channel, kind = word[2:], word[:2]
        for port, k, lane_bits in ((bias_w, 0, 32), (mult_w, 1, 32), (shift_w, 2, 8)):
            m.d.comb += [port.addr.eq(row),
                         port.data.eq(Cat(*[host.w_data[:lane_bits]] * cols))]
            with m.If(host_write & host_hits(Region.QPARAM) & (kind == k)):
                m.d.comb += port.en.eq(1 << channel)

        # -- matrix path: activation read -> array -> accumulate into acc ------------------------
        mm = seq.mm
        m.d.comb += [
            array.a.valid.eq(_delay(m, mm.valid, 1, "mm_valid")),
            array.a.payload.swap.eq(_delay(m, mm.payload.swap, 1, "mm_swap")),
            array.a.payload.data.eq(act_r.data),
        ]
        latency = array.latency
        tag_valid = _delay(m, mm.valid, latency, "acc_tag_valid")
        tag_addr = _delay(m, mm.payload.acc_addr, latency, "acc_tag_addr")
        tag_accumulate = _delay(m, mm.payload.accumulate, latency, "acc_tag_acc")
        wr_addr = _delay(m, tag_addr, 1, "acc_wr_addr")
        wr_accumulate = _delay(m, tag_accumulate, 1, "acc_wr_acc")

        sums = []
        for c in range(cols):
            old = acc_r.data[32 * c:32 * (c + 1)]
            sums.append((array.y.payload[c] + Mux(wr_accumulate, old, 0))[:32])

        # -- vector path: acc + qparams -> vector unit -> activation write -----------------------
        vec = seq.vec
        v_valid = _delay(m, vec.valid, 1, "vec_valid")
        v_tag = _delay(m, vec.payload, 1, "vec_tag")
        vin = vector.i.payload

        def lane_group(value, lane_bits):
            if cols <= rows:
                return value
            return value.word_select(v_tag.group[:max(1, (groups - 1).bit_length())],
                                     lane_bits * lanes)

        m.d.comb += [
            vector.i.valid.eq(v_valid),
            vin.acc.eq(lane_group(acc_r.data, 32)),
            vin.bias.eq(lane_group(bias_r.data, 32)),
            vin.mult.eq(lane_group(mult_r.data, 32)),
            vin.zero_point.eq(v_tag.zero_point),
            vin.clamp_min.eq(v_tag.clamp_min),
            vin.clamp_max.eq(v_tag.clamp_max),
            vin.tag.eq(Cat(v_tag.act_addr, v_tag.group)),
        ]
        shifts = lane_group(shift_r.data, 8)
        for j in range(lanes):
            m.d.comb += vin.shift[j].eq(shifts[8 * j:8 * j + 5])

        out_addr = vector.o.payload.tag[:ADDR_FIELD_BITS]
        out_group = vector.o.payload.tag[ADDR_FIELD_BITS:]

        # -- port multiplexing: the core owns the SRAMs while busy, the host while idle ----------
        with m.If(busy):
            m.d.comb += [
                prog_r.addr.eq(seq.prog_addr),
                act_r.addr.eq(mm.payload.act_addr),
                wgt_r.addr.eq(loader.rd_addr),
                acc_r.addr.eq(Mux(tag_valid, tag_addr, vec.payload.acc_addr)),
                bias_r.addr.eq(vec.payload.q_addr),
                mult_r.addr.eq(vec.payload.q_addr),
                shift_r.addr.eq(vec.payload.q_addr),
                acc_w.addr.eq(wr_addr),
                acc_w.data.eq(Cat(*sums)),
                act_w.addr.eq(out_addr),
            ]
            with m.If(array.y.valid):
                m.d.comb += acc_w.en.eq(-1)
            if cols >= rows:
                m.d.comb += act_w.data.eq(vector.o.payload.data)
                with m.If(vector.o.valid):
                    m.d.comb += act_w.en.eq(-1)
            else:
                m.d.comb += act_w.data.eq(Cat(*[vector.o.payload.data] * groups))
                with m.If(vector.o.valid):
                    for g in range(groups):
                        with m.If(out_group == g):
                            m.d.comb += act_w.en.eq(((1 << cols) - 1) << (g * cols))
        with m.Else():
            for port in (prog_r, act_r, wgt_r, acc_r, bias_r, mult_r, shift_r):
                m.d.comb += port.addr.eq(row)
            host_write_port(act_w, Region.ACT, 4, rows)
            host_write_port(acc_w, Region.ACC, 1, cols)

        wiring.connect(m, loader.w, array.w)
        m.d.comb += [
            seq.prog_data.eq(prog_r.data),
            loader.start.valid.eq(seq.load.valid),
            loader.start.payload.eq(seq.load.payload),
            loader.rd_data.eq(wgt_r.data),
        ]

        # -- host reads: one cycle of latency ----------------------------------------------------
        r_region = Signal(REGION_BITS)
        r_word = Signal(hmap.word_bits)
        r_hit = Signal()
        r_reg = Signal(DATA_BITS)
        m.d.sync += [
            host.r_valid.eq(host.r_en),
            r_region.eq(region),
            r_word.eq(word),
            r_hit.eq(host.r_en & Cat(host_hits(r) for r in Region).any()
                     & ((region == Region.CTRL) | ~busy)),
        ]
        status = Cat(seq.busy, seq.done, Const(0, STATUS_ERROR_SHIFT - 2), seq.error)
        registers = {
            Reg.CTRL: Const(0, 1), Reg.STATUS: status, Reg.CYCLES: seq.cycles,
            Reg.MAC_CYCLES: seq.mac_cycles, Reg.INSTRET: seq.instret, Reg.ERR_PC: seq.err_pc,
        }
        registers.update(hmap.register_values())
        with m.Switch(word):
            for reg, value in registers.items():
                with m.Case(reg):
                    m.d.sync += r_reg.eq(value)

        r_channel, r_kind = r_word[2:], r_word[:2]
        qparam_word = Signal(DATA_BITS)
        with m.Switch(r_kind):
            with m.Case(0):
                m.d.comb += qparam_word.eq(bias_r.data.word_select(r_channel, 32))
            with m.Case(1):
                m.d.comb += qparam_word.eq(mult_r.data.word_select(r_channel, 32))
            with m.Case(2):
                m.d.comb += qparam_word.eq(shift_r.data.word_select(r_channel, 8))
        with m.If(r_hit):
            with m.Switch(r_region):
                with m.Case(Region.CTRL):
                    m.d.comb += host.r_data.eq(r_reg)
                with m.Case(Region.PROG):
                    m.d.comb += host.r_data.eq(prog_r.data.word_select(r_word, 32))
                with m.Case(Region.ACT):
                    m.d.comb += host.r_data.eq(_padded(act_r.data, 32).word_select(r_word, 32))
                with m.Case(Region.WGT):
                    m.d.comb += host.r_data.eq(_padded(wgt_r.data, 32).word_select(r_word, 32))
                with m.Case(Region.ACC):
                    m.d.comb += host.r_data.eq(acc_r.data.word_select(r_word, 32))
                with m.Case(Region.QPARAM):
                    m.d.comb += host.r_data.eq(qparam_word)
        return m
