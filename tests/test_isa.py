"""The instruction set: encode/decode round trips, field overflow, checks and costs."""

import numpy as np
import pytest

from rtl import isa
from rtl.config import CoreConfig

Op, Error = isa.Op, isa.Error
# 64 rows of 4 bytes: 256 bytes of activations; 16 weight tiles of 4 rows.
CFG = CoreConfig(rows=4, cols=8, act_depth=64, wgt_depth=64, acc_depth=50, qparam_depth=3)
POOL_CFG = CoreConfig(rows=4, cols=8, act_depth=64, wgt_depth=64, acc_depth=50, qparam_depth=3,
                      pool=True, pool_line=16)
W = isa.Window


def random_fields(op, rng):
    return {f.name: int(rng.integers(f.range[0], f.range[1] + 1)) for f in isa.FIELDS[op]}


@pytest.mark.parametrize("op", list(Op), ids=lambda op: op.name)
def test_encode_decode_round_trip(op, seed):
    rng = np.random.default_rng(seed)
    for _ in range(200):
        fields = random_fields(op, rng)
        word = isa.encode(op, **fields)
        assert 0 <= word < 1 << isa.INSTR_BITS
        assert word & isa.reserved_mask(op) == 0
        instr = isa.decode(word)
        assert instr.op == op and instr.args == fields, f"seed {seed}: {fields}"


def test_fields_do_not_overlap():
    for op, fields in isa.FIELDS.items():
        used = 0
        for f in fields:
            mask = f.mask << f.lsb
            assert used & mask == 0, f"{op.name}.{f.name} overlaps another field"
            used |= mask
        assert used >> isa.OPCODE_LSB == 0


@pytest.mark.parametrize("op, field, value", [
    (Op.MATMUL, "m", 1 << 12), (Op.MATMUL, "act_addr", -1), (Op.SETQ, "zero_point", 128),
    (Op.SETQ, "clamp_min", -129), (Op.WAIT, "cycles", 1 << 16), (Op.VEC, "group", 16),
])
def test_encode_refuses_values_that_do_not_fit(op, field, value):
    with pytest.raises(isa.IsaError, match=field):
        isa.encode(op, **{field: value})


def test_encode_refuses_unknown_fields():
    with pytest.raises(isa.IsaError, match="no field"):
        isa.encode(Op.LOADW, m=3)


def test_illegal_opcodes_decode_to_none_and_check_as_illegal():
    for opcode in range(1 << isa.OPCODE_BITS):
        word = opcode << isa.OPCODE_LSB
        if opcode in set(Op):
            assert isa.decode(word).op == opcode
            if opcode in (Op.POOL, Op.SETW):
                assert isa.check(word, CFG) == Error.ILLEGAL_OPCODE
        else:
            assert isa.decode(word) is None
            assert isa.check(word, CFG) == Error.ILLEGAL_OPCODE


