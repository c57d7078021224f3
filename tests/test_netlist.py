"""The iCEBreaker's netlist, as `lockstep build` synthesises it, simulated against the golden
model: the board-in-simulation bench (sim/benches/hostlink_bench.py) drives the netlist's
serial pins with the host client, runs random GEMM programs and a compiled network, and checks
SRAMs, outputs and cycle counts bit for bit (sim/netlist.py has the cell models).

Only a netlist simulation catches a synthesis tool that is wrong: this one found Yosys'
``synth_ice40 -dsp`` rewriting the array's SB_MAC16s (docs/benchmarks.md). Verilator only: the
netlist is 3,500 LUTs and 2,500 flip-flops of cells, and each program's first upload through
the pins is 6.4 million clock cycles.
"""

import json

from boards.build import synthesize
from boards.catalog import get_board
from rtl.hostlink_protocol import DEFAULT_TIMEOUT_BITS
from sim.netlist import run_netlist

#: The PLL model's lock (16 cycles), its synchroniser and the 15 us power-on delay at 24 MHz
#: (boards/pll.py), with room to spare.
STARTUP_CYCLES = 1000


def test_icebreaker_netlist(seed, tmp_path):
    board = get_board("icebreaker")
    netlist = synthesize(board.name, build_dir=tmp_path / "build", progress=None)
    run_netlist(
        netlist, test_module="sim.benches.hostlink_bench",
        testcase=["compiled_network", "gemm_programs"],
        extra_env={"LOCKSTEP_CONFIG": json.dumps(board.core.to_dict()), "LOCKSTEP_SEED": seed,
                   "LOCKSTEP_DIVISOR": board.uart_divisor,
                   "LOCKSTEP_TIMEOUT_BITS": DEFAULT_TIMEOUT_BITS,
                   "LOCKSTEP_NETWORK": "64,32,10", "LOCKSTEP_PROGRAMS": 2,
                   "LOCKSTEP_STARTUP_CYCLES": STARTUP_CYCLES})
