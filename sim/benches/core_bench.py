"""cocotb tests of a whole core: random programs, bad programs, the host port.

Parameters come from the environment: LOCKSTEP_CONFIG (JSON of a CoreConfig), LOCKSTEP_SEED,
LOCKSTEP_PROGRAMS (how many random programs).
"""

import json
import os

import cocotb
import numpy as np

from rtl import isa
from rtl.config import ACC_ADDR_BITS, COUNT_FIELD_BITS
from rtl.hostmap import MAGIC, STATUS_BUSY, Reg, Region
from sim.hazards import hazard_cases
from sim.model import CoreState
from sim.randprog import random_case, random_int8, random_state
from sim.randstream import Coverage, random_stream

from .coretb import CoreTB, config_from_env, seed_from_env

Op, Error = isa.Op, isa.Error


async def _bench(dut, name):
    """(config, seed, rng, reset CoreTB) of testcase ``name``: its own random stream from the
    seed, so that adding a testcase changes no other's programs."""
    cfg = config_from_env()
    seed = seed_from_env()
    tb = CoreTB(dut, cfg)
    await tb.reset()
    return cfg, seed, np.random.default_rng([seed, sum(name.encode())]), tb


@cocotb.test()
async def random_programs(dut):
    """Random GEMM/requantisation programs: bit-exact SRAMs, exact cycles and counters."""
    cfg, seed, rng, tb = await _bench(dut, "random_programs")
    count = int(os.environ.get("LOCKSTEP_PROGRAMS", "20"))
    for i in range(count):
        state, description = random_case(cfg, rng, tb.mirror)
        await tb.run_and_check(state, f"[seed {seed}, program {i}: {description}]")
    dut._log.info(f"{count} random programs matched the model (seed {seed})")


@cocotb.test()
async def random_streams(dut):
    """Constrained-random instruction streams (sim/randstream.py), alternately legal and
    with one word broken: error code, ERR_PC, counters and every writable SRAM as the model
    says. LOCKSTEP_REPORT: a JSON file for the coverage."""
    cfg, seed, rng, tb = await _bench(dut, "random_streams")
    count = int(os.environ.get("LOCKSTEP_PROGRAMS", "20"))
    coverage = Coverage(cfg)
    for i in range(count):
        state, description, golden = random_stream(cfg, rng, mutated=bool(i % 2), base=tb.mirror)
        coverage.add(state, golden)
        await tb.run_and_check(state, f"[seed {seed}, stream {i}: {description}]")
    if os.environ.get("LOCKSTEP_REPORT"):
        with open(os.environ["LOCKSTEP_REPORT"], "w") as f:
            json.dump(coverage.to_dict(), f)
    dut._log.info(f"{count} random streams matched the model (seed {seed})")


@cocotb.test()
async def hazards(dut):
    """The directed hazard programs (sim/hazards.py): each interlock at its tightest."""
    cfg, seed, rng, tb = await _bench(dut, "hazards")
    cases = hazard_cases(cfg, rng)
    for name, state in cases:
        await tb.run_and_check(state, f"[seed {seed}] hazard {name}")
    dut._log.info(f"{len(cases)} hazard programs matched the model (seed {seed})")


@cocotb.test()
async def weights_cleared_at_start(dut):
    """A run depends only on its program and SRAMs: after a run that leaves random weights in
    the array (active and shadow), programs that multiply without loading see zero weights,
    on the RTL as in the model, with and without a swap."""
    cfg, seed, rng, tb = await _bench(dut, "weights_cleared_at_start")
    m = min(4, cfg.acc_depth)
    tiles = cfg.wgt_tiles

    def matmul(**fields):
        return isa.encode(Op.MATMUL, m=m, **fields)

    unloaded = {
        "MATMUL with a swap": [matmul(swap=1)],
        "MATMUL without a swap": [matmul(swap=0)],
        "LOADW, then MATMUL without a swap": [isa.encode(Op.LOADW, wgt_tile=0), matmul()],
        "MATMUL accumulating, twice": [matmul(swap=1, accumulate=1),
                                       matmul(accumulate=1)],
    }
    for round_ in range(2):
        for name, body in unloaded.items():
            state = tb.mirror.copy()
            state.wgt[:] = random_int8(rng, state.wgt.shape)
            state.act[:] = random_int8(rng, state.act.shape)
            # Tile 1 in the active weights, tile 2 left in the shadows by the preload.
            state.load_program([isa.encode(Op.LOADW, wgt_tile=1 % tiles),
                                matmul(swap=1, preload=1, wgt_tile=2 % tiles),
                                isa.encode(Op.HALT)])
            await tb.run_and_check(state, f"[seed {seed}] loading weights before {name!r}")
            state = tb.mirror.copy()
            state.wgt[:] = random_int8(rng, state.wgt.shape)
            state.acc[:] = rng.integers(-(1 << 31), 1 << 31, size=state.acc.shape)
            state.load_program(body + [isa.encode(Op.HALT)])
            await tb.run_and_check(state, f"[seed {seed}] {name} (round {round_})")
    dut._log.info(f"{2 * len(unloaded)} programs without loads saw zero weights (seed {seed})")


