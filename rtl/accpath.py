"""The accumulator path: each MATMUL row's array result, added to its accumulator row or not,
written back, with the sums that the accumulator read cannot see yet forwarded."""

from amaranth import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .config import ACC_ADDR_BITS
from .delay import delay, ram_delay
from .pe import PSUM_SHAPE

__all__ = ["AccumulatorPath", "acc_issue_layout", "acc_write_layout"]


def acc_issue_layout():
    """What the path needs of a MATMUL row when it is issued."""
    return data.StructLayout({"acc_addr": unsigned(ACC_ADDR_BITS), "accumulate": 1})


def acc_write_layout(cols):
    return data.StructLayout({"addr": unsigned(ACC_ADDR_BITS), "data": unsigned(32 * cols)})


class AccumulatorPath(wiring.Component):
    """Adds each row that leaves the array to its accumulator row (or not) and writes it.

    Parameters
    ----------
    cfg : CoreConfig
    latency : int
        Cycles from a row's issue (``issue.valid``) to its result on ``y``: the activation read
        and the array (``isa.READ_LATENCY + isa.array_latency``). At least 4.

    Members
    -------
    issue : In(stream.Signature(acc_issue_layout(), always_ready=True))
        A MATMUL row as the sequencer issues it: the accumulator row it writes, and whether it
        adds to what is there.
    y : In(stream.Signature(ArrayLayout(signed(32), C), always_ready=True))
        The array's results, ``latency`` cycles after the row's issue.
    read : Out(stream.Signature(unsigned(14), always_ready=True))
        The accumulator row to read for the add (the SRAM's read port, while ``valid``).
    read_data : In(32 * C)
        That read port's data, a cycle after the address.
    read_row : Out(32 * C)
        ``read_data`` registered (the vector unit's input takes it with
        ``cfg.vec_read_latency`` = 3).
    write : Out(stream.Signature(acc_write_layout(C), always_ready=True))
        The accumulator SRAM write: the row and its sum.

    Timing
    ------
    A row issued in cycle s leaves the array in cycle E = s + ``latency``; its
    accumulator row is read in E - 3 and the read's data registered in E - 1; the sum is made
    in E and written in E + ``cfg.acc_write_latency``. The sums of the rows issued in the
    3 + acc_write_latency cycles before it are not in what the read saw: each one whose row is
    the same replaces the read (the newest wins), so that back-to-back rows may accumulate into
    one row without a stall. One row per cycle, no back-pressure.
    """

    def __init__(self, cfg, latency):
        assert latency >= 4
        self.cfg = cfg
        self.latency = latency
        cols = cfg.cols
        super().__init__({
            "issue": In(stream.Signature(acc_issue_layout(), always_ready=True)),
            "y": In(stream.Signature(data.ArrayLayout(PSUM_SHAPE, cols), always_ready=True)),
            "read": Out(stream.Signature(unsigned(ACC_ADDR_BITS), always_ready=True)),
            "read_data": In(32 * cols),
            "read_row": Out(32 * cols),
            "write": Out(stream.Signature(acc_write_layout(cols), always_ready=True)),
        })

    def elaborate(self, platform):
        m = Module()
        cols = self.cfg.cols
        y = self.y

        # The accumulator row is read three cycles before the array's result comes out (cycle
        # E), and the SRAM's output goes straight into a register (a block RAM's output is slow,
        # and its banks are spread over the chip). With ``cfg.acc_write_latency`` = 1 the sum is
        # registered and written a cycle later, so that the add does not drive the SRAM's data
        # inputs either. The sums of E - 3 - L .. E - 1 (L = acc_write_latency) are not in what
        # that read saw (the write of E - 3 - L's sum is in the read's own cycle): each one's
        # address is compared with the row's, the result registered, and the newest hit's sum
        # replaces the read (those before E - 1 in E - 1, E - 1's in E, where it is the sum
        # register itself, as in an accumulator). Every select comes from a register, and the
        # read port is a plain one (a transparent one compares addresses on the path).
        acc_lag = self.cfg.acc_write_latency
        tag = ram_delay(m, Cat(self.issue.valid, self.issue.payload.accumulate,
                               self.issue.payload.acc_addr), self.latency - 3, "acc_tag")
        tag_valid, tag_accumulate, tag_addr = tag[0], tag[1], tag[2:]
        m.d.comb += [self.read.valid.eq(tag_valid), self.read.payload.eq(tag_addr)]
        row_addr = {3: tag_addr}                    # the row's address in cycle E - k
        for k in (2, 1, 0):
            row_addr[k] = delay(m, row_addr[k + 1], 1, f"acc_addr_w{k}")
        next_accumulate = delay(m, tag_accumulate, 2, "acc_next_acc")    # in E - 1
        sum_reg = Signal(32 * cols, name="acc_sum", reset_less=True)      # the sum of E - 1
        # The sum of E - j as it is in E - 1 (j >= 2), and the write port's address and valid.
        older = {2: sum_reg}
        for j in range(3, 4 + acc_lag):
            older[j] = delay(m, older[j - 1], 1, f"acc_sum{j - 1}", reset_less=True)
        wr_addr = delay(m, row_addr[0], acc_lag, "acc_wr_addr")
        wr_valid = delay(m, y.valid, acc_lag, "acc_wr_valid")
        hit = {}                                    # "the sum of E - j is for the same row"
        for j in (1, 2, 3):                         # compared in E - j
            hit[j] = Signal(name=f"acc_hit_{j}")
            m.d.sync += hit[j].eq(y.valid & (row_addr[0] == row_addr[j])
                                  & (next_accumulate if j == 1 else 1))
        if acc_lag:                                 # compared in E - 3, as it is written
            hit[4] = Signal(name="acc_hit_4")
            m.d.sync += hit[4].eq(wr_valid & (wr_addr == row_addr[3]))
        for j in range(3, 4 + acc_lag):             # seen in E - 1, like hit[2]
            hit[j] = delay(m, hit[j], 1, f"acc_hit_{j}")
        read_row = delay(m, self.read_data, 1, "acc_read", reset_less=True)     # seen in E - 1
        m.d.comb += self.read_row.eq(read_row)
        forwarded = read_row
        for j in reversed(range(2, 4 + acc_lag)):   # the newest hit wins
            forwarded = Mux(hit[j], older[j], forwarded)
        old_row = Signal.like(self.read_data, name="acc_old", reset_less=True)
        m.d.sync += old_row.eq(Mux(next_accumulate, forwarded, 0))
        old_row = Mux(hit[1], sum_reg, old_row)    # hit[1] includes "accumulate": one select

        sums = []
        for c in range(cols):
            sums.append((y.payload[c] + old_row[32 * c:32 * (c + 1)])[:32])
        m.d.sync += sum_reg.eq(Cat(*sums))
        m.d.comb += [
            self.write.valid.eq(wr_valid),
            self.write.payload.addr.eq(wr_addr),
            self.write.payload.data.eq(sum_reg if acc_lag else Cat(*sums)),
        ]
        return m
