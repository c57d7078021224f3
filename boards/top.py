"""The top level of a board build: a :class:`~rtl.hostlink.LinkedCore` on the board's pins."""

from amaranth import ClockDomain, Elaboratable, Module
from amaranth.lib import io

from rtl.hostlink import LinkedCore

from .pll import PllDomain

__all__ = ["BoardTop"]


class BoardTop(Elaboratable):
    """The board's core behind its UART host link, clocked by the board oscillator.

    Parameters
    ----------
    board : boards.catalog.Board
        Sets the core (``board.core``), the clock (``board.clock_mhz``) and the UART divisor
        (``board.uart_divisor``: ``board.baud`` 8N1 at that clock).
    pll : boards.pll.PllSettings or None
        With a PLL (``board.has_pll``), its settings: :class:`boards.pll.PllDomain` makes the
        ``sync`` domain at ``board.clock_mhz`` from the oscillator. Without, the platform's
        default clock (the oscillator) drives it.

    Ports (platform resources)
    --------------------------
    uart 0 : rx (in), tx (out)
        The host link (docs/host-protocol.md), to the board's USB serial bridge.
    board.leds : out
        Up to three status LEDs, in this order: busy (a program is running), error (the last
        run stopped with an error), done (the core has stopped). iCEBreaker: green = busy,
        red = error. ULX3S: LED 0 = busy, LED 1 = error, LED 2 = done.

    Timing: everything runs in the ``sync`` domain at ``board.clock_mhz``, held in reset until
    the PLL has locked and 15 us more (or by the platform's power-on reset, without a PLL).
    The serial input passes the UART receiver's 2-flop synchroniser; LEDs are driven straight
    from the core's outputs
    (through plain I/O buffers, which apply the board's active-low inversion).
    """

    def __init__(self, board, pll=None):
        if board.has_pll and pll is None:
            raise ValueError(f"{board.name} makes its {board.clock_mhz:g} MHz clock with a PLL: "
                             "pass its settings (boards.pll.pll_settings)")
        if pll is not None and pll.out_mhz != board.clock_mhz:
            raise ValueError(f"the PLL makes {pll.out_mhz:g} MHz, the board's clock is "
                             f"{board.clock_mhz:g} MHz")
        self.board = board
        self.pll = pll

    def elaborate(self, platform):
        m = Module()
        board = self.board
        m.submodules.linked = linked = LinkedCore(board.core, board.uart_divisor)
        if platform is None:
            return m
        if self.pll is not None:
            m.domains.sync = ClockDomain("sync")
            m.submodules.clock = PllDomain(self.pll, platform.default_clk)
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