def _top_reserved_bit(op):
    return 1 << (isa.reserved_mask(op).bit_length() - 1)


def _bad_cases(cfg):
    """(name, instruction word, expected error) for every check the core makes."""
    def raw(op, **fields):
        """Encode without range checks: fields may hold what encode() would refuse."""
        word = op << isa.OPCODE_LSB
        by_name = {f.name: f for f in isa.FIELDS[op]}
        for name, value in fields.items():
            word |= (value & by_name[name].mask) << by_name[name].lsb
        return word

    top = cfg.act_bytes
    W = isa.Window
    cases = [
        ("illegal opcode 0xF", 0xF << isa.OPCODE_LSB, Error.ILLEGAL_OPCODE),
        ("illegal opcode 0xA", 0xA << isa.OPCODE_LSB | 5, Error.ILLEGAL_OPCODE),
        ("reserved bit in HALT", 1, Error.BAD_FIELD),
        ("reserved bit in VEC", raw(Op.VEC, m=1) | _top_reserved_bit(Op.VEC), Error.BAD_FIELD),
        ("reserved bit in SETP", raw(Op.SETP, count=1, lanes=1) | _top_reserved_bit(Op.SETP),
         Error.BAD_FIELD),
        ("WAIT 0", raw(Op.WAIT, cycles=0), Error.BAD_FIELD),
        ("MATMUL m=0", raw(Op.MATMUL, m=0), Error.BAD_FIELD),
        ("VEC m=0", raw(Op.VEC, m=0), Error.BAD_FIELD),
        ("FILL m=0", raw(Op.FILL, m=0), Error.BAD_FIELD),
        ("MATMUL wgt_tile without preload", raw(Op.MATMUL, m=1, wgt_tile=3), Error.BAD_FIELD),
        ("VEC group out of range", raw(Op.VEC, m=1, group=isa.vec_groups(cfg)),
         Error.BAD_FIELD),
        ("SETQ clamp_min > clamp_max", raw(Op.SETQ, clamp_min=5, clamp_max=4), Error.BAD_FIELD),
        ("SETP count 0", raw(Op.SETP, count=0, lanes=1), Error.BAD_FIELD),
        ("SETP lanes 0", raw(Op.SETP, count=1, lanes=0), Error.BAD_FIELD),
        ("SETP lanes > R", raw(Op.SETP, count=1, lanes=cfg.rows + 1), Error.BAD_FIELD),
        ("MATMUL act past the end", raw(Op.MATMUL, m=2, act_addr=top), Error.ACT_RANGE),
        ("VEC act past the end", raw(Op.VEC, m=3, act_addr=top + 5), Error.ACT_RANGE),
        ("FILL act past the end", raw(Op.FILL, m=1, act_addr=top), Error.ACT_RANGE),
        ("LOADW past the end", raw(Op.LOADW, wgt_tile=cfg.wgt_tiles), Error.WGT_RANGE),
        ("MATMUL preload past the end",
         raw(Op.MATMUL, m=1, preload=1, wgt_tile=cfg.wgt_tiles), Error.WGT_RANGE),
        ("MATMUL acc past the end", raw(Op.MATMUL, m=2, acc_addr=cfg.acc_depth - 1),
         Error.ACC_RANGE),
        ("VEC acc past the end", raw(Op.VEC, m=2, acc_addr=cfg.acc_depth - 1), Error.ACC_RANGE),
        *_high_bit_cases(cfg, raw),
        ("VEC qparam row past the end", raw(Op.VEC, m=1, q_addr=cfg.qparam_depth),
         Error.QPARAM_RANGE),
        ("VEC with everything wrong: the lowest code wins",
         raw(Op.VEC, m=cfg.acc_depth, act_addr=top, acc_addr=1, q_addr=cfg.qparam_depth)
         | _top_reserved_bit(Op.VEC), Error.BAD_FIELD),
    ]
    if cfg.pool:
        cases += [
            ("POOL m=0", raw(Op.POOL, m=0), Error.BAD_FIELD),
            ("SETW kind 5", raw(Op.SETW, kind=5, kh=1, kw=1, line=1), Error.BAD_FIELD),
            ("SETW kh 0", raw(Op.SETW, kh=0, kw=1, line=1), Error.BAD_FIELD),
            ("SETW line beyond the line buffer",
             raw(Op.SETW, kh=1, kw=1, line=cfg.pool_line + 1), Error.BAD_FIELD),
            ("SETW kw > line", raw(Op.SETW, kh=1, kw=3, line=2), Error.BAD_FIELD),
            ("SETW a line of 1 under a 2-high window", raw(Op.SETW, kh=2, kw=1, line=1),
             Error.BAD_FIELD),
            ("POOL input past the end", raw(Op.POOL, m=1, act_addr=top), Error.ACT_RANGE),
            ("POOL output past the end", raw(Op.POOL, m=1, out_addr=top), Error.ACT_RANGE),
            ("SETW ADD's B past the end",
             raw(Op.SETW, kind=W.ADD, kh=1, kw=1, line=1, aux=top), Error.ACT_RANGE),
            ("SETW DW weights past the end",
             raw(Op.SETW, kind=W.DW, kh=3, kw=3, line=4, aux=cfg.wgt_tiles + 1),
             Error.WGT_RANGE),
            ("POOL needs two parameter rows",
             raw(Op.POOL, m=1, q_addr=cfg.qparam_depth - 1), Error.QPARAM_RANGE),
        ]
    else:
        cases += [("POOL on a core without the window unit", raw(Op.POOL, m=1),
                   Error.ILLEGAL_OPCODE),
                  ("SETW on a core without the window unit", raw(Op.SETW, kh=1, kw=1, line=1),
                   Error.ILLEGAL_OPCODE)]
    return cases


