"""The Lockstep core: SRAMs, sequencer, weight loader, systolic array, vector unit, host port."""

from amaranth import Array, Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .array import SystolicArray
from .config import ADDR_FIELD_BITS, GROUP_FIELD_BITS
from .hostbus import HostBusSignature
from .hostmap import DATA_BITS, QPARAM_FIELDS, REGION_BITS, STATUS_ERROR_SHIFT, HostMap, Reg, Region
from .isa import READ_LATENCY, array_latency
from .loader import WeightLoader
from .sequencer import ERROR_BITS, Sequencer, vec_step_bits
from .vector import VectorUnit

__all__ = ["LockstepCore"]


def _delay(m, value, cycles, name, reset_less=False):
    """``value`` delayed by ``cycles`` registers of the sync domain (reset to ``value``'s init,
    so delayed valid bits come out of reset low; data needs no reset: ``reset_less``)."""
    for stage in range(cycles):
        reg = Signal.like(value, name=f"{name}_d{stage + 1}", reset_less=reset_less)
        m.d.sync += reg.eq(value)
        value = reg
    return value


#: Slots of a block-RAM delay line: one iCE40 block RAM of 16-bit words, far more than any
#: array's latency.
RING_DEPTH = 256


def _ram_delay(m, value, cycles, name):
    """``value`` delayed by ``cycles``, like :func:`_delay`, but through a ring of block RAM
    (written every cycle, read ``cycles - 2`` slots behind, the read data registered) rather than
    ``cycles`` registers: flip-flops are what a UP5K runs out of. The output is 0 until
    ``cycles`` cycles after reset, so that stale slots never look like valid entries."""
    if cycles < 4:
        return _delay(m, value, cycles, name)
    assert cycles <= RING_DEPTH
    ring = Memory(shape=unsigned(len(value)), depth=RING_DEPTH, init=[])
    m.submodules[f"{name}_ring"] = ring
    wr, rd = ring.write_port(), ring.read_port()
    slot = Signal(range(RING_DEPTH), name=f"{name}_slot")
    primed = Signal(name=f"{name}_primed")
    out = Signal(len(value), name=f"{name}_out", reset_less=True)
    m.d.sync += [slot.eq(slot + 1), out.eq(rd.data)]
    with m.If(slot == cycles - 1):
        m.d.sync += primed.eq(1)
    m.d.comb += [
        wr.addr.eq(slot), wr.data.eq(value), wr.en.eq(1),
        rd.addr.eq(slot - (cycles - 2)),
    ]
    return Mux(primed, out, 0)


def _times(value, factor):
    """``value * factor`` for a constant ``factor``, as shifts and adds (a ``*`` could be given
    a DSP multiplier, and the array needs every one)."""
    terms = [value << i for i in range(factor.bit_length()) if factor >> i & 1]
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def _row_slot(row, slot, slots):
    """``row * slots + slot`` for a ``slot`` below the constant ``slots``: a concatenation when
    ``slots`` is a power of two (no adder between a register and a block RAM's address)."""
    if slots & (slots - 1) == 0:
        k = slots.bit_length() - 1
        slot = Value.cast(slot)
        low = slot[:k] if len(slot) >= k else Cat(slot, Const(0, k - len(slot)))
        return Cat(low, row)
    return _times(row, slots) + slot


