"""The golden model against plain numpy, and its cycle formula against hand derivations."""

from dataclasses import replace

import numpy as np
import pytest

from rtl import isa
from rtl.config import CoreConfig
from sim.arith import gemm_i32, requantize
from sim.model import CoreState, predict_cycles, run
from sim.programs import (
    ceil_div,
    gather_accumulators,
    gather_activations,
    gemm_program,
    place_activations,
    place_qparams,
    place_weights,
    requant_program,
)
from sim.randprog import random_int8

SHAPES = [(1, 1), (3, 3), (8, 8), (4, 16), (16, 4), (2, 32)]


@pytest.mark.parametrize("rows, cols", SHAPES)
def test_gemm_and_requant_layers_match_numpy(rows, cols, seed):
    rng = np.random.default_rng(seed)
    cfg = CoreConfig(rows=rows, cols=cols, act_depth=2048, wgt_depth=2048, acc_depth=512,
                     qparam_depth=64, prog_depth=512)
    for _ in range(5):
        m, k, n = (int(v) for v in rng.integers(1, [20, 3 * rows + 2, 3 * cols + 2]))
        x, w = random_int8(rng, (m, k)), random_int8(rng, (k, n))
        bias = rng.integers(-5000, 5000, size=n)
        mult = rng.integers(1 << 30, 1 << 31, size=n)
        shift = rng.integers(0, 16, size=n)
        state = CoreState(cfg)
        xr = place_activations(cfg, x)
        state.act[:len(xr)] = xr
        wr = place_weights(cfg, w)
        state.wgt[:len(wr)] = wr
        for name, rows_ in zip(("bias", "mult", "shift"), place_qparams(cfg, bias, mult, shift),
                               strict=True):
            getattr(state, name)[:len(rows_)] = rows_
        y_base = len(xr)
        state.load_program(
            gemm_program(cfg, m, k, n, preload=bool(rng.integers(2)))
            + requant_program(cfg, m, n, y_base=y_base, zero_point=-3, clamp=(-3, 127))
            + [isa.encode(isa.Op.HALT)])
        result = run(state)
        assert result.error == isa.Error.NONE
        assert np.array_equal(gather_accumulators(cfg, state.acc, m, n), gemm_i32(x, w)), seed
        expected = requantize(gemm_i32(x, w), bias, mult, shift, -3, -3, 127)
        assert np.array_equal(gather_activations(cfg, state.act[y_base:], m, n), expected), seed
        assert result.mac_cycles == ceil_div(k, rows) * ceil_div(n, cols) * m


def test_gemm_cycle_formula():
    """Fetch (2) and decode (1) + one LOADW + back-to-back MATMULs + the drain of the last one
    (activation read and register, R + C through the array, accumulator write) + HALT."""
    for rows, cols, m, k, n in [(8, 8, 128, 128, 128), (4, 16, 50, 30, 70), (16, 4, 3, 40, 9)]:
        cfg = CoreConfig(rows=rows, cols=cols, act_depth=4096, wgt_depth=4096, acc_depth=4096)
        tiles = ceil_div(k, rows) * ceil_div(n, cols)
        load = max(rows, cols)
        per_tile = max(m, load)
        expected = 3 + load + (tiles - 1) * per_tile + (m + 2 + rows + cols) + 1
        assert predict_cycles(cfg, gemm_program(cfg, m, k, n) + [isa.encode(isa.Op.HALT)]) \
            == expected
    cfg = CoreConfig(rows=8, cols=8, act_depth=2048, wgt_depth=2048, acc_depth=2048)
    assert predict_cycles(cfg, gemm_program(cfg, 128, 128, 128) + [0]) == 32798