def _high_bit_cases(cfg, raw):
    """Accumulator rows past the end only by the bits above the sequencer's range adders (as
    wide as the SRAM's depth: rtl/sequencer.py, _past_end), with nothing in the bits below;
    each where the field has such bits."""
    def beyond(depth, bits):
        first = 1 << depth.bit_length()
        return first if first < 1 << bits else None

    cases = [
        ("MATMUL acc row beyond the adder", Op.MATMUL, "acc_addr", cfg.acc_depth,
         ACC_ADDR_BITS, Error.ACC_RANGE),
        ("VEC rows beyond the adder", Op.VEC, "m", cfg.acc_depth, COUNT_FIELD_BITS,
         Error.ACC_RANGE),
    ]
    out = []
    for name, op, field, depth, bits, error in cases:
        value = beyond(depth, bits)
        if value is not None:
            fields = {"m": 2, field: value}
            out.append((name, raw(op, **fields), error))
    return out


@cocotb.test()
async def bad_programs(dut):
    """Each bad instruction stops the core with its error code after a valid prefix that keeps
    the pipelines busy; nothing the bad instruction addresses changes, and the next good
    program runs normally."""
    cfg, seed, rng, tb = await _bench(dut, "bad_programs")
    cases = _bad_cases(cfg)
    for name, bad_word, error in cases:
        assert isa.check(bad_word, cfg) == error, f"test case {name!r} is not what it claims"
        # A valid prefix: a GEMM whose writes are still in flight when the bad word arrives.
        state, _ = random_case(cfg, rng, tb.mirror)
        prefix = [int(w) for w in state.prog if int(w) != 0][:4]
        # Fill the SRAMs with random data, so that any stray write would show.
        state.act[:] = random_int8(rng, state.act.shape)
        state.acc[:] = rng.integers(-(1 << 31), 1 << 31, size=state.acc.shape)
        state.load_program(prefix + [bad_word])
        result = await tb.run_and_check(state, f"[seed {seed}] {name}")
        assert result.error == error and result.err_pc == len(prefix), (name, result)
        # ...and the core starts again cleanly.
        state, description = random_case(cfg, rng, tb.mirror)
        await tb.run_and_check(state, f"[seed {seed}] good program after {name}: {description}")
    # Running off the end of program memory.
    state = tb.mirror.copy()
    state.load_program([isa.encode(Op.WAIT, cycles=1)] * cfg.prog_depth)
    result = await tb.run_and_check(state, f"[seed {seed}] program without HALT")
    assert result.error == Error.PC_OVERFLOW and result.err_pc == cfg.prog_depth
    dut._log.info(f"{len(cases) + 1} bad programs stopped as documented (seed {seed})")


