"""The host link: a PC talks to the core's host bus over a UART, in frames with a CRC.

:class:`HostLink` is the bus initiator (UART receiver, frame engine, UART transmitter);
:class:`LinkedCore` is a whole core behind a host link, with nothing but a serial pair and three
LED outputs. The protocol (frame layout, commands, CRC, status codes, the order of the checks)
is defined once in rtl/hostlink_protocol.py and documented in docs/host-protocol.md.
"""

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .core import LockstepCore
from .hostbus import HostBusSignature
from .hostframe import FrameEngine, crc16_step
from .hostlink_protocol import BITS_PER_BYTE, DEFAULT_TIMEOUT_BITS
from .uart import UARTRx, UARTTx, check_divisor

__all__ = ["HostLink", "LinkedCore", "crc16_step"]


def _check_timeout_bits(timeout_bits):
    least = 2 * BITS_PER_BYTE
    if not isinstance(timeout_bits, int) or timeout_bits < least:
        raise ValueError(f"timeout_bits must be an integer of at least {least} bit times "
                         f"(two bytes), not {timeout_bits!r}")
    return timeout_bits


class HostLink(wiring.Component):
    """UART host link: receives request frames, performs them on the host bus, answers.

    Parameters
    ----------
    cfg : CoreConfig
        The core behind the bus (sets the address width).
    divisor : int
        Clock cycles per bit (rtl/uart.py, ``uart_divisor``).
    timeout_bits : int
        Silence in the middle of a frame, in bit times, after which the frame is dropped and
        answered with TIMEOUT.

    Members
    -------
    rx : In(1)
        Serial line from the PC (idle high).
    tx : Out(1)
        Serial line to the PC.
    bus : Out(HostBusSignature(cfg))
        The host bus; the link is its initiator.

    Behaviour: a :class:`rtl.hostframe.FrameEngine` between the UART receiver and
    transmitter (rtl/uart.py); the engine's docstring has the rules.

    Timing
    ------
    As the engine's, plus the UART: a WRITE of n words takes 3n cycles on the bus after its
    last CRC byte; a READ reads each word (plus the bus register of :class:`LinkedCore`) just
    before its four bytes are sent, so the response streams at the full line rate. The
    response's SYNC goes to the transmitter's holding register 2 (READ, PING, errors) or 3n + 2
    (WRITE) cycles after the request's last byte was received, and its start bit is on the line
    2 cycles after that (rtl/uart.py).
    """

    def __init__(self, cfg, divisor, timeout_bits=DEFAULT_TIMEOUT_BITS):
        self.cfg = cfg
        self.divisor = check_divisor(divisor)
        self.timeout_bits = _check_timeout_bits(timeout_bits)
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1),
            "bus": Out(HostBusSignature(cfg)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = urx = UARTRx(self.divisor)
        m.submodules.uart_tx = utx = UARTTx(self.divisor)
        m.submodules.engine = engine = FrameEngine(self.cfg, self.timeout_bits * self.divisor)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx)]
        wiring.connect(m, urx.o, engine.i)
        wiring.connect(m, engine.o, utx.i)
        wiring.connect(m, engine.bus, wiring.flipped(self.bus))
        return m


class LinkedCore(wiring.Component):
    """A Lockstep core behind a host link: what goes on a board.

    Parameters
    ----------
    cfg, divisor, timeout_bits
        As for :class:`LockstepCore` and :class:`HostLink`.

    Members
    -------
    rx : In(1)
        Serial line from the PC.
    tx : Out(1)
        Serial line to the PC.
    busy, done : Out(1)
        The core is running a program / has stopped (for LEDs).
    error : Out(1)
        The last run stopped with an error (the code is in STATUS).

    Timing
    ------
    What the link puts on the bus (address, write and read strobes, write data) reaches
    the core through a register, a cycle later and in order; the link waits for ``r_valid``,
    so a read's answer simply comes a cycle later too.
    """

    def __init__(self, cfg, divisor, timeout_bits=DEFAULT_TIMEOUT_BITS):
        self.cfg = cfg
        self.divisor = check_divisor(divisor)
        self.timeout_bits = _check_timeout_bits(timeout_bits)
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1),
            "busy": Out(1),
            "done": Out(1),
            "error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = LockstepCore(self.cfg)
        m.submodules.link = link = HostLink(self.cfg, self.divisor, self.timeout_bits)
        # The link sits by the UART pins, the SRAMs' write enables are all over the chip: the
        # bus goes through a register between them (without it, the write decode was an ECP5
        # core's critical path, 85 MHz on a 6x6 array, mostly routing). The answer comes from
        # the core's own register.
        host = core.host
        m.d.sync += [host.addr.eq(link.bus.addr), host.w_en.eq(link.bus.w_en),
                     host.w_data.eq(link.bus.w_data), host.r_en.eq(link.bus.r_en)]
        m.d.comb += [
            link.bus.r_data.eq(host.r_data),
            link.bus.r_valid.eq(host.r_valid),
            link.rx.eq(self.rx),
            self.tx.eq(link.tx),
            self.busy.eq(core.busy),
            self.done.eq(core.done),
            self.error.eq(core.error != 0),
        ]
        return m