def test_interlocks():
    cfg = CoreConfig(rows=4, cols=8)
    r, c = cfg.rows, cfg.cols
    vec_depth = 8      # docs/isa.md: a VEC's last write lands 8 cycles after its last read (K = 1)
    mm_drain = 2       # and a MATMUL's R + C + 2 cycles after its last row's read
    mm = isa.encode(isa.Op.MATMUL, m=3)
    vec = isa.encode(isa.Op.VEC, m=2)
    halt = isa.encode(isa.Op.HALT)
    fetch = 3          # fetch and decode: instruction 0 starts in cycle 3
    # VEC waits for the MATMUL's writes (start 3, settled at 3 + 3 + 2 + R + C).
    settled = fetch + 3 + mm_drain + r + c
    assert predict_cycles(cfg, [mm, vec, halt]) == settled + 2 + vec_depth + 1
    # MATMUL waits for the VEC's writes (settled vec_depth cycles after its last row).
    settled = fetch + 2 + vec_depth
    assert predict_cycles(cfg, [vec, mm, halt]) == settled + 3 + mm_drain + r + c + 1
    # A WAIT long enough hides the interlock completely.
    wait = isa.encode(isa.Op.WAIT, cycles=mm_drain + r + c)
    assert predict_cycles(cfg, [mm, wait, vec, halt]) == (fetch + 3 + mm_drain + r + c + 2
                                                          + vec_depth + 1)
    # With 2 vector lanes of 4, a VEC row takes 2 cycles.
    narrow = CoreConfig(rows=4, cols=8, vec_lanes=2)
    assert predict_cycles(narrow, [vec, halt]) == fetch + 2 * 2 + vec_depth + 1


def test_fast_clock_pipeline_timing():
    """The fast-clock cores' extra registers (docs/isa.md): a second decode cycle makes every
    run a cycle longer; the registered accumulator write, and the PEs' third stage, each make a
    MATMUL's results land a cycle later (what a VEC after it and HALT wait for); nothing else
    changes."""
    base = CoreConfig(rows=4, cols=8)
    mm = isa.encode(isa.Op.MATMUL, m=3)
    vec = isa.encode(isa.Op.VEC, m=2)
    wait = isa.encode(isa.Op.WAIT, cycles=5)
    halt = isa.encode(isa.Op.HALT)
    programs = {"mm, vec": [mm, vec, halt], "vec, mm": [vec, mm, halt], "vec": [vec, halt],
                "wait": [wait, halt], "mm, mm": [mm, mm, halt]}
    extra = {  # (decode_cycles = 2, acc_write_latency = 1) over the default
        "mm, vec": (1, 1), "vec, mm": (1, 1), "vec": (1, 0), "wait": (1, 0), "mm, mm": (1, 1)}
    # vec_read_latency = 3: a VEC's writes land a cycle later, which the next MATMUL and HALT
    # wait for.
    waits_for_vec = {"mm, vec": 1, "vec, mm": 1, "vec": 1, "wait": 0, "mm, mm": 0}
    for name, program in programs.items():
        plain = predict_cycles(base, program)
        decode, accw = extra[name]
        assert predict_cycles(replace(base, decode_cycles=2), program) == plain + decode, name
        assert predict_cycles(replace(base, acc_write_latency=1), program) == plain + accw, name
        assert predict_cycles(replace(base, pe_stages=3), program) == plain + accw, name
        both = replace(base, decode_cycles=2, acc_write_latency=1, host_read_latency=3)
        assert predict_cycles(both, program) == plain + decode + accw, name
        every = replace(both, pe_stages=3)
        assert predict_cycles(every, program) == plain + decode + 2 * accw, name
        deepest = replace(both, pe_stages=5)
        assert predict_cycles(deepest, program) == plain + decode + 4 * accw, name
        vec_read = replace(base, vec_read_latency=3)
        assert predict_cycles(vec_read, program) == plain + waits_for_vec[name], name


def test_faults_stop_before_executing():
    cfg = CoreConfig(rows=2, cols=2, act_depth=8, acc_depth=8)
    state = CoreState(cfg)
    state.act[:] = 1
    state.load_program([isa.encode(isa.Op.MATMUL, m=2, accumulate=1),
                        isa.encode(isa.Op.MATMUL, m=9)])
    before = state.acc.copy()
    result = run(state)
    assert result.error == isa.Error.ACT_RANGE and result.err_pc == 1
    assert np.array_equal(state.acc, before)   # active weights are zero: nothing added
    # The fault waits for the first MATMUL's writes: start 3, settled at 3 + 2 + 2 + R + C.
    assert result.cycles == max(3 + 2, 3 + 2 + 2 + 2 + 2) + 1


def test_program_without_halt_overflows():
    cfg = CoreConfig(prog_depth=4)
    state = CoreState(cfg)
    state.load_program([isa.encode(isa.Op.WAIT, cycles=2)] * 4)
    result = run(state)
    assert (result.error, result.err_pc, result.cycles) == (isa.Error.PC_OVERFLOW, 4, 3 + 8 + 1)


def test_load_program_refuses_oversized_programs():
    with pytest.raises(ValueError, match="does not fit"):
        CoreState(CoreConfig(prog_depth=2)).load_program([0, 0, 0])
