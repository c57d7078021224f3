"""The iCEBreaker's netlist, as `lockstep build` synthesises it, simulated against the golden
model: the board-in-simulation bench (lockstep/benches/hostlink_bench.py) drives the netlist's
serial pins with the host client, runs random GEMM programs and a compiled network, and checks
SRAMs, outputs and cycle counts bit for bit (sim/netlist.py has the cell models).

Only a netlist simulation catches a synthesis tool that is wrong: this one found Yosys'
``synth_ice40 -dsp`` rewriting the array's SB_MAC16s (docs/benchmarks.md). Verilator only: the
netlist is 3,500 LUTs and 2,500 flip-flops of cells, and even with only the weight rows a
program reads sent through the pins, a first run is about a million clock cycles.
"""

from boards.build import synthesize
from boards.catalog import get_board
from lockstep.benches import LINK_BENCH, link_bench_env
from sim.netlist import run_netlist

#: The PLL model's lock (16 cycles), its synchroniser and the 15 us power-on delay at 24 MHz
#: (boards/pll.py), with room to spare.
STARTUP_CYCLES = 1000


def test_icebreaker_netlist(seed, tmp_path):
    board = get_board("icebreaker")
    netlist = synthesize(board.name, build_dir=tmp_path / "build", progress=None)
    run_netlist(
        netlist, test_module=LINK_BENCH, testcase=["compiled_network", "gemm_programs"],
        extra_env=link_bench_env(board.core, seed, board.uart_divisor, network=(64, 32, 10),
                                 programs=1, startup_cycles=STARTUP_CYCLES))
