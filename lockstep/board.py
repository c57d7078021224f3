"""The runtime's board backend: a Lockstep core on a dev board, over its USB serial port.

:class:`BoardConnection` opens the port, checks (with the identification registers) that the
board carries the core the program was compiled for, and runs program images through the host
link (lockstep/hostlink.py), loading only the SRAM rows that changed since the previous run.
"""

from boards.catalog import get_board

from .hostlink import HostLinkClient, LinkError, SerialTransport

__all__ = ["BoardConnection"]


class BoardConnection:
    """A board on serial ``port``. ``transport`` replaces the serial port (tests)."""

    def __init__(self, board_name, port=None, baud=None, timeout=1.0, transport=None):
        self.board = get_board(board_name)
        if transport is None:
            if not port:
                raise LinkError("the board backend needs a serial port (--port /dev/ttyUSB0)")
            transport = SerialTransport(port, baud=baud or self.board.baud, timeout=timeout)
        self.client = HostLinkClient(transport, self.board.core)
        self.client.check_config()
        self.previous = None

    @property
    def cfg(self):
        return self.board.core

    def run(self, state, timeout=10.0):
        """Run one program image; returns a sim.rtlsim.RtlResult with the board's counters."""
        if state.cfg != self.cfg:
            raise LinkError(f"the program was compiled for a different core than the one on "
                            f"{self.board.name} ({self.cfg.rows}x{self.cfg.cols})")
        result = self.client.run(state, timeout=timeout, previous=self.previous)
        # What the board holds now: the image we loaded, with the SRAMs it read back.
        self.previous = state.copy()
        self.previous.act[:] = result.act
        self.previous.acc[:] = result.acc
        return result

    def close(self):
        self.client.transport.close()