@cocotb.test()
async def host_port(dut):
    """Every SRAM word reads back what was written; registers report the configuration; the
    SRAMs ignore the host while a program runs; out-of-range rows read as zero."""
    cfg, seed, rng, tb = await _bench(dut, "host_port")
    # Random images everywhere, written in full, read back in full.
    state = random_state(cfg, rng)
    await tb.write_state(state, force=True)
    for name in ("prog", "act", "wgt", "acc"):
        got = await tb.read_sram(name)
        assert np.array_equal(got, getattr(state, name)), f"[seed {seed}] {name} readback"
    qwords = await tb.read_region("qparam")
    for row in range(cfg.qparam_depth):
        assert qwords[row] == tb.row_words(state, "qparam", row), f"[seed {seed}] qparam {row}"

    # Identification registers.
    for reg, value in tb.map.register_values().items():
        assert await tb.read_reg(reg) == value, f"register {reg.name}"
    assert await tb.read_reg(Reg.MAGIC) == MAGIC

    # Rows beyond a region's depth and words beyond a row read as zero (where the address
    # space has room for them).
    stray = []
    for region in (Region.ACT, Region.ACC):
        depth = tb.map.depth(region)
        if depth < 1 << tb.map.row_bits:
            stray.append(tb.map.addr(region, depth - 1, 0) + 1)
    if tb.map.words_per_row(Region.ACT) < 1 << tb.map.word_bits:
        stray.append(tb.map.addr(Region.ACT, 0, 0)
                     + (tb.map.words_per_row(Region.ACT) << tb.map.row_bits))
    assert not any(tb.map.mapped(addr) for addr in stray)
    for addr in stray:
        assert (await tb.transact([("r", addr)]))[0] == 0, f"address {addr:#x} should read 0"
    # A write there changes nothing anywhere.
    await tb.transact([("w", addr, 0xFFFF_FFFF) for addr in stray])
    for name in ("act", "acc"):
        assert np.array_equal(await tb.read_sram(name), getattr(state, name)), name

    # While a program runs, SRAM writes are dropped and SRAM reads return 0.
    long_wait = CoreState(cfg, **{n: getattr(state, n) for n in
                                  ("act", "wgt", "acc", "bias", "mult", "shift")})
    long_wait.load_program([isa.encode(Op.WAIT, cycles=500), isa.encode(Op.HALT)])
    await tb.write_state(long_wait)
    await tb.transact([("w", tb.map.reg(Reg.CTRL), 1)])
    assert await tb.read_reg(Reg.STATUS) & STATUS_BUSY
    act0 = tb.map.addr(Region.ACT, 0, 0)
    await tb.transact([("w", act0, 0x01020304)])
    assert (await tb.transact([("r", act0)]))[0] == 0
    # START while busy is ignored too.
    await tb.transact([("w", tb.map.reg(Reg.CTRL), 1)])
    while await tb.read_reg(Reg.STATUS) & STATUS_BUSY:
        pass
    assert await tb.read_reg(Reg.CYCLES) == 500 + 1 + isa.fetch_cycles(tb.cfg)
    assert np.array_equal(await tb.read_sram("act"), state.act), "write while busy landed"
    dut._log.info(f"host port checks passed (seed {seed})")
