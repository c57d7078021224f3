"""The whole core on Verilator and Icarus: random programs, bad programs, the host port.

Every run compares every SRAM a program can write, bit for bit, and the cycle, MAC and
instruction counters exactly, with the golden model (sim/model.py).
"""

import json

import pytest

from rtl.config import CoreConfig
from rtl.core import LockstepCore
from sim.runner import run_cocotb

# Four array shapes, two of them not square; small SRAMs keep full read-backs cheap.
SHAPES = [(1, 1), (3, 3), (8, 8), (4, 16), (16, 4)]
PROGRAMS_PER_SHAPE = 50


def bench_config(rows, cols):
    return CoreConfig(rows=rows, cols=cols, act_depth=96, wgt_depth=160, acc_depth=48,
                      qparam_depth=6, prog_depth=64)


def run_core_bench(cfg, simulator, seed, testcase, **env):
    run_cocotb(
        lambda: LockstepCore(cfg), key=f"core-{cfg.name}", toplevel="lockstep_core",
        test_module="sim.benches.core_bench", testcase=testcase, simulator=simulator,
        extra_env={"LOCKSTEP_CONFIG": json.dumps(cfg.to_dict()), "LOCKSTEP_SEED": seed, **env})


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_random_programs(shape, simulator, seed):
    run_core_bench(bench_config(*shape), simulator, seed, "random_programs",
                   LOCKSTEP_PROGRAMS=PROGRAMS_PER_SHAPE)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_bad_programs(shape, simulator, seed):
    run_core_bench(bench_config(*shape), simulator, seed, "bad_programs")


@pytest.mark.parametrize("shape", [(8, 8), (4, 16)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_host_port(shape, simulator, seed):
    run_core_bench(bench_config(*shape), simulator, seed, "host_port")
