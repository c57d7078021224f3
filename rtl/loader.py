"""The weight loader: copies one R x C weight tile from weight SRAM into the array's shadows."""

from amaranth import Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .array import shadow_write_layout

__all__ = ["WeightLoader"]


class WeightLoader(wiring.Component):
    """Streams weight SRAM rows ``addr .. addr+R-1`` into shadow rows ``0 .. R-1``.

    Members
    -------
    start : In(stream.Signature(range(wgt_depth), always_ready=True))
        A load of the tile at weight SRAM row ``payload``. Loads may start every R cycles.
    rd_addr : Out(range(wgt_depth))
        Address for the weight SRAM's synchronous read port (data one cycle later).
    rd_data : In(unsigned(8 * C))
        That read port's data.
    w : Out(stream.Signature(shadow_write_layout(R, C), always_ready=True))
        Shadow writes for the array.

    Timing
    ------
    A start in cycle s writes shadow row j at the end of cycle s + C + j (j < R). The
    wait of C cycles lets the previous tile's swap reach the array's last column before its
    shadows are overwritten; see docs/architecture.md ("weight double-buffering"). With C >= 2
    row j is read in s + C - 2 + j and its data registered before the write (the weight SRAM's
    banks are spread over the chip, and a block RAM's clock-to-output is slow: the data gets a
    cycle to reach the array), with C = 1 read in s + j and written from the read port.
    """

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__({
            "start": In(stream.Signature(range(cfg.wgt_depth), always_ready=True)),
            "rd_addr": Out(range(cfg.wgt_depth)),
            "rd_data": In(unsigned(8 * cfg.cols)),
            "w": Out(stream.Signature(shadow_write_layout(cfg.rows, cfg.cols),
                                      always_ready=True)),
        })

    def elaborate(self, platform):
        m = Module()
        rows, cols = self.cfg.rows, self.cfg.cols

        # Delay the start by C - 1 cycles, or C - 2 and a register for the read's data; the read
        # port adds the last one.
        registered = cols >= 2
        valid, addr = self.start.valid, self.start.payload
        for stage in range(cols - 1 - registered):
            next_valid = Signal(name=f"delay{stage}_valid")
            next_addr = Signal.like(addr, name=f"delay{stage}_addr")
            m.d.sync += [next_valid.eq(valid), next_addr.eq(addr)]
            valid, addr = next_valid, next_addr

        # The read address of the tile's rows after the first is a register (``ptr``), counted
        # up as they are read: the weight SRAM's banks are spread over the chip, and an adder
        # in front of their address inputs would share the cycle with that route.
        active = Signal()
        ptr = Signal(range(self.cfg.wgt_depth))
        row = Signal(range(max(2, rows)))
        with m.If(valid):
            # A new tile; loads are spaced at least R cycles apart, so the previous one is done.
            m.d.comb += self.rd_addr.eq(addr)
            m.d.sync += [ptr.eq(addr + 1), row.eq(1), active.eq(rows > 1)]
        with m.Elif(active):
            m.d.comb += self.rd_addr.eq(ptr)
            m.d.sync += [ptr.eq(ptr + 1), row.eq(row + 1)]
            with m.If(row == rows - 1):
                m.d.sync += active.eq(0)

        out_valid = Signal()
        out_sel = Signal.like(self.w.payload.sel)
        m.d.sync += [
            out_valid.eq(valid | active),
            out_sel.eq(Mux(valid, 0, row)),
        ]
        out_row = self.rd_data
        if registered:
            late_valid = Signal()
            late_sel = Signal.like(out_sel)
            late_row = Signal.like(out_row, reset_less=True)
            m.d.sync += [late_valid.eq(out_valid), late_sel.eq(out_sel), late_row.eq(out_row)]
            out_valid, out_sel, out_row = late_valid, late_sel, late_row
        m.d.comb += [
            self.w.valid.eq(out_valid),
            self.w.payload.sel.eq(out_sel),
            self.w.payload.row.eq(out_row),
        ]
        return m