def _below(value, bound):
    """``value < bound`` for a constant ``bound``: when ``bound`` is a power of two, a test that
    the bits from log2(bound) up are zero (Yosys maps a compare to a carry chain either way)."""
    if bound & (bound - 1) == 0:
        k = bound.bit_length() - 1
        return ~value[k:].any() if len(value) > k else Const(1, 1)
    return value < bound


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

    * MATMUL row i issued in cycle s+i: activation read in s+i, array input (its register) in
      s+i+1, first PE in s+i+2 (``isa.READ_LATENCY``), array output and accumulator add in
      W = s+i+2+``isa.array_latency``, the sum's write in W + ``cfg.acc_write_latency``
      (``isa.matmul_settle``), the accumulator row read in W-3;
    * VEC step j (row j // vec_steps) issued in cycle s+j*K (K = ``cfg.vec_mult_cycles``):
      accumulator and parameter read in s+j*K, lane select, vector unit input in s+j*K+2
      (s+j*K+3 with ``cfg.vec_read_latency`` = 3, s+j*K+1 for a serial unit), activation
      write in s+j*K+``isa.vec_pipeline_depth`` (8 or 9 with K = 1; ``isa.vec_settle``);
    * weight loads: shadow row j written in s+C+j (rtl/loader.py, started in s, as the swap
      switches PE[j][C-1] in s+C+j).
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
        groups = cfg.groups

        m.submodules.seq = seq = Sequencer(cfg)
        m.submodules.loader = loader = WeightLoader(cfg)
        m.submodules.array = array = SystolicArray(rows, cols, pe_stages=cfg.pe_stages)
        vec_lanes, step_bits = cfg.vec_lanes, vec_step_bits(cfg)
        m.submodules.vector = vector = VectorUnit(
            vec_lanes, ADDR_FIELD_BITS + GROUP_FIELD_BITS + step_bits,
            mult_cycles=cfg.vec_mult_cycles)

        def memory(name, width, depth, granularity):
            mem = Memory(shape=unsigned(width), depth=depth, init=[])
            m.submodules[name] = mem
            return mem, mem.write_port(granularity=granularity)

        prog, prog_w = memory("prog_mem", 64, cfg.prog_depth, 32)
        act, act_w = memory("act_mem", 8 * rows, cfg.act_depth, 8)
        wgt, wgt_w = memory("wgt_mem", 8 * cols, cfg.wgt_depth, 8)
        acc, acc_w = memory("acc_mem", 32 * cols, cfg.acc_depth, 32)
        # Requantisation parameters are stored as narrow as the vector unit: vec_lanes channels
        # to a memory row, qslots memory rows to a parameter row. (On the UP5K, C-lane rows
        # would take a block RAM per 16 bits of width for a few dozen words.)
        qslots = cols // vec_lanes
        q_depth = cfg.qparam_depth * qslots
        bias, bias_w = memory("bias_mem", 32 * vec_lanes, q_depth, 32)
        mult, mult_w = memory("mult_mem", 32 * vec_lanes, q_depth, 32)
        shift, shift_w = memory("shift_mem", 8 * vec_lanes, q_depth, 8)
        prog_r, act_r, wgt_r = prog.read_port(), act.read_port(), wgt.read_port()
        acc_r = acc.read_port()
        bias_r, mult_r, shift_r = bias.read_port(), mult.read_port(), shift.read_port()

        busy = seq.busy
        m.d.comb += [self.busy.eq(seq.busy), self.done.eq(seq.done), self.error.eq(seq.error)]

        # -- host address decode ----------------------------------------------------------------
        # With cfg.host_read_latency = 4 every host access is decoded in the bus cycle and acts a
        # cycle later, from registers (``staged``): an SRAM's write enables come from flip-flops
        # of their own rather than from the address compares, and the SRAM banks are spread
        # over the chip. Reads, writes and START keep their order: the whole port is a cycle
        # late, as if the bus had one more register.
        host = self.host
        word = host.addr[:hmap.word_bits]
        row = host.addr[hmap.word_bits:hmap.word_bits + hmap.row_bits]
        region = host.addr[hmap.word_bits + hmap.row_bits:]
        assert len(region) == REGION_BITS
        decode_stage = max(0, cfg.host_read_latency - 3)     # 1 with a latency of 4

        def staged(value, name, reset_less=False):
            return _delay(m, value, decode_stage, f"host_{name}", reset_less=reset_less)

        def host_hits(r):
            return ((region == r) & _below(row, hmap.depth(r))
                    & _below(word, hmap.words_per_row(r)))

        h_row, h_word, h_data = (staged(value, name, reset_less=True)
                                 for name, value in (("row", row), ("word", word),
                                                     ("w_data", host.w_data)))

        def write_enables(r, lanes_per_word, lane_count):
            """The write lanes of region ``r`` that this access writes, ``lanes_per_word`` to a
            32-bit word, as the SRAM sees them."""
            lanes = Cat(lane // max(1, lanes_per_word) == word for lane in range(lane_count))
            return staged(Mux(host.w_en & host_hits(r), lanes, 0), f"{r.name.lower()}_w_en")

        def host_write_port(port, enables, lane_bits):
            """Drive ``port`` from the host: ``enables`` (write_enables), ``lane_bits`` wide."""
            copies = -(-len(enables) * lane_bits // DATA_BITS)
            m.d.comb += [
                port.addr.eq(h_row),
                port.data.eq(Cat(*[h_data] * copies)[:len(port.data)]),
            ]
            with m.If(~busy):        # writes are dropped while the core runs
                m.d.comb += port.en.eq(enables)

        # The start is registered: the host port's decode and the sequencer's clearing of its
        # registers each get a cycle (so the core is busy from the second cycle after the CTRL
        # write, docs/isa.md; a cycle later with the decode stage).
        start = Signal()
        m.d.sync += start.eq(staged(host.w_en & (region == Region.CTRL) & (row == 0)
                                    & (word == Reg.CTRL) & host.w_data[0], "start"))
        m.d.comb += seq.start.eq(start)

        # Computed here, outside the port multiplexing's If/Else, so that every staged register
        # is clocked in every cycle.
        act_enables = write_enables(Region.ACT, 4, rows)
        acc_enables = write_enables(Region.ACC, 1, cols)
        host_write_port(prog_w, write_enables(Region.PROG, 1, 2), 32)
        host_write_port(wgt_w, write_enables(Region.WGT, 4, cols), 8)

        # QPARAM words: 4 per channel (bias, mult, shift, reserved).
        channel, kind = word[2:], word[:2]
        channel_slot = Array(Const(c // vec_lanes, range(qslots)) for c in range(cols))
        channel_lane = Array(Const(c % vec_lanes, range(vec_lanes)) for c in range(cols))
        host_q_addr = staged(_row_slot(row, channel_slot[channel], qslots), "q_addr",
                             reset_less=True)
        for port, k, lane_bits in ((bias_w, 0, 32), (mult_w, 1, 32), (shift_w, 2, 8)):
            lanes = (Const(1, vec_lanes) << channel_lane[channel])[:vec_lanes]
            enables = staged(Mux(host.w_en & host_hits(Region.QPARAM) & (kind == k), lanes, 0),
                             f"{QPARAM_FIELDS[k]}_w_en")
            m.d.comb += [port.addr.eq(host_q_addr),
                         port.data.eq(Cat(*[h_data[:lane_bits]] * vec_lanes))]
            with m.If(~busy):
                m.d.comb += port.en.eq(enables)

        # -- matrix path: activation read -> array -> accumulate into acc ------------------------
        mm = seq.mm
        # The SRAM's output goes into the array's input register (a block RAM's clock-to-output
        # is a third of a 100 MHz cycle, which must not be in front of a multiplier); the array
        # sees the swap mark there, a cycle ahead of its vector.
        to_array = READ_LATENCY - 1
        assert to_array + array.latency == READ_LATENCY + array_latency(rows, cols, cfg.pe_stages)
        m.d.comb += [
            array.a.valid.eq(_delay(m, mm.valid, to_array, "mm_valid")),
            array.a.payload.swap.eq(_delay(m, mm.payload.swap, to_array, "mm_swap")),
            array.a.payload.data.eq(act_r.data),
        ]
        # The accumulator row is read three cycles before the array's result comes out (cycle
        # W), and the SRAM's output goes straight into a register (a block RAM's output is slow,
        # and its banks are spread over the chip). With ``cfg.acc_write_latency`` = 1 the sum is
        # registered and written a cycle later, so that the add does not drive the SRAM's data
        # inputs either. The sums of W - 3 - L .. W - 1 (L = acc_write_latency) are not in what
        # that read saw (the write of W - 3 - L's sum is in the read's own cycle): each one's
        # address is compared with the row's, the result registered, and the newest hit's sum
        # replaces the read (those before W - 1 in W - 1, W - 1's in W, where it is the sum
        # register itself, as in an accumulator). Every select comes from a register, and the
        # read port is a plain one (a transparent one compares addresses on the path).
        acc_lag = cfg.acc_write_latency
        latency = to_array + array.latency - 3
        tag = _ram_delay(m, Cat(mm.valid, mm.payload.accumulate, mm.payload.acc_addr), latency,
                         "acc_tag")
        tag_valid, tag_accumulate, tag_addr = tag[0], tag[1], tag[2:]
        row_addr = {3: tag_addr}                    # the row's address in cycle W - k
        for k in (2, 1, 0):
            row_addr[k] = _delay(m, row_addr[k + 1], 1, f"acc_addr_w{k}")
        next_accumulate = _delay(m, tag_accumulate, 2, "acc_next_acc")    # in W - 1
        sum_reg = Signal(32 * cols, name="acc_sum", reset_less=True)      # the sum of W - 1
        # The sum of W - j as it is in W - 1 (j >= 2), and the write port's address and valid.
        older = {2: sum_reg}
        for j in range(3, 4 + acc_lag):
            older[j] = _delay(m, older[j - 1], 1, f"acc_sum{j - 1}", reset_less=True)
        wr_addr = _delay(m, row_addr[0], acc_lag, "acc_wr_addr")
        wr_valid = _delay(m, array.y.valid, acc_lag, "acc_wr_valid")
        hit = {}                                    # "the sum of W - j is for the same row"
        for j in (1, 2, 3):                         # compared in W - j
            hit[j] = Signal(name=f"acc_hit_{j}")
            m.d.sync += hit[j].eq(array.y.valid & (row_addr[0] == row_addr[j])
                                  & (next_accumulate if j == 1 else 1))
        if acc_lag:                                 # compared in W - 3, as it is written
            hit[4] = Signal(name="acc_hit_4")
            m.d.sync += hit[4].eq(wr_valid & (wr_addr == row_addr[3]))
        for j in range(3, 4 + acc_lag):             # seen in W - 1, like hit[2]
            hit[j] = _delay(m, hit[j], 1, f"acc_hit_{j}")
        read_row = _delay(m, acc_r.data, 1, "acc_read", reset_less=True)     # seen in W - 1
        forwarded = read_row
        for j in reversed(range(2, 4 + acc_lag)):   # the newest hit wins
            forwarded = Mux(hit[j], older[j], forwarded)
        old_row = Signal.like(acc_r.data, name="acc_old", reset_less=True)
        m.d.sync += old_row.eq(Mux(next_accumulate, forwarded, 0))
        old_row = Mux(hit[1], sum_reg, old_row)    # hit[1] includes "accumulate": one select

        sums = []
        for c in range(cols):
            sums.append((array.y.payload[c] + old_row[32 * c:32 * (c + 1)])[:32])
        m.d.sync += sum_reg.eq(Cat(*sums))
        wr_data = sum_reg if acc_lag else Cat(*sums)

        # -- vector path: acc + qparams -> vector unit -> activation write -----------------------
        vec = seq.vec
        # With cfg.vec_read_latency = 3 the SRAM rows are registered (``v_lag``) before the lane
        # select, and the issue's fields wait as long.
        v_lag = cfg.vec_read_latency - READ_LATENCY
        v_valid = _delay(m, vec.valid, 1 + v_lag, "vec_valid")
        # The issue's fields, in the cycle its SRAM reads come back. A serial unit's step holds
        # them for K >= 4 cycles (the sequencer's payload comes from registers that move only
        # when the next step is issued): no copy needed.
        v_tag = (_delay(m, vec.payload, 1 + v_lag, "vec_tag") if cfg.vec_mult_cycles == 1
                 else vec.payload)
        # What a DSP vector unit takes is registered (isa.READ_LATENCY), for the same reason as
        # the activations: the accumulator SRAM's output goes through the lane select first. A
        # serial unit's first stage holds its input for K cycles anyway, and its clock is a
        # small FPGA's: it takes the SRAM's output directly (isa.vec_pipeline_depth).
        vin = Signal(vector.i.payload.shape())
        assert READ_LATENCY == 2, "the vector unit's input is one register after the SRAM"
        vec_domain = m.d.sync if cfg.vec_mult_cycles == 1 else m.d.comb
        vec_domain += [vector.i.payload.eq(vin), vector.i.valid.eq(v_valid)]

        # A VEC row's lanes are processed vec_lanes at a time: "slots" of vec_lanes channels
        # index the accumulator row (C channels) and the activation row (R bytes). When
        # C > R, lane group g is accumulator slots g * steps ... and all R activation bytes;
        # when C < R, it is all C accumulator channels and activation slots g * steps ...
        def slot(group, step):
            group = group[:max(1, (groups - 1).bit_length())]
            return Cat(step, group) if cfg.vec_steps > 1 else group

        acc_slot = slot(v_tag.group, v_tag.step) if cols > rows else v_tag.step
        issue_slot = (slot(vec.payload.group, vec.payload.step) if cols > rows
                      else vec.payload.step)
        vec_q_addr = _row_slot(vec.payload.q_addr, issue_slot, qslots)

        def lane_select(value, lane_bits):
            if cols == vec_lanes:
                return value
            return value.word_select(acc_slot, lane_bits * vec_lanes)

        # The registered accumulator row is the matrix path's (``read_row``), a cycle behind.
        v_acc_row = read_row if v_lag else acc_r.data
        v_bias, v_mult, v_shift = (
            _delay(m, port.data, v_lag, f"vec_{name}_row", reset_less=True)
            for name, port in (("bias", bias_r), ("mult", mult_r), ("shift", shift_r)))
        m.d.comb += [
            vin.acc.eq(lane_select(v_acc_row, 32)),
            vin.bias.eq(v_bias),
            vin.mult.eq(v_mult),
            vin.zero_point.eq(v_tag.zero_point),
            vin.clamp_min.eq(v_tag.clamp_min),
            vin.clamp_max.eq(v_tag.clamp_max),
            vin.tag.eq(Cat(v_tag.act_addr, v_tag.group, v_tag.step)),
        ]
        shifts = v_shift
        for j in range(vec_lanes):
            m.d.comb += vin.shift[j].eq(shifts[8 * j:8 * j + 5])

        out_tag = vector.o.payload.tag
        out_addr = out_tag[:ADDR_FIELD_BITS]
        out_group = out_tag[ADDR_FIELD_BITS:ADDR_FIELD_BITS + GROUP_FIELD_BITS]
        out_step = out_tag[ADDR_FIELD_BITS + GROUP_FIELD_BITS:]
        act_slot = slot(out_group, out_step) if cols < rows else out_step
        act_slots = rows // vec_lanes

        # -- port multiplexing: the core owns the SRAMs while busy, the host while idle ----------
        with m.If(busy):
            m.d.comb += [
                prog_r.addr.eq(seq.prog_addr),
                prog_r.en.eq(seq.prog_en),
                act_r.addr.eq(mm.payload.act_addr),
                wgt_r.addr.eq(loader.rd_addr),
                acc_r.addr.eq(Mux(tag_valid, tag_addr, vec.payload.acc_addr)),
                bias_r.addr.eq(vec_q_addr),
                mult_r.addr.eq(vec_q_addr),
                shift_r.addr.eq(vec_q_addr),
                acc_w.addr.eq(wr_addr),
                acc_w.data.eq(wr_data),
                act_w.addr.eq(out_addr),
            ]
            with m.If(wr_valid):
                m.d.comb += acc_w.en.eq(-1)
            m.d.comb += act_w.data.eq(Cat(*[vector.o.payload.data] * act_slots))
            with m.If(vector.o.valid):
                for i in range(act_slots):
                    with m.If(act_slot == i):
                        m.d.comb += act_w.en.eq(((1 << vec_lanes) - 1) << (i * vec_lanes))
        with m.Else():
            for port in (prog_r, act_r, wgt_r, acc_r):
                m.d.comb += port.addr.eq(h_row)
            for port in (bias_r, mult_r, shift_r):
                m.d.comb += port.addr.eq(host_q_addr)
            host_write_port(act_w, act_enables, 8)
            host_write_port(acc_w, acc_enables, 32)

        wiring.connect(m, loader.w, array.w)
        m.d.comb += [
            seq.prog_data.eq(prog_r.data),
            # Delayed like the swap that the loaded tile waits for, which switches PE[j][C-1] in
            # s + to_array - 1 + C + j: shadow row j lands then (the loader waits C + j).
            loader.start.valid.eq(_delay(m, seq.load.valid, to_array - 1, "load_valid")),
            loader.start.payload.eq(_delay(m, seq.load.payload, to_array - 1, "load_addr")),
            loader.rd_data.eq(wgt_r.data),
        ]

        # -- host reads: cfg.host_read_latency cycles ------------------------------------------
        # The SRAM word is selected in the cycle after the read and registered here, next to
        # the SRAMs: a block RAM's output must not travel to the host link in the same cycle.
        # With a latency of 3, each SRAM's output row is registered first (``lag``), and the word
        # is selected from those registers a cycle later: on an ECP5 at 100 MHz, a block RAM's
        # clock-to-output leaves too little of the cycle for the selection behind it. A latency
        # of 4 is that and the decode stage in front of the SRAMs.
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
            host.r_valid.eq(_delay(m, r_valid, lag, "host_r_valid")),
            host.r_data.eq(r_data),
            r_region.eq(staged(region, "region", reset_less=True)),
            r_word.eq(h_word),
            r_hit.eq(h_read & (h_ctrl | ~busy)),
        ]
        status = Cat(seq.busy, seq.done, Const(0, STATUS_ERROR_SHIFT - 2), seq.error)
        registers = {
            Reg.CTRL: Const(0, 1), Reg.STATUS: status, Reg.CYCLES: seq.cycles,
            Reg.MAC_CYCLES: seq.mac_cycles, Reg.INSTRET: seq.instret, Reg.ERR_PC: seq.err_pc,
        }
        registers.update(hmap.register_values())
        with m.Switch(h_word):
            for reg, value in registers.items():
                with m.Case(reg):
                    m.d.sync += r_reg.eq(value)

        # What the word select sees: the SRAM rows and the read's fields, ``lag`` cycles later.
        r_hit = _delay(m, r_hit, lag, "host_hit")      # r_data is 0 without r_valid
        r_region, r_word, r_reg = (
            _delay(m, value, lag, f"host_{name}", reset_less=True)
            for name, value in (("region", r_region), ("word", r_word), ("reg", r_reg)))
        prog_row, act_row, wgt_row, acc_row, bias_row, mult_row, shift_row = (
            _delay(m, port.data, lag, f"host_{name}_row", reset_less=True)
            for name, port in (("prog", prog_r), ("act", act_r), ("wgt", wgt_r), ("acc", acc_r),
                               ("bias", bias_r), ("mult", mult_r), ("shift", shift_r)))

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
                    m.d.comb += r_data.eq(_padded(act_row, 32).word_select(r_word, 32))
                with m.Case(Region.WGT):
                    m.d.comb += r_data.eq(_padded(wgt_row, 32).word_select(r_word, 32))
                with m.Case(Region.ACC):
                    m.d.comb += r_data.eq(acc_row.word_select(r_word, 32))
                with m.Case(Region.QPARAM):
                    m.d.comb += r_data.eq(qparam_word)
        return m
