"""cocotb testbench for a whole core, driven only through its host port.

:class:`CoreTB` is the driver (host-port transactions, one per cycle, back to back), the monitor
(reads the SRAMs and counters back) and the checker (compares with :mod:`sim.model`). It keeps
a mirror of what the core's SRAMs hold, so each program only writes the rows that change.
"""

import json
import os
import time

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge, SimTimeoutError, with_timeout

from rtl.config import CoreConfig
from rtl.hostmap import (
    SRAM_FIELDS,
    STATUS_BUSY,
    STATUS_DONE,
    STATUS_ERROR_SHIFT,
    HostMap,
    Reg,
    row_words,
)
from sim.model import CoreState, run

__all__ = ["CoreTB", "config_from_env", "seed_from_env", "SRAM_FIELDS"]


def config_from_env():
    return CoreConfig.from_dict(json.loads(os.environ["LOCKSTEP_CONFIG"]))


def seed_from_env():
    return int(os.environ.get("LOCKSTEP_SEED", "1"))


class CoreTB:
    def __init__(self, dut, cfg):
        self.dut = dut
        self.cfg = cfg
        self.map = HostMap(cfg)
        self.mirror = CoreState(cfg)   # what the RTL's SRAMs hold
        self.clock_cycle = 0

    async def reset(self):
        Clock(self.dut.clk, 10, unit="ns").start()
        self.dut.host__w_en.value = 0
        self.dut.host__r_en.value = 0
        self.dut.host__addr.value = 0
        self.dut.host__w_data.value = 0
        self.dut.rst.value = 1
        for _ in range(2):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0
        await FallingEdge(self.dut.clk)
        if self.cfg.wgt_spram:
            # SPRAM powers up undefined (X in Yosys' model), block RAM as zero: write the zeros
            # that the mirror holds, as a host does before a program reads a weight row.
            await self.write_state(self.mirror, force_sram="wgt")

    # -- host port transactions ------------------------------------------------------------------

    async def transact(self, ops):
        """Run ``ops`` back to back, one per cycle: ("w", addr, data) or ("r", addr).

        Returns the read data in order. Inputs are driven and outputs sampled at the falling
        edge, so each access is registered by the next rising edge; a read's data must come
        exactly ``cfg.host_read_latency`` cycles after it, with ``r_valid``, and ``r_valid``
        must be low in every other cycle.
        """
        dut = self.dut
        latency = self.cfg.host_read_latency
        results = []
        reads = []   # for each cycle driven so far: was it a read?
        steps = [*ops, *[None] * latency]
        for index, op in enumerate(steps):
            # (The first `latency` cycles still show the previous call's last reads, which
            # it checked; it returns at the edge where the last one is sampled.)
            due = len(reads) >= latency and reads[-latency]
            if len(reads) >= latency:
                valid = int(dut.host__r_valid.value)
                assert valid == due, (f"r_valid is {valid} {latency} cycles after "
                                      f"{'a read' if due else 'no read'}")
            if due:
                results.append(int(dut.host__r_data.value))
            if op is None:
                dut.host__w_en.value = 0
                dut.host__r_en.value = 0
                reads.append(False)
                if index == len(steps) - 1:
                    break
            else:
                kind, addr = op[0], op[1]
                dut.host__addr.value = addr
                dut.host__w_en.value = int(kind == "w")
                dut.host__r_en.value = int(kind == "r")
                if kind == "w":
                    dut.host__w_data.value = op[2] & 0xFFFF_FFFF
                reads.append(kind == "r")
            await FallingEdge(dut.clk)
        return results

    async def read_reg(self, reg):
        return (await self.transact([("r", self.map.reg(reg))]))[0]

    # -- SRAM images -----------------------------------------------------------------------------

    def row_words(self, state, name, row):
        """The host words of row ``row`` of SRAM ``name`` in model state ``state``."""
        return row_words(self.map, state, name, row)

    async def write_state(self, state, force=False, force_sram=None):
        """Write every SRAM row of ``state`` that differs from the mirror (or all, if ``force``;
        or all of SRAM ``force_sram``)."""
        ops = []
        for name, region in SRAM_FIELDS:
            for row in range(self.map.depth(region)):
                new = self.row_words(state, name, row)
                old = self.row_words(self.mirror, name, row)
                for word, value in enumerate(new):
                    if force or name == force_sram or value != old[word]:
                        ops.append(("w", self.map.addr(region, row, word), value))
        await self.transact(ops)
        for attr in ("prog", "act", "wgt", "acc", "bias", "mult", "shift"):
            getattr(self.mirror, attr)[:] = getattr(state, attr)

    async def read_region(self, name):
        region = dict(SRAM_FIELDS)[name]
        per_row = self.map.words_per_row(region)
        depth = self.map.depth(region)
        ops = [("r", self.map.addr(region, row, w)) for row in range(depth) for w in range(per_row)]
        words = await self.transact(ops)
        return [words[r * per_row:(r + 1) * per_row] for r in range(depth)]

    async def read_sram(self, name):
        """SRAM ``name`` ("act", "wgt", "acc", "prog") as a numpy array in the model's layout."""
        region = dict(SRAM_FIELDS)[name]
        rows = [self.map.words_to_row(region, w) for w in await self.read_region(name)]
        return np.array(rows, dtype=getattr(self.mirror, name).dtype).reshape(
            getattr(self.mirror, name).shape)

    # -- running programs ------------------------------------------------------------------------

    async def start_and_wait(self, timeout_cycles):
        """Start the program and wait until the core is idle; returns the error code.

        Waits on the ``busy`` pin's falling edge rather than polling STATUS, so no Python runs
        while the program does: the simulator's speed is the core's (``last_run_seconds``).
        """
        await self.transact([("w", self.map.reg(Reg.CTRL), 1)])
        started = time.perf_counter()
        if int(self.dut.busy.value):
            try:
                await with_timeout(FallingEdge(self.dut.busy), timeout_cycles * 10, "ns")
            except SimTimeoutError:
                raise AssertionError(f"core still busy after {timeout_cycles} cycles") from None
        self.last_run_seconds = time.perf_counter() - started
        await FallingEdge(self.dut.clk)
        status = await self.read_reg(Reg.STATUS)
        assert not status & STATUS_BUSY, f"STATUS {status:#x}: busy pin low but STATUS busy"
        assert status & STATUS_DONE, f"STATUS {status:#x}: not busy but not done"
        return status >> STATUS_ERROR_SHIFT & 0xF

    async def run_and_check(self, state, what, check_srams=("act", "acc")):
        """Load ``state`` (program included), run it on the RTL and on the model, and compare
        error, counters and the SRAMs that a program can write. ``what`` names the case (with
        its seed) in failure messages."""
        await self.write_state(state)
        expected = state.copy()
        result = run(expected)
        error = await self.start_and_wait(timeout_cycles=result.cycles + 1000)
        counters = {reg: await self.read_reg(reg)
                    for reg in (Reg.CYCLES, Reg.MAC_CYCLES, Reg.INSTRET, Reg.ERR_PC)}
        got = dict(error=error, cycles=counters[Reg.CYCLES], mac_cycles=counters[Reg.MAC_CYCLES],
                   instret=counters[Reg.INSTRET], err_pc=counters[Reg.ERR_PC])
        want = dict(error=int(result.error), cycles=result.cycles, mac_cycles=result.mac_cycles,
                    instret=result.instret, err_pc=result.err_pc)
        assert got == want, f"{what}: RTL {got} != model {want}"
        for name in check_srams:
            rtl = await self.read_sram(name)
            model = getattr(expected, name)
            if not np.array_equal(rtl, model):
                rows = sorted({int(r) for r in np.argwhere(rtl != model)[:, 0]})
                raise AssertionError(
                    f"{what}: {name} SRAM differs from the model in rows {rows[:10]}; "
                    f"first: RTL {rtl[rows[0]].tolist()} model {model[rows[0]].tolist()}")
        # The core now holds what the model says.
        self.mirror = expected
        return result
