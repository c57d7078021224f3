"""A core behind its UART host link (LinkedCore) on Verilator and Icarus, driven through the
serial pins by the host-side client (lockstep/hostlink.py): PING, every SRAM region written and
read back, random GEMM programs and a compiled network bit-exact with the golden model, and
bad frames (corrupted, truncated, unknown command, oversize length, bad address) refused
without changing anything. Then the iCEBreaker's own core at its own rate (3 Mbaud at 24 MHz):
a compiled network uploaded, run and read back over the pins, each phase timed.
"""

import json

from boards.catalog import get_board
from lockstep.benches import LINK_BENCH, link_bench_env
from rtl.config import CoreConfig
from rtl.hostlink import LinkedCore
from sim.runner import run_cocotb

# Shallow SRAMs and the smallest divisor keep the serial traffic short: every word costs
# 10 bit times of 4 cycles, and Icarus simulates this design at only ~30-50k cycles/s.
CFG = CoreConfig(rows=4, cols=4, act_depth=32, wgt_depth=32, acc_depth=16, qparam_depth=4,
                 prog_depth=16)
DIVISOR = 4          # clock cycles per bit: the least the UART accepts
TIMEOUT_BITS = 64    # the link's mid-frame timeout


def test_linked_core(simulator, seed):
    run_cocotb(
        lambda: LinkedCore(CFG, DIVISOR, TIMEOUT_BITS),
        key=f"linked-{CFG.name}-d{DIVISOR}-t{TIMEOUT_BITS}", toplevel="linked_core",
        test_module=LINK_BENCH, simulator=simulator,
        extra_env=link_bench_env(CFG, seed, DIVISOR, TIMEOUT_BITS, programs=2))


def test_icebreaker_link(seed, tmp_path):
    """The board-in-simulation bench of the iCEBreaker: its exact core (SPRAM weights, serial
    vector lane) behind its link at the board's baud rate and clock, running the demo MLP's
    shape (64-32-10) compiled for it as the board backend runs it: the model once, then
    inputs in and outputs out. Verilator only: the first run alone is 1.1 million clock cycles
    (the upload, and the whole activation and accumulator SRAMs read back); test_linked_core
    takes the link through Icarus, and test_core the iCEBreaker's core."""
    simulator = "verilator"
    board = get_board("icebreaker")
    divisor = board.uart_divisor
    assert board.clock_hz // divisor == board.baud >= 3_000_000
    report = tmp_path / "link.json"
    run_cocotb(
        lambda: LinkedCore(board.core, divisor),
        key=f"linked-{board.name}-d{divisor}", toplevel="linked_core",
        test_module=LINK_BENCH, simulator=simulator, testcase="compiled_network",
        extra_env=link_bench_env(board.core, seed, divisor, network=(64, 32, 10), report=report))
    phases = json.loads(report.read_text())["phases"]
    assert set(phases) == {"upload", "input", "start, wait, counters", "readback",
                           "output readback"}
