"""The weight SRAM: block RAM inferred by the synthesis tool, or the iCE40UP5K's SPRAMs."""

from amaranth import Cat, ClockSignal, Const, Module, Signal, unsigned
from amaranth.hdl import Instance
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .config import SPRAM_DEPTH, SPRAM_WIDTH, spram_banks

__all__ = ["WeightMemory"]


class WeightMemory(wiring.Component):
    """``depth`` rows of ``lanes`` bytes behind one port: one access a cycle, a read or a
    write, at ``addr``.

    Members
    -------
    addr : In(range(depth))
        The row read (its data in ``r_data`` a cycle later) or written.
    r_data : Out(8 * lanes)
        The row at ``addr`` in the cycle before; undefined after a cycle that wrote.
    w_en : In(lanes)
        Byte lanes to write with ``w_data`` (no read in that cycle).
    w_data : In(8 * lanes)

    ``spram`` False: an Amaranth memory (the synthesis tool's block RAM); True: SB_SPRAM256KA
    instances (:func:`spram_banks`), simulated with Yosys' model (``sim.runner.ice40_cells_sim``).
    Their contents after configuration are undefined, the block RAM's are zero.

    Timing
    ------
    One access a cycle. A read's row is on ``r_data`` in the next cycle (both kinds); a write
    lands at the end of its cycle.
    """

    def __init__(self, lanes, depth, spram=False):
        self.lanes, self.depth, self.spram = lanes, depth, spram
        if spram:
            spram_banks(8 * lanes, depth)
        super().__init__({
            "addr": In(range(depth)),
            "r_data": Out(8 * lanes),
            "w_en": In(lanes),
            "w_data": In(8 * lanes),
        })

    def elaborate(self, platform):
        m = Module()
        if not self.spram:
            m.submodules.mem = mem = Memory(shape=unsigned(8 * self.lanes), depth=self.depth,
                                            init=[])
            read, write = mem.read_port(), mem.write_port(granularity=8)
            m.d.comb += [read.addr.eq(self.addr), write.addr.eq(self.addr),
                         write.data.eq(self.w_data), write.en.eq(self.w_en),
                         self.r_data.eq(read.data)]
            return m

        columns, rows = spram_banks(8 * self.lanes, self.depth)
        row_bits = (rows - 1).bit_length()
        word_bits = (SPRAM_DEPTH - 1).bit_length()
        bank = self.addr[word_bits:word_bits + row_bits] if rows > 1 else Const(0, 1)
        bank_q = Signal.like(bank, name="bank_q")    # the bank whose word r_data shows
        writing = self.w_en.any()
        m.d.sync += bank_q.eq(bank)
        outputs = []
        for r in range(rows):
            words = []
            for c in range(columns):
                word = Signal(SPRAM_WIDTH, name=f"spram{r}_{c}_data")
                # A byte lane enables its two nibbles.
                lanes = self.w_en[2 * c:2 * c + 2]
                mask = Cat(lanes[0], lanes[0], lanes[1], lanes[1])
                m.submodules[f"spram{r}_{c}"] = Instance(
                    "SB_SPRAM256KA",
                    i_ADDRESS=self.addr[:word_bits], i_DATAIN=self.w_data[16 * c:16 * c + 16],
                    i_MASKWREN=mask, i_WREN=writing, i_CHIPSELECT=(bank == r) | (rows == 1),
                    i_CLOCK=ClockSignal(), i_STANDBY=Const(0), i_SLEEP=Const(0),
                    i_POWEROFF=Const(1),     # active low: powered on
                    o_DATAOUT=word)
                words.append(word)
            outputs.append(Cat(*words))
        if rows == 1:
            m.d.comb += self.r_data.eq(outputs[0])
        else:
            with m.Switch(bank_q):
                for r, out in enumerate(outputs):
                    with m.Case(r):
                        m.d.comb += self.r_data.eq(out)
        return m
