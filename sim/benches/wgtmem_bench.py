"""cocotb testbench for :class:`rtl.wgtmem.WeightMemory`: random reads and byte-lane writes,
each read checked against a Python image of the memory a cycle after its address.

Environment: ``LOCKSTEP_LANES``, ``LOCKSTEP_DEPTH`` (as the design was built) and
``LOCKSTEP_SEED``. The first pass writes every row touched later (SPRAM powers up undefined).
"""

import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

LANES = int(os.environ["LOCKSTEP_LANES"])
DEPTH = int(os.environ["LOCKSTEP_DEPTH"])
SEED = int(os.environ.get("LOCKSTEP_SEED", "1"))
ACCESSES = 3000


@cocotb.test()
async def random_accesses(dut):
    rng = random.Random(SEED)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 0
    dut.w_en.value = 0
    # Rows in every bank, near each bank's edges as well as anywhere.
    rows = sorted({rng.randrange(DEPTH) for _ in range(48)}
                  | {0, DEPTH - 1, 16383 % DEPTH, 16384 % DEPTH})
    image = {}
    await FallingEdge(dut.clk)
    for row in rows:      # a full write of each row first
        value = rng.getrandbits(8 * LANES)
        dut.addr.value, dut.w_data.value, dut.w_en.value = row, value, (1 << LANES) - 1
        image[row] = value
        await FallingEdge(dut.clk)
    expected = None       # (row, value) the read of the cycle before must give
    mismatches = 0
    for i in range(ACCESSES):
        if expected is not None:
            got = int(dut.r_data.value)
            if got != expected[1]:
                mismatches += 1
                dut._log.error(f"[seed {SEED}] access {i}: row {expected[0]} read {got:#x}, "
                               f"expected {expected[1]:#x}")
        row = rng.choice(rows)
        if rng.random() < 0.3:        # a write of some byte lanes
            lanes = rng.randrange(1, 1 << LANES)
            value = rng.getrandbits(8 * LANES)
            mask = sum(0xFF << (8 * b) for b in range(LANES) if lanes >> b & 1)
            image[row] = image[row] & ~mask | value & mask
            dut.addr.value, dut.w_data.value, dut.w_en.value = row, value, lanes
            expected = None           # r_data is undefined after a write
        else:
            dut.addr.value, dut.w_en.value = row, 0
            expected = (row, image[row])
        await FallingEdge(dut.clk)
    assert mismatches == 0, f"[seed {SEED}] {mismatches} reads differed"
