"""The whole core on Verilator and Icarus: random programs, bad programs, the host port.

Every run compares every SRAM a program can write, bit for bit, and the cycle, MAC and
instruction counters exactly, with the golden model (sim/model.py).
"""

import json
import os

import pytest

from boards.catalog import BOARDS
from rtl.config import CoreConfig
from sim.randstream import Coverage, stream_cores
from sim.rtlsim import run_core_bench
from sim.runner import SIMULATORS

#: The pipeline of the ULX3S core (boards/catalog.py): the extra registers for a 100 MHz clock.
FAST_CLOCK = BOARDS["ulx3s-85f"].core.timing

#: Five-stage PEs (rtl/pe.py) and three-cycle host reads: choices that neither the default nor
#: the ULX3S core takes (the array bench covers three-stage PEs).
PE5_H3 = {"pe_stages": 5, "host_read_latency": 3}

#: Whole-row activation windows (act_align = act_row_bytes) and one pattern register, as on
#: the iCEBreaker's core.
ALIGNED = {"act_align": 4, "patterns": 1}

#: The window unit (POOL), with the ULX3S core's pipeline too.
POOL = {"pool": True, "pool_line": 16}
#: The ULX3S core's vector and window lanes: six, their products built from logic.
FAST_POOL = {**FAST_CLOCK, **POOL, "vec_lut": True}

# Array shapes (rows, cols, vec_lanes[, vec_mult_cycles[, options]]), some not square, some
# with fewer vector lanes than min(rows, cols) (several cycles per VEC row), some with serial
# multipliers (K cycles per VEC step), one with the ULX3S core's pipeline, one with five-stage
# PEs and three-cycle host reads, one with whole-row windows, three with the window unit (one
# with as many vector lanes as min(R, C), two with fewer, as the ULX3S core has); small
# SRAMs keep full read-backs cheap.
SHAPES = [(1, 1, None), (3, 3, None), (8, 8, None), (8, 8, 2, 1, FAST_CLOCK), (4, 16, None),
          (4, 16, 1), (16, 4, 2), (4, 4, 1, 32, ALIGNED), (2, 8, 2, 4), (4, 8, 2, 1, PE5_H3),
          (8, 8, None, 1, POOL), (8, 8, 2, 1, POOL), (12, 12, 6, 1, FAST_POOL)]
OPTION_NAMES = {id(FAST_CLOCK): "-fast", id(PE5_H3): "-pe5h3", id(ALIGNED): "-aligned",
                id(POOL): "-pool", id(FAST_POOL): "-fastpool"}


def shape_id(shape):
    options = shape[4] if len(shape) > 4 else None
    return bench_config(*shape).shape + OPTION_NAMES.get(id(options), "")


#: Random programs per shape: fewer on Icarus, which runs the same programs ten or more times
#: slower (every shape still gets its programs on both simulators).
PROGRAMS_PER_SHAPE = {"verilator": 30, "icarus": 4}


def bench_config(rows, cols, vec_lanes=None, vec_mult_cycles=1, pipeline=None):
    row_bytes = CoreConfig(rows=rows, cols=cols, vec_lanes=vec_lanes).act_row_bytes
    return CoreConfig(rows=rows, cols=cols, act_depth=1024 // row_bytes, wgt_depth=160,
                      acc_depth=48, qparam_depth=6, prog_depth=64, vec_lanes=vec_lanes,
                      vec_mult_cycles=vec_mult_cycles, **(pipeline or {}))


#: The ULX3S core's shape runs on Verilator only: Icarus runs the ULX3S's exact core, with the
#: same units and pipeline (test_ulx3s_board_core), and the window unit on the 8 x 8 shapes.
VERILATOR_ONLY = {id(FAST_POOL)}
CASES = [pytest.param(shape, simulator, id=f"{simulator}-{shape_id(shape)}")
         for simulator in SIMULATORS for shape in SHAPES
         if not (simulator == "icarus" and len(shape) > 4 and id(shape[4]) in VERILATOR_ONLY)]


@pytest.mark.parametrize("shape, simulator", CASES)
def test_random_programs(shape, simulator, seed):
    run_core_bench(bench_config(*shape), simulator, seed, "random_programs",
                   LOCKSTEP_PROGRAMS=PROGRAMS_PER_SHAPE[simulator])


#: The bad programs run on every shape on Verilator, and on Icarus on two that between them
#: take every error path (the window unit's included) with two different field widths and the
#: iCEBreaker's serial lane and whole-row windows: each case costs Icarus two full SRAM
#: read-backs, one to two minutes per shape.
ICARUS_BAD_PROGRAM_SHAPES = [(4, 4, 1, 32, ALIGNED), (8, 8, 2, 1, POOL)]
BAD_PROGRAM_CASES = [case for case in CASES if case.values[1] == "verilator"
                     or case.values[0] in ICARUS_BAD_PROGRAM_SHAPES]


@pytest.mark.parametrize("shape, simulator", BAD_PROGRAM_CASES)
def test_bad_programs(shape, simulator, seed):
    run_core_bench(bench_config(*shape), simulator, seed, "bad_programs")


