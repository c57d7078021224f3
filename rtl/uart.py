"""8N1 UART receiver and transmitter with byte streams, for the host link (rtl/hostlink.py).

Both run in the ``sync`` domain and count ``divisor`` clock cycles per bit, so the baud rate is
``f_clk / divisor``: :func:`uart_divisor` picks the divisor for a clock and a baud rate and
refuses a combination whose rate error would make the link unreliable.
"""

from amaranth import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["UARTRx", "UARTTx", "uart_divisor", "check_divisor", "MIN_DIVISOR", "MAX_RATE_ERROR"]

MIN_DIVISOR = 4          # the receiver needs a few cycles per bit to find the middle
MAX_RATE_ERROR = 0.02    # an 8N1 frame tolerates ~4 % between both ends; keep half for the PC


def check_divisor(divisor):
    """``divisor`` if it is a valid number of clock cycles per bit, else ValueError."""
    if not isinstance(divisor, int) or isinstance(divisor, bool) or divisor < MIN_DIVISOR:
        raise ValueError(f"UART divisor must be an integer of at least {MIN_DIVISOR} clock "
                         f"cycles per bit, not {divisor!r}")
    return divisor


def uart_divisor(clk_hz, baud):
    """Clock cycles per bit for ``baud`` at ``clk_hz``; ValueError if the nearest whole
    divisor is off by more than :data:`MAX_RATE_ERROR` or below :data:`MIN_DIVISOR`."""
    divisor = round(clk_hz / baud)
    if divisor < MIN_DIVISOR:
        raise ValueError(f"{baud} baud needs at least {MIN_DIVISOR * baud} Hz, "
                         f"the clock is {clk_hz} Hz")
    error = abs(clk_hz / divisor - baud) / baud
    if error > MAX_RATE_ERROR:
        raise ValueError(f"{clk_hz} Hz / {divisor} = {clk_hz / divisor:.0f} baud is "
                         f"{100 * error:.1f} % off {baud} baud (at most "
                         f"{100 * MAX_RATE_ERROR:.0f} % is reliable)")
    return divisor


class UARTRx(wiring.Component):
    """8N1 receiver.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (at least 4).

    Members
    -------
    rx : In(1)
        The serial line (idle high). Asynchronous: it passes a 2-flop synchroniser first.
    o : Out(stream.Signature(8))
        Received bytes. ``valid`` stays up until ``ready``; a byte that completes while the
        previous one is still waiting is dropped (``overrun``).
    overrun : Out(1)
        One-cycle pulse: a byte was dropped because ``o`` was not taken in time.
    frame_error : Out(1)
        One-cycle pulse: a byte's stop bit was low; the byte is dropped.

    Timing
    ------
    A start bit is a falling edge of the synchronised line, confirmed low half a bit
    later; every bit is then sampled in its middle (``divisor`` cycles apart, the middle
    found to within one cycle). The byte appears on ``o`` in the cycle after the middle of the
    stop bit, i.e. 2 + ``divisor // 2`` + 9 ``divisor`` (+1) cycles after the start bit's
    edge, and the receiver looks for the next start bit from then on (half a stop bit of
    slack for a sender that runs fast).
    """

    def __init__(self, divisor):
        self.divisor = check_divisor(divisor)
        super().__init__({
            "rx": In(1, init=1),
            "o": Out(stream.Signature(8)),
            "overrun": Out(1),
            "frame_error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        divisor = self.divisor
        line = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, line, init=1, reset_less=False)
        last = Signal(init=1)
        m.d.sync += last.eq(line)

        count = Signal(range(divisor))
        bit = Signal(range(8))
        shreg = Signal(8)

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        with m.If(count != 0):
            m.d.sync += count.eq(count - 1)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(last & ~line):
                    m.d.sync += count.eq(divisor // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(count == 0):
                    with m.If(line):
                        m.next = "IDLE"           # a glitch, not a start bit
                    with m.Else():
                        m.d.sync += [count.eq(divisor - 1), bit.eq(0)]
                        m.next = "DATA"
            with m.State("DATA"):
                with m.If(count == 0):
                    m.d.sync += [shreg.eq(Cat(shreg[1:], line)), count.eq(divisor - 1),
                                 bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(count == 0):
                    with m.If(~line):
                        m.d.comb += self.frame_error.eq(1)
                    with m.Elif(self.o.valid & ~self.o.ready):
                        m.d.comb += self.overrun.eq(1)
                    with m.Else():
                        m.d.sync += [self.o.payload.eq(shreg), self.o.valid.eq(1)]
                    m.next = "IDLE"
        return m


class UARTTx(wiring.Component):
    """8N1 transmitter.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (at least 4).

    Members
    -------
    i : In(stream.Signature(8))
        Bytes to send, least significant bit first.
    tx : Out(1)
        The serial line, straight from a register (idle high, no glitches).

    Timing
    ------
    A byte is taken (``valid`` and ``ready`` high) into a holding register; ``ready``
    is that register's empty flag, a flip-flop, so that the sender's control logic and the
    shift register's each have a cycle of their own. A byte taken in cycle t while the line is
    idle drives its start bit from cycle t + 2, then 8 data bits and the stop bit, ``divisor``
    cycles each. The holding register empties into the shift register in the last cycle of a
    stop bit, so a stream that keeps ``valid`` up is sent back to back: exactly 10 ``divisor``
    cycles per byte on the line.
    """

    def __init__(self, divisor):
        self.divisor = check_divisor(divisor)
        super().__init__({
            "i": In(stream.Signature(8)),
            "tx": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        divisor = self.divisor
        shreg = Signal(10, init=0x3FF)     # the bits still to send, the current one in bit 0
        count = Signal(range(divisor))
        bits = Signal(range(11))           # bits left, the current one included
        hold = Signal(8)                   # the next byte
        full = Signal()
        last_cycle = (bits == 0) | ((bits == 1) & (count == 0))
        m.d.comb += [self.tx.eq(shreg[0]), self.i.ready.eq(~full)]

        with m.If(self.i.valid & ~full):
            m.d.sync += [hold.eq(self.i.payload), full.eq(1)]
        with m.If(full & last_cycle):
            m.d.sync += [shreg.eq(Cat(Const(0, 1), hold, Const(1, 1))),
                         count.eq(divisor - 1), bits.eq(10), full.eq(0)]
        with m.Elif(bits != 0):
            with m.If(count == 0):
                m.d.sync += [shreg.eq(Cat(shreg[1:], Const(1, 1))), count.eq(divisor - 1),
                             bits.eq(bits - 1)]
            with m.Else():
                m.d.sync += count.eq(count - 1)
        return m
