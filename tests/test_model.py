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
    gather_matrix,
    gemm_program,
    place_matrix,
    place_qparams,
    place_weights,
    requant_program,
    setp,
    write_bytes,
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
        x_stride = k + int(rng.integers(0, 5))       # rows of X further apart than K bytes
        write_bytes(state, 5, place_matrix(x, x_stride))
        wr = place_weights(cfg, w)
        state.wgt[:len(wr)] = wr
        for name, rows_ in zip(("bias", "mult", "shift"), place_qparams(cfg, bias, mult, shift),
                               strict=True):
            getattr(state, name)[:len(rows_)] = rows_
        y_base = 5 + m * x_stride + 3
        state.load_program(
            gemm_program(cfg, m, k, n, x_base=5, x_stride=x_stride,
                         preload=bool(rng.integers(2)))
            + requant_program(cfg, m, n, y_base=y_base, y_stride=n + 1, zero_point=-3,
                              clamp=(-3, 127))
            + [isa.encode(isa.Op.HALT)])
        result = run(state)
        assert result.error == isa.Error.NONE
        assert np.array_equal(gather_accumulators(cfg, state.acc, m, n), gemm_i32(x, w)), seed
        expected = requantize(gemm_i32(x, w), bias, mult, shift, -3, -3, 127)
        assert np.array_equal(gather_matrix(state.act, y_base, m, n, n + 1), expected), seed
        assert result.mac_cycles == ceil_div(k, rows) * ceil_div(n, cols) * m


def test_gemm_cycle_formula():
    """Fetch (2) and decode (1) + the SETP + one LOADW + back-to-back MATMULs + the drain of
    the last one (activation read, its rows registered and rotated into the array's input
    register, R + C through the array, accumulator write) + HALT."""
    for rows, cols, m, k, n in [(8, 8, 128, 128, 128), (4, 16, 50, 30, 70), (16, 4, 3, 40, 9)]:
        cfg = CoreConfig(rows=rows, cols=cols, act_depth=4096, wgt_depth=4096, acc_depth=4096)
        tiles = ceil_div(k, rows) * ceil_div(n, cols)
        load = max(rows, cols)
        per_tile = max(m, load)
        expected = 3 + 1 + load + (tiles - 1) * per_tile + (m + 3 + rows + cols) + 1
        assert predict_cycles(cfg, gemm_program(cfg, m, k, n) + [isa.encode(isa.Op.HALT)]) \
            == expected
    cfg = CoreConfig(rows=8, cols=8, act_depth=2048, wgt_depth=2048, acc_depth=2048)
    assert predict_cycles(cfg, gemm_program(cfg, 128, 128, 128) + [0]) == 32800
    # Whole-row windows need no rotation: the drain is a cycle shorter.
    aligned = replace(cfg, act_align=8)
    assert predict_cycles(aligned, gemm_program(aligned, 128, 128, 128) + [0]) == 32799


def test_interlocks():
    cfg = CoreConfig(rows=4, cols=8)
    r, c = cfg.rows, cfg.cols
    # docs/isa.md: a VEC's last write lands 9 cycles after its last read (the read, its
    # register, 6 in the vector unit, then the write placed at its byte), a MATMUL's R + C + 3
    # cycles after its last row's read, a FILL's 2 after its last position.
    vec_depth, mm_drain, fill_depth = 9, 3, 2
    mm = isa.encode(isa.Op.MATMUL, m=3)
    vec = isa.encode(isa.Op.VEC, m=2)
    fill = isa.encode(isa.Op.FILL, m=4)
    halt = isa.encode(isa.Op.HALT)
    fetch = 3          # fetch and decode: instruction 0 starts in cycle 3
    # VEC waits for the MATMUL's writes (start 3, settled at 3 + 3 + 3 + R + C).
    settled = fetch + 3 + mm_drain + r + c
    assert predict_cycles(cfg, [mm, vec, halt]) == settled + 2 + vec_depth + 1
    # MATMUL waits for the VEC's writes (settled vec_depth cycles after its last row).
    settled = fetch + 2 + vec_depth
    assert predict_cycles(cfg, [vec, mm, halt]) == settled + 3 + mm_drain + r + c + 1
    # A WAIT long enough hides the interlock completely.
    wait = isa.encode(isa.Op.WAIT, cycles=mm_drain + r + c)
    assert predict_cycles(cfg, [mm, wait, vec, halt]) == (fetch + 3 + mm_drain + r + c + 2
                                                          + vec_depth + 1)
    # VEC after VEC: the same pipeline, its writes land after the first one's: no wait.
    assert predict_cycles(cfg, [vec, vec, halt]) == fetch + 2 + 2 + vec_depth + 1
    # A FILL writes through a shorter pipeline: it starts once its first write lands after
    # the VEC's last (the VEC's writes land by cycle 3 + 2 + 9 - 1 = 13; the FILL's first
    # lands 2 cycles after it starts).
    assert predict_cycles(cfg, [vec, fill, halt]) == (fetch + 2 + vec_depth - fill_depth) \
        + 4 + fill_depth + 1
    # With 2 vector lanes of 4, a VEC row takes 2 cycles.
    narrow = CoreConfig(rows=4, cols=8, vec_lanes=2)
    assert predict_cycles(narrow, [vec, halt]) == fetch + 2 * 2 + vec_depth + 1


