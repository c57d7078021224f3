"""A tiny cocotb test used by tests/test_runner.py to prove that failures are reported.

It checks a free-running counter against SELFTEST_EXPECT after five cycles, so the runner's
self-test can make it pass or fail at will.
"""

import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge


@cocotb.test()
async def counter_counts(dut):
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    for _ in range(5):
        await RisingEdge(dut.clk)
    await ReadOnly()
    expected = int(os.environ["SELFTEST_EXPECT"])
    assert int(dut.count.value) == expected, f"count {int(dut.count.value)} != {expected}"
