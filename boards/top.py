"""The top level of a board build: a :class:`~rtl.hostlink.LinkedCore` on the board's pins."""

from amaranth import Elaboratable, Module
from amaranth.lib import io

from rtl.hostlink import LinkedCore

__all__ = ["BoardTop"]


class BoardTop(Elaboratable):
    """The board's core behind its UART host link, clocked by the board oscillator.

    Parameters
    ----------
    board : boards.catalog.Board
        Sets the core (``board.core``), the clock (``board.clock_mhz``, the platform's default
        clock, no PLL) and the UART divisor (``board.uart_divisor``: ``board.baud`` 8N1).

    Ports (platform resources)
    --------------------------
    uart 0 : rx (in), tx (out)
        The host link (docs/host-protocol.md), to the board's USB serial bridge.
    board.leds : out
        Up to three status LEDs, in this order: busy (a program is running), error (the last
        run stopped with an error), done (the core has stopped). iCEBreaker: green = busy,
        red = error. ULX3S: LED 0 = busy, LED 1 = error, LED 2 = done.

    Timing: everything runs in the ``sync`` domain of the platform's default clock (iCEBreaker
    12 MHz, ULX3S 25 MHz), reset by the platform's power-on reset. The serial input passes the
    UART receiver's 2-flop synchroniser; LEDs are driven straight from the core's outputs
    (through plain I/O buffers, which apply the board's active-low inversion).
    """

    def __init__(self, board):
        self.board = board

    def elaborate(self, platform):
        m = Module()
        board = self.board
        m.submodules.linked = linked = LinkedCore(board.core, board.uart_divisor)
        if platform is None:
            return m
        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx = rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = tx = io.Buffer("o", uart.tx)
        m.d.comb += [
            linked.rx.eq(rx.i),
            tx.o.eq(linked.tx),
        ]
        status = (linked.busy, linked.error, linked.done)
        for (name, number), signal in zip(board.leds, status[:len(board.leds)], strict=True):
            led = io.Buffer("o", platform.request(name, number, dir="-"))
            m.submodules[f"led_{name}_{number}"] = led
            m.d.comb += led.o.eq(signal)
        return m
