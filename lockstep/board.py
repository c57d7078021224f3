"""The runtime's board backend: a Lockstep core on a dev board, over its USB serial port.

:class:`BoardConnection` opens the port, checks (with the identification registers) that the
board carries the core the program was compiled for, and runs program images through the host
link (lockstep/hostlink.py). It keeps what the board holds (lockstep/held.py): a run loads only
the rows its program needs that the board may not hold, so a compiled network's weights go over
the link once, and each later inference loads its input and reads back its output rows only.
"""

import time
from dataclasses import dataclass

import numpy as np

from boards.catalog import get_board
from rtl.hostmap import Reg
from sim.model import access_of
from sim.rtlsim import RtlResult

from .held import HeldImage, after_run, load_needed, read_rows
from .hostlink import HostLinkClient, LinkError, SerialTransport

__all__ = ["BoardConnection", "BoardRun"]


@dataclass
class BoardRun:
    """One run on the board: the core's result (a sim.rtlsim.RtlResult whose ``act`` holds the
    rows read back, zeros elsewhere; ``acc`` only with a full readback), the rows loaded per
    SRAM and the seconds each phase took on the link."""
    result: RtlResult
    loaded_rows: dict
    load_s: float
    run_s: float           # START, polls until done, the counters
    readback_s: float

    @property
    def total_s(self):
        return self.load_s + self.run_s + self.readback_s


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
        self.held = HeldImage(self.board.core)
        self._needs = {}

    @property
    def cfg(self):
        return self.board.core

    def needs(self, state):
        """What ``state``'s program reads before writing (sim.model.Access), cached per
        program: addresses never depend on data, so any input gives the same."""
        key = state.prog.tobytes()
        if key not in self._needs:
            self._needs[key] = access_of(state)
        return self._needs[key]

    def run(self, state, timeout=10.0, outputs=None):
        """Run one program image: load what its program needs that the board may not hold,
        start it, wait (at most ``timeout`` seconds), read the counters, then the activation
        rows ``outputs`` (None: the whole activation and accumulator SRAMs). A
        :class:`BoardRun`."""
        if state.cfg != self.cfg:
            raise LinkError(f"the program was compiled for a different core than the one on "
                            f"{self.board.name} ({self.cfg.rows}x{self.cfg.cols})")
        needs = self.needs(state)
        client = self.client
        began = time.perf_counter()
        loaded = client.perform(load_needed(client.protocol, state, self.held, needs))
        loaded_at = time.perf_counter()
        after_run(self.held, needs)    # before START: if START fails, the core may have run
        client.start()
        status = client.wait(timeout)
        counters = client.read_words(client.protocol.map.reg(Reg.CYCLES), 4)   # ..ERR_PC
        ran_at = time.perf_counter()
        act = np.zeros_like(state.act)
        acc = None
        if outputs is None:
            act[:] = client.perform(read_rows(client.protocol, self.held, "act",
                                              np.arange(self.cfg.act_depth)))
            acc = client.perform(read_rows(client.protocol, self.held, "acc",
                                           np.arange(self.cfg.acc_depth)))
        else:
            rows = np.asarray(outputs, dtype=int)
            act[rows] = client.perform(read_rows(client.protocol, self.held, "act", rows))
        done = time.perf_counter()
        result = RtlResult(error=status.error, cycles=counters[0], mac_cycles=counters[1],
                           instret=counters[2], err_pc=counters[3], act=act, acc=acc)
        return BoardRun(result, {k: len(v) for k, v in loaded.items()}, loaded_at - began,
                        ran_at - loaded_at, done - ran_at)

    def close(self):
        self.client.transport.close()
