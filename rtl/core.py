"""The Lockstep core: SRAMs, sequencer, weight loader, systolic array, vector unit, host port."""

from amaranth import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .accpath import AccumulatorPath
from .actmem import ActivationMemory
from .array import SystolicArray
from .delay import delay, row_slot
from .hostbus import HostBusSignature
from .hostmap import DATA_BITS, HostMap
from .hostport import HostPort, qparam_slots
from .isa import act_read_latency, array_latency
from .loader import WeightLoader
from .sequencer import ERROR_BITS, Sequencer
from .vecfeed import VectorFeed, vec_tag_layout
from .vector import VectorUnit
from .wgtmem import WeightMemory
from .window import WindowUnit

__all__ = ["LockstepCore"]


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

    Timing
    ------
    Instructions cost what ``isa.cost`` says, plus the interlock waits described in
    rtl/sequencer.py; the datapaths are fully pipelined, one row per cycle:

    * MATMUL row i issued in cycle s+i: activation read in s+i, array input (its register) in
      s+i+1, first PE in s+i+2 (``isa.READ_LATENCY``), array output and accumulator add in
      E = s+i+2+``isa.array_latency``, the sum's write in E + ``cfg.acc_write_latency``
      (``isa.matmul_settle``), the accumulator row read in E-3 (rtl/accpath.py);
    * VEC step j (row j // vec_steps) issued in cycle s+j*K (K = ``cfg.vec_mult_cycles``):
      accumulator and parameter read in s+j*K, lane select, vector unit input in s+j*K+2
      (s+j*K+3 with ``cfg.vec_read_latency`` = 3, s+j*K+1 for a serial unit), activation
      write in s+j*K+``isa.vec_pipeline_depth`` (8 or 9 with K = 1; ``isa.vec_settle``;
      rtl/vecfeed.py);
    * weight loads: shadow row j written in s+C+j (rtl/loader.py, started in s, as the swap
      switches PE[j][C-1] in s+C+j);
    * START in cycle x, taken while idle, zeroes the array's weights: the shadows at the end of
      x, the active weights as a swap mark passes, PE[r][c] at the end of x+1+r+c.

    The blocks: the sequencer (rtl/sequencer.py), the host port (rtl/hostport.py), the weight
    loader and the array, the accumulator path (rtl/accpath.py) and the vector feed with the
    vector unit (rtl/vecfeed.py, rtl/vector.py). Here: the SRAMs, and which block drives each
    of their ports (the core owns them while busy, the host while idle).
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
        cfg = self.cfg
        rows, cols = cfg.rows, cfg.cols

        m.submodules.seq = seq = Sequencer(cfg)
        m.submodules.loader = loader = WeightLoader(cfg)
        m.submodules.array = array = SystolicArray(rows, cols, pe_stages=cfg.pe_stages)
        m.submodules.vector = vector = VectorUnit(
            cfg.vec_lanes, vec_tag_layout(cfg).size, mult_cycles=cfg.vec_mult_cycles,
            lut=cfg.vec_lut)
        m.submodules.host_port = host = HostPort(cfg)
        m.submodules.vec_feed = feed = VectorFeed(cfg)

        def memory(name, width, depth, granularity):
            mem = Memory(shape=unsigned(width), depth=depth, init=[])
            m.submodules[name] = mem
            return mem, mem.write_port(granularity=granularity)

        prog, prog_w = memory("prog_mem", 64, cfg.prog_depth, 32)
        m.submodules.act_mem = act = ActivationMemory(cfg)
        m.submodules.wgt_mem = wgt = WeightMemory(cols, cfg.wgt_depth, spram=cfg.wgt_spram)
        acc, acc_w = memory("acc_mem", 32 * cols, cfg.acc_depth, 32)
        # Requantisation parameters are stored as narrow as the vector unit: vec_lanes channels
        # to a memory row, qslots memory rows to a parameter row. (On the UP5K, C-lane rows
        # would take a block RAM per 16 bits of width for a few dozen words.)
        vec_lanes = cfg.vec_lanes
        q_depth = cfg.qparam_depth * qparam_slots(cfg)
        bias, bias_w = memory("bias_mem", 32 * vec_lanes, q_depth, 32)
        mult, mult_w = memory("mult_mem", 32 * vec_lanes, q_depth, 32)
        shift, shift_w = memory("shift_mem", 8 * vec_lanes, q_depth, 8)
        prog_r = prog.read_port()
        acc_r = acc.read_port()
        bias_r, mult_r, shift_r = bias.read_port(), mult.read_port(), shift.read_port()

        busy = seq.busy
        m.d.comb += [self.busy.eq(seq.busy), self.done.eq(seq.done), self.error.eq(seq.error)]

        # -- host port ---------------------------------------------------------------------------
        wiring.connect(m, wiring.flipped(self.host), host.host)
        m.d.comb += [
            host.busy.eq(busy), host.done.eq(seq.done), host.error.eq(seq.error),
            host.cycles.eq(seq.cycles), host.mac_cycles.eq(seq.mac_cycles),
            host.instret.eq(seq.instret), host.err_pc.eq(seq.err_pc),
            seq.start.eq(host.start),
            host.prog_row.eq(prog_r.data), host.act_row.eq(act.host_data),
            host.wgt_row.eq(wgt.r_data), host.acc_row.eq(acc_r.data),
            host.bias_row.eq(bias_r.data), host.mult_row.eq(mult_r.data),
            host.shift_row.eq(shift_r.data),
        ]

        def host_write_port(port, enables, lane_bits, addr=host.row):
            """Drive ``port`` from the host: ``enables`` (the host port's), ``lane_bits`` wide."""
            copies = -(-len(enables) * lane_bits // DATA_BITS)
            m.d.comb += [
                port.addr.eq(addr),
                port.data.eq(Cat(*[host.w_data] * copies)[:len(port.data)]),
            ]
            with m.If(~busy):        # writes are dropped while the core runs
                m.d.comb += port.en.eq(enables)

        host_write_port(prog_w, host.prog_w_en, 32)
        # The weight SRAM has one port (rtl/wgtmem.py): the host writes only while the core is
        # idle, when the port's address is the host's row.
        m.d.comb += wgt.w_data.eq(Cat(*[host.w_data] * -(-cols // 4))[:8 * cols])
        with m.If(~busy):
            m.d.comb += wgt.w_en.eq(host.wgt_w_en)
        for port, enables, lane_bits in ((bias_w, host.bias_w_en, 32),
                                         (mult_w, host.mult_w_en, 32),
                                         (shift_w, host.shift_w_en, 8)):
            m.d.comb += [port.addr.eq(host.q_row),
                         port.data.eq(Cat(*[host.w_data[:lane_bits]] * vec_lanes))]
            with m.If(~busy):
                m.d.comb += port.en.eq(enables)

        # -- matrix path: activation read -> array -> accumulate into acc ------------------------
        mm = seq.mm
        # The window goes into the array's input register (a block RAM's clock-to-output is a
        # third of a 100 MHz cycle, which must not be in front of a multiplier; a rotated window
        # comes from registers); the array sees the swap mark there, a cycle ahead of its vector.
        to_array = act_read_latency(cfg) - 1
        assert to_array + array.latency == (act_read_latency(cfg)
                                            + array_latency(rows, cols, cfg.pe_stages))
        m.d.comb += [
            act.busy.eq(busy),
            act.read_addr.eq(mm.payload.act_addr),
            array.a.valid.eq(delay(m, mm.valid, to_array, "mm_valid")),
            array.a.payload.swap.eq(delay(m, mm.payload.swap, to_array, "mm_swap")),
            array.a.payload.data.eq(act.read_data),
            # A START that the sequencer takes (it is idle) zeroes the weight registers, so a
            # run never multiplies by what an earlier run loaded. The clear's swap has left
            # shadow row j by x + j + C; the run's first load writes it isa.fetch_cycles later.
            array.clear.eq(host.start & ~busy),
            act.host_row.eq(host.row), act.host_w_en.eq(host.act_w_en),
            act.host_w_data.eq(host.w_data),
        ]
        if cfg.pool:
            with m.If(seq.pool.valid):
                m.d.comb += act.read_addr.eq(seq.pool.payload.addr)
            # The window unit: POOL inputs from the activation windows, results to the vector
            # unit in cycles in which no VEC step is there (the interlocks keep them apart).
            m.submodules.window = win = WindowUnit(cfg)
            wiring.connect(m, seq.pool, win.issue)
            wiring.connect(m, seq.pool_tap, win.tap)
            m.d.comb += [
                win.x.eq(act.read_data), win.window.eq(seq.window),
                win.tap_covered.eq(seq.pool_tap_covered), win.wgt_data.eq(wgt.r_data),
                win.q.valid.eq(seq.pool_q.valid), win.q.payload.eq(seq.pool_q_second),
                win.bias_data.eq(bias_r.data), win.mult_data.eq(mult_r.data),
                win.shift_data.eq(shift_r.data),
            ]
        m.submodules.acc_path = accp = AccumulatorPath(cfg, to_array + array.latency)
        wiring.connect(m, array.y, accp.y)
        m.d.comb += [
            accp.issue.valid.eq(mm.valid),
            accp.issue.payload.acc_addr.eq(mm.payload.acc_addr),
            accp.issue.payload.accumulate.eq(mm.payload.accumulate),
            accp.read_data.eq(acc_r.data),
        ]

        # -- vector path: acc + qparams -> vector unit -> activation write -----------------------
        vec = seq.vec
        wiring.connect(m, seq.vec, feed.vec)
        if cfg.pool:
            with m.If(win.o.valid):
                wiring.connect(m, win.o, vector.i)
            with m.Else():
                wiring.connect(m, feed.unit_i, vector.i)
        else:
            wiring.connect(m, feed.unit_i, vector.i)
        wiring.connect(m, vector.o, feed.unit_o)
        m.d.comb += [
            feed.acc_data.eq(acc_r.data), feed.acc_row.eq(accp.read_row),
            feed.bias_data.eq(bias_r.data), feed.mult_data.eq(mult_r.data),
            feed.shift_data.eq(shift_r.data),
        ]

        # -- activation writes: the vector unit's results, or FILL's bytes (a cycle after issue)
        fill = seq.fill
        fill_q = Signal.like(fill.payload, name="fill_q")
        fill_valid = Signal(name="fill_valid")
        m.d.sync += [fill_q.eq(fill.payload), fill_valid.eq(fill.valid)]
        with m.If(fill_valid):
            m.d.comb += [act.write.valid.eq(1), act.write.payload.addr.eq(fill_q.addr),
                         act.write.payload.count.eq(fill_q.count)]
            m.d.comb += [act.write.payload.data[i].eq(fill_q.value) for i in range(rows)]
        with m.Else():
            wiring.connect(m, feed.act_write, act.write)

        # -- port multiplexing: the core owns the SRAMs while busy, the host while idle ----------
        with m.If(busy):
            m.d.comb += [
                prog_r.addr.eq(seq.prog_addr),
                prog_r.en.eq(seq.prog_en),
                wgt.addr.eq(loader.rd_addr),
                acc_r.addr.eq(Mux(accp.read.valid, accp.read.payload, vec.payload.acc_addr)),
                bias_r.addr.eq(feed.q_addr),
                mult_r.addr.eq(feed.q_addr),
                shift_r.addr.eq(feed.q_addr),
                acc_w.addr.eq(accp.write.payload.addr),
                acc_w.data.eq(accp.write.payload.data),
            ]
            with m.If(accp.write.valid):
                m.d.comb += acc_w.en.eq(-1)
            if cfg.pool:
                # A POOL's prologue reads its weight and parameter rows (the loader is idle then,
                # and no VEC runs).
                with m.If(seq.pool_tap.valid):
                    m.d.comb += wgt.addr.eq(seq.tap_row)
                q_row = row_slot(seq.pool_q.payload, 0, qparam_slots(cfg))
                with m.If(seq.pool_q.valid):
                    m.d.comb += [port.addr.eq(q_row) for port in (bias_r, mult_r, shift_r)]
        with m.Else():
            for port in (prog_r, wgt, acc_r):
                m.d.comb += port.addr.eq(host.row)
            for port in (bias_r, mult_r, shift_r):
                m.d.comb += port.addr.eq(host.q_row)
            host_write_port(acc_w, host.acc_w_en, 32)

        wiring.connect(m, loader.w, array.w)
        m.d.comb += [
            seq.prog_data.eq(prog_r.data),
            # Delayed like the swap that the loaded tile waits for, which switches PE[j][C-1] in
            # s + to_array - 1 + C + j: shadow row j lands then (the loader waits C + j).
            loader.start.valid.eq(delay(m, seq.load.valid, to_array - 1, "load_valid")),
            loader.start.payload.eq(delay(m, seq.load.payload, to_array - 1, "load_addr")),
            loader.rd_data.eq(wgt.r_data),
        ]
        return m