@pytest.mark.parametrize("word, error", [
    (isa.encode(Op.HALT), Error.NONE),
    (isa.encode(Op.HALT) | 1, Error.BAD_FIELD),
    (isa.encode(Op.WAIT, cycles=0), Error.BAD_FIELD),
    (isa.encode(Op.MATMUL, m=0), Error.BAD_FIELD),
    (isa.encode(Op.MATMUL, m=1, wgt_tile=1), Error.BAD_FIELD),
    (isa.encode(Op.VEC, m=1, group=isa.vec_groups(CFG)), Error.BAD_FIELD),
    (isa.encode(Op.VEC, m=1, group=isa.vec_groups(CFG) - 1), Error.NONE),
    (isa.encode(Op.SETQ, clamp_min=1, clamp_max=0), Error.BAD_FIELD),
    (isa.encode(Op.SETQ, clamp_min=0, clamp_max=0), Error.NONE),
    (isa.encode(Op.SETP, count=0, lanes=1), Error.BAD_FIELD),
    (isa.encode(Op.SETP, count=1, lanes=0), Error.BAD_FIELD),
    (isa.encode(Op.SETP, count=1, lanes=5), Error.BAD_FIELD),        # lanes > R
    (isa.encode(Op.SETP, count=7, step=300, line=9, lanes=4), Error.NONE),
    # Only the first address is checked: a stream may run on past the end (it wraps).
    (isa.encode(Op.MATMUL, m=40, act_addr=255), Error.NONE),
    (isa.encode(Op.MATMUL, m=1, act_addr=256), Error.ACT_RANGE),
    (isa.encode(Op.FILL, m=1, act_addr=256), Error.ACT_RANGE),
    (isa.encode(Op.FILL, m=0), Error.BAD_FIELD),
    (isa.encode(Op.MATMUL, m=1, preload=1, wgt_tile=15), Error.NONE),
    (isa.encode(Op.MATMUL, m=1, preload=1, wgt_tile=16), Error.WGT_RANGE),
    (isa.encode(Op.LOADW, wgt_tile=16), Error.WGT_RANGE),
    (isa.encode(Op.MATMUL, m=2, acc_addr=49), Error.ACC_RANGE),
    (isa.encode(Op.VEC, m=2, act_addr=256), Error.ACT_RANGE),
    (isa.encode(Op.VEC, m=2, acc_addr=49), Error.ACC_RANGE),
    (isa.encode(Op.VEC, m=1, q_addr=3), Error.QPARAM_RANGE),
    # Without the window unit, POOL and SETW are illegal.
    (isa.encode(Op.POOL, m=1), Error.ILLEGAL_OPCODE),
    (isa.encode(Op.SETW, kh=1, kw=1, line=1), Error.ILLEGAL_OPCODE),
    # Several faults at once: the lowest code wins.
    (isa.encode(Op.VEC, m=200, act_addr=999, acc_addr=49, q_addr=9), Error.ACT_RANGE),
    (isa.encode(Op.VEC, m=0, q_addr=9), Error.BAD_FIELD),
])
def test_check(word, error):
    assert isa.check(word, CFG) == error


@pytest.mark.parametrize("word, error", [
    (isa.encode(Op.POOL, m=1, q_addr=1), Error.NONE),
    (isa.encode(Op.POOL, m=1, q_addr=2), Error.QPARAM_RANGE),     # needs rows q and q + 1
    (isa.encode(Op.POOL, m=1, out_addr=256), Error.ACT_RANGE),
    (isa.encode(Op.POOL, m=0), Error.BAD_FIELD),
    (isa.encode(Op.SETW, kind=W.DW, kh=3, kw=3, line=16), Error.NONE),
    (isa.encode(Op.SETW, kind=5, kh=1, kw=1, line=1), Error.BAD_FIELD),
    (isa.encode(Op.SETW, kh=0, kw=1, line=1), Error.BAD_FIELD),
    (isa.encode(Op.SETW, kh=1, kw=1, line=17), Error.BAD_FIELD),    # > pool_line
    (isa.encode(Op.SETW, kh=1, kw=3, line=2), Error.BAD_FIELD),     # kw > line
    (isa.encode(Op.SETW, kh=2, kw=1, line=1), Error.BAD_FIELD),     # lines of 1 under kh 2
    (isa.encode(Op.SETW, kind=W.DW, kh=3, kw=3, line=4, aux=14), Error.WGT_RANGE),
    (isa.encode(Op.SETW, kind=W.DW, kh=3, kw=3, line=4, aux=13), Error.NONE),
    (isa.encode(Op.SETW, kind=W.ADD, kh=1, kw=1, line=1, aux=256), Error.ACT_RANGE),
    (isa.encode(Op.SETW, kind=W.MAX, kh=1, kw=1, line=1, aux=256), Error.NONE),
])
def test_check_window_unit(word, error):
    assert isa.check(word, POOL_CFG) == error


@pytest.mark.parametrize("instr, cycles", [
    (isa.encode(Op.HALT), 1),
    (isa.encode(Op.SETQ), 1),
    (isa.encode(Op.WAIT, cycles=77), 77),
    (isa.encode(Op.LOADW), 8),                                  # max(R=4, C=8)
    (isa.encode(Op.MATMUL, m=3), 3),
    (isa.encode(Op.MATMUL, m=3, preload=1), 8),
    (isa.encode(Op.MATMUL, m=30, preload=1), 30),
    (isa.encode(Op.VEC, m=5), 5),
    (isa.encode(Op.FILL, m=6), 6),
    (isa.encode(Op.SETP, count=1, lanes=1), 1),
    (isa.encode(Op.POOL, m=6), 6 + isa.POOL_PROLOGUE),
    (isa.encode(Op.SETW, kh=1, kw=1, line=1), 1),
])
def test_cost(instr, cycles):
    assert isa.cost(isa.decode(instr), CFG) == cycles