@pytest.mark.parametrize("shape", [(8, 8, None), (4, 16, None), (8, 8, 2, 1, FAST_CLOCK),
                                   (4, 4, 1, 32, ALIGNED)], ids=shape_id)
def test_host_port(shape, simulator, seed):
    run_core_bench(bench_config(*shape), simulator, seed, "host_port")


STREAM_CORES = stream_cores(FAST_CLOCK)
#: Streams per core and simulator: 2,000 on each simulator in all, each test with its own seed.
STREAMS_PER_CORE = 1000


@pytest.mark.parametrize("core", STREAM_CORES)
def test_random_streams(core, simulator, seed, tmp_path, capsys):
    """Constrained-random instruction streams (sim/randstream.py): any opcode in any order,
    half of them with one word broken, bit-exact and cycle-exact with the model. Every opcode
    pair, interlock and listed hazard must be reached; the coverage table is printed."""
    cfg = STREAM_CORES[core]
    report = tmp_path / "coverage.json"
    run_core_bench(cfg, simulator, seed, "random_streams",
                   LOCKSTEP_PROGRAMS=os.environ.get("LOCKSTEP_STREAMS", STREAMS_PER_CORE),
                   LOCKSTEP_REPORT=report)
    coverage = Coverage.from_dict(cfg, json.loads(report.read_text()))
    with capsys.disabled():
        print(f"\n[{simulator}, {core}, seed {seed}] {coverage.table()}")
    if "LOCKSTEP_STREAMS" in os.environ:
        return
    pairs, interlocks, hazards = coverage.missing()
    assert not (pairs or interlocks or hazards), (
        f"seed {seed}: not reached: pairs {pairs}, interlocks {interlocks}, hazards {hazards}")


#: The hazard programs run on every shape on Verilator, and on Icarus on the shapes of its bad
#: programs (the window unit's hazards included).
HAZARD_CASES = BAD_PROGRAM_CASES


@pytest.mark.parametrize("shape, simulator", HAZARD_CASES)
def test_hazards(shape, simulator, seed):
    """Each interlock at its tightest (sim/hazards.py): the instruction that waits starts in
    the first cycle its interlock allows and touches exactly the data it protects.
    scripts/timing_tightness.py shows that one cycle less gives wrong data."""
    run_core_bench(bench_config(*shape), simulator, seed, "hazards")


#: Each PE depth (2, 4 and 5 stages) on Verilator; Icarus runs two shapes (the 8x8 and the
#: serial lane).
CLEARED_SHAPES = [(8, 8, None), (8, 8, 2, 1, FAST_CLOCK), (4, 8, 2, 1, PE5_H3),
                  (4, 4, 1, 32, ALIGNED)]


@pytest.mark.parametrize("shape, simulator", [
    pytest.param(shape, simulator, id=f"{simulator}-{shape_id(shape)}")
    for simulator in SIMULATORS for shape in CLEARED_SHAPES
    if simulator == "verilator" or shape in (CLEARED_SHAPES[0], CLEARED_SHAPES[3])])
def test_weights_cleared_at_start(shape, simulator, seed):
    """Back to back on one simulated core: START zeroes the weight registers (the model's
    ``run`` does too), so a program that multiplies without loading never sees the weights
    that an earlier run left in the array, for each PE depth (2, 4 and 5 stages)."""
    run_core_bench(bench_config(*shape), simulator, seed, "weights_cleared_at_start")


@pytest.mark.parametrize("testcase, simulator", [
    (testcase, simulator) for testcase in ("random_programs", "host_port",
                                           "weights_cleared_at_start")
    for simulator in SIMULATORS
    # Icarus takes two minutes over the SPRAM model here; the clear runs on Icarus in
    # test_weights_cleared_at_start.
    if (testcase, simulator) != ("weights_cleared_at_start", "icarus")])
def test_icebreaker_board_core(simulator, seed, testcase):
    """The iCEBreaker's exact core: an 8 x 2 array, one serial lane, whole-row windows, and the
    weight SRAM in an SB_SPRAM256KA (rtl/wgtmem.py), simulated with Yosys' model of it."""
    cfg = BOARDS["icebreaker"].core
    assert cfg.wgt_spram
    run_core_bench(cfg, simulator, seed, testcase,
                   LOCKSTEP_PROGRAMS=PROGRAMS_PER_SHAPE[simulator])


#: Random programs on the ULX3S's exact core: more on Verilator; on Icarus each costs about half
#: a minute, most of it reading back the activation and accumulator SRAMs (22,528 host words).
ULX3S_PROGRAMS = {"verilator": 12, "icarus": 2}


def test_ulx3s_board_core(simulator, seed):
    """The ULX3S's exact core: a 12 x 12 array on MULT18X18D (simulated with
    sim/models/ecp5_mult18x18d.v), six vector and window lanes with their products built from
    logic, the 100 MHz pipeline options and the board's SRAM depths. Its compiled networks run
    in tests/test_mlperf.py (Verilator) and tests/test_compiler.py (Icarus)."""
    cfg = BOARDS["ulx3s-85f"].core
    assert cfg.pool and cfg.vec_lut
    run_core_bench(cfg, simulator, seed, "random_programs",
                   LOCKSTEP_PROGRAMS=ULX3S_PROGRAMS[simulator])