def test_pool_interlocks():
    """A POOL reads activations (it waits for every earlier write) and the depthwise weights
    through the weight loader's port (it waits until a load has read its last row); its
    prologue is 9 cycles; its writes land act_read (3) + window unit (10) + vector unit (6)
    + placing (1) cycles after its last input's read."""
    cfg = CoreConfig(rows=4, cols=8, pool=True, pool_line=16)
    fetch, prologue, depth = 3, 9, 3 + 10 + 6 + 1
    pool = isa.encode(isa.Op.POOL, m=5)
    halt = isa.encode(isa.Op.HALT)
    assert predict_cycles(cfg, [pool, halt]) == fetch + prologue + 5 + depth + 1
    assert isa.pool_settle(cfg, 5) == prologue + 5 + depth
    # After a LOADW: the loader reads its last row C - 2 + R + 1 cycles after it starts
    # (the start is delayed a cycle, to meet the swap, like every load with rotated windows).
    load = isa.encode(isa.Op.LOADW)
    busy = 1 + (cfg.cols - 2) + cfg.rows
    assert isa.load_busy(cfg) == busy
    assert predict_cycles(cfg, [load, pool, halt]) == fetch + busy + prologue + 5 + depth + 1
    # A MATMUL after a POOL waits for its writes.
    mm = isa.encode(isa.Op.MATMUL, m=1)
    assert predict_cycles(cfg, [pool, mm, halt]) == (fetch + prologue + 5 + depth) + 1 \
        + 3 + cfg.rows + cfg.cols + 1


def test_patterns_wrap_around_the_activation_sram():
    """A pattern's addresses wrap modulo the activation SRAM's bytes; only the first is
    checked."""
    cfg = CoreConfig(rows=4, cols=4, act_depth=8)         # 8 rows of 4 bytes: 32 bytes
    state = CoreState(cfg)
    state.act[:] = np.arange(32, dtype=np.int8).reshape(8, 4)
    state.wgt[:4] = np.eye(4, dtype=np.int8)                # the identity: copies windows
    state.load_program([setp(1, count=2, step=5, line=30, lanes=4), isa.encode(isa.Op.LOADW),
                        isa.encode(isa.Op.MATMUL, act_addr=29, m=4, pattern=1, swap=1), 0])
    assert run(state).error == isa.Error.NONE
    windows = [[(a + i) % 32 for i in range(4)] for a in (29, 34, 59, 64)]
    assert np.array_equal(state.acc[:4], windows)


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
                        isa.encode(isa.Op.MATMUL, m=1, act_addr=cfg.act_bytes)])
    before = state.acc.copy()
    result = run(state)
    assert result.error == isa.Error.ACT_RANGE and result.err_pc == 1
    assert np.array_equal(state.acc, before)   # active weights are zero: nothing added
    # The fault waits for the first MATMUL's writes: start 3, settled at 3 + 2 + 3 + R + C.
    assert result.cycles == max(3 + 2, 3 + 2 + 3 + 2 + 2) + 1


def test_program_without_halt_overflows():
    cfg = CoreConfig(prog_depth=4)
    state = CoreState(cfg)
    state.load_program([isa.encode(isa.Op.WAIT, cycles=2)] * 4)
    result = run(state)
    assert (result.error, result.err_pc, result.cycles) == (isa.Error.PC_OVERFLOW, 4, 3 + 8 + 1)


def test_load_program_refuses_oversized_programs():
    with pytest.raises(ValueError, match="does not fit"):
        CoreState(CoreConfig(prog_depth=2)).load_program([0, 0, 0])
