"""The activation SRAM: byte-addressed windows over two banks of rows."""

from amaranth import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .hostmap import DATA_BITS

__all__ = ["ActivationMemory", "act_write_layout", "act_addr_bits"]


def act_addr_bits(cfg):
    """Width of a byte address inside the activation SRAM (log2 of its bytes)."""
    return (cfg.act_bytes - 1).bit_length()


def act_write_layout(cfg):
    """A write of up to R bytes at a byte address: ``count`` (1..R) bytes of ``data`` (byte 0
    first) land at ``addr``, ``addr + 1``, ... (wrapping)."""
    return data.StructLayout({
        "addr": unsigned(act_addr_bits(cfg)),
        "data": data.ArrayLayout(unsigned(8), cfg.rows),
        "count": unsigned((cfg.rows).bit_length()),
    })


class ActivationMemory(wiring.Component):
    """``cfg.act_depth`` rows of P = ``cfg.act_row_bytes`` bytes, which programs address as one
    byte array: a read returns the R bytes from any byte address, a write places up to R bytes
    at any byte address. Addresses wrap around the SRAM's ``cfg.act_bytes`` bytes.

    The rows alternate between two banks (even rows in bank 0, odd rows in bank 1), so that
    the two rows a window or a write can touch, r and r + 1, are read or written in the same
    cycle: bank 0 at row (r + 1) / 2, bank 1 at row r / 2. Read, the two rows make 2P bytes in
    which the window starts at byte ``addr mod 2P``; written, the bytes are rotated to that
    offset and each bank gets its half of the byte enables.

    Members
    -------
    busy : In(1)
        The core owns the ports (``read``, ``write``); otherwise the host does (``host_*``).
    read_addr : In(act_addr_bits)
        Byte address of the window to read (its bits below ``cfg.act_align`` are ignored).
    read_data : Out(ArrayLayout(signed(8), R))
        The window: ``isa.act_read_latency(cfg) - 1`` cycles after ``read_addr`` (1 with
        whole-row windows, straight from the SRAMs through the bank select; 2 otherwise, from
        registers through the rotator). The reader registers it.
    write : In(stream.Signature(act_write_layout(cfg), always_ready=True))
        A write, landing ``isa.act_write_latency(cfg)`` cycles after it is presented (0: in
        the same cycle; 1: registered first, with windows at any byte).
    host_row : In(range(act_depth))
        The row the host reads or writes while the core is idle.
    host_w_en : In(P // 4)
        Host write enables, one per 32-bit word of the row.
    host_w_data : In(32)
    host_data : Out(8 * P)
        Row ``host_row``, a cycle later.

    Timing
    ------
    One read and one write a cycle, at any byte addresses: the window on ``read_data``
    ``isa.act_read_latency(cfg) - 1`` cycles after its address, a write landing
    ``isa.act_write_latency(cfg)`` cycles after it is presented.
    """

    def __init__(self, cfg):
        self.cfg = cfg
        p = cfg.act_row_bytes
        super().__init__({
            "busy": In(1),
            "read_addr": In(act_addr_bits(cfg)),
            "read_data": Out(data.ArrayLayout(unsigned(8), cfg.rows)),
            "write": In(stream.Signature(act_write_layout(cfg), always_ready=True)),
            "host_row": In(range(cfg.act_depth)),
            "host_w_en": In(p // 4),
            "host_w_data": In(DATA_BITS),
            "host_data": Out(8 * p),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        p, rows = cfg.act_row_bytes, cfg.rows
        pbits = p.bit_length() - 1
        half = max(1, cfg.act_depth // 2)
        rotate = cfg.act_align < p          # windows at any byte: registers and a rotator

        banks = []
        for b in range(2):
            mem = Memory(shape=unsigned(8 * p), depth=half, init=[])
            m.submodules[f"act_bank{b}"] = mem
            banks.append((mem.read_port(), mem.write_port(granularity=8)))
        (r0, w0), (r1, w1) = banks

        def bank_rows(addr):
            row = addr[pbits:]
            return (row + 1)[1:], row[1:]          # bank 0's row, bank 1's row

        # -- reads ---------------------------------------------------------------------------
        addr = self.read_addr & ~Const(cfg.act_align - 1, len(self.read_addr))
        row0, row1 = bank_rows(addr)
        offset = Signal(pbits + 1, name="read_offset")      # the window's first byte in 2P
        m.d.sync += offset.eq(addr[:pbits + 1])
        both = Signal(16 * p, name="read_rows")
        m.d.comb += both.eq(Cat(r0.data, r1.data))
        if rotate:
            both_q = Signal(16 * p, name="read_rows_q", reset_less=True)
            offset_q = Signal(pbits + 1, name="read_offset_q")
            m.d.sync += [both_q.eq(both), offset_q.eq(offset)]
            both, offset = both_q, offset_q
        double = Cat(both, both)                   # so that window bytes never wrap
        with m.Switch(offset):
            for s in range(2 * p):
                if rotate or s % p == 0:
                    with m.Case(s):
                        m.d.comb += self.read_data.as_value().eq(double[8 * s:8 * (s + rows)])

        # -- writes --------------------------------------------------------------------------
        wr = self.write
        w_row0, w_row1 = bank_rows(wr.payload.addr)
        w_offset = wr.payload.addr[:pbits + 1]
        placed = Signal(16 * p, name="write_bytes")
        enables = Signal(2 * p, name="write_enables")
        # With one vector lane and no window unit, every writer repeats one byte across the
        # write (rtl/vecfeed.py; FILL): only the byte enables move with the offset, and the
        # byte rotator (2P multiplexers of R bytes) is not built.
        uniform = cfg.vec_lanes == 1 and not cfg.pool
        with m.If(wr.valid):
            if uniform:
                m.d.comb += placed.eq(wr.payload.data[0].replicate(2 * p))
            with m.Switch(w_offset):
                for s in range(2 * p):
                    with m.Case(s):
                        for j in range(2 * p):
                            k = (j - s) % (2 * p)
                            if k < rows:
                                if not uniform:
                                    m.d.comb += placed[8 * j:8 * j + 8].eq(wr.payload.data[k])
                                m.d.comb += enables[j].eq(k < wr.payload.count)
        if rotate:
            regs = [Signal.like(v, name=f"write_{i}_q", reset_less=v is not enables)
                    for i, v in enumerate((placed, enables, w_row0, w_row1))]
            m.d.sync += [r.eq(v) for r, v in zip(regs, (placed, enables, w_row0, w_row1),
                                                    strict=True)]
            placed, enables, w_row0, w_row1 = regs

        # -- ports: the core's while busy, the host's while idle ---------------------------------
        host_bank = self.host_row[0] if cfg.act_depth > 1 else Const(0, 1)
        host_index = self.host_row[1:]
        host_bank_q = Signal(name="host_bank_q")
        m.d.sync += host_bank_q.eq(host_bank)
        m.d.comb += self.host_data.eq(Mux(host_bank_q, r1.data, r0.data))
        word_enables = Cat(*[en.replicate(4) for en in self.host_w_en])
        with m.If(self.busy):
            m.d.comb += [
                r0.addr.eq(row0), r1.addr.eq(row1),
                w0.addr.eq(w_row0), w1.addr.eq(w_row1),
                w0.data.eq(placed[:8 * p]), w1.data.eq(placed[8 * p:]),
                w0.en.eq(enables[:p]), w1.en.eq(enables[p:]),
            ]
        with m.Else():
            copies = Cat(*[self.host_w_data] * (p // 4))
            m.d.comb += [
                r0.addr.eq(host_index), r1.addr.eq(host_index),
                w0.addr.eq(host_index), w1.addr.eq(host_index),
                w0.data.eq(copies), w1.data.eq(copies),
                w0.en.eq(Mux(host_bank, 0, word_enables)),
                w1.en.eq(Mux(host_bank, word_enables, 0)),
            ]
        return m
