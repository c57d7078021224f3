"""The instruction set: encode/decode round trips, field overflow, checks and costs."""

import numpy as np
import pytest

from rtl import isa
from rtl.config import CoreConfig

Op, Error = isa.Op, isa.Error
CFG = CoreConfig(rows=4, cols=8, act_depth=100, wgt_depth=64, acc_depth=50, qparam_depth=3)


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
        else:
            assert isa.decode(word) is None
            assert isa.check(word, CFG) == Error.ILLEGAL_OPCODE


@pytest.mark.parametrize("word, error", [
    (isa.encode(Op.HALT), Error.NONE),
    (isa.encode(Op.HALT) | 1, Error.BAD_FIELD),
    (isa.encode(Op.WAIT, cycles=0), Error.BAD_FIELD),
    (isa.encode(Op.MATMUL, m=0), Error.BAD_FIELD),
    (isa.encode(Op.MATMUL, m=1, wgt_addr=1), Error.BAD_FIELD),
    (isa.encode(Op.VEC, m=1, group=CFG.groups), Error.BAD_FIELD),
    (isa.encode(Op.VEC, m=1, group=CFG.groups - 1), Error.NONE),
    (isa.encode(Op.SETQ, clamp_min=1, clamp_max=0), Error.BAD_FIELD),
    (isa.encode(Op.SETQ, clamp_min=0, clamp_max=0), Error.NONE),
    (isa.encode(Op.MATMUL, m=10, act_addr=90), Error.NONE),
    (isa.encode(Op.MATMUL, m=11, act_addr=90), Error.ACT_RANGE),
    (isa.encode(Op.MATMUL, m=1, preload=1, wgt_addr=60), Error.NONE),
    (isa.encode(Op.MATMUL, m=1, preload=1, wgt_addr=61), Error.WGT_RANGE),
    (isa.encode(Op.LOADW, wgt_addr=61), Error.WGT_RANGE),
    (isa.encode(Op.MATMUL, m=2, acc_addr=49), Error.ACC_RANGE),
    (isa.encode(Op.VEC, m=2, act_addr=99), Error.ACT_RANGE),
    (isa.encode(Op.VEC, m=2, acc_addr=49), Error.ACC_RANGE),
    (isa.encode(Op.VEC, m=1, q_addr=3), Error.QPARAM_RANGE),
    # Several faults at once: the lowest code wins.
    (isa.encode(Op.VEC, m=200, act_addr=99, acc_addr=49, q_addr=9), Error.ACT_RANGE),
    (isa.encode(Op.VEC, m=0, q_addr=9), Error.BAD_FIELD),
])
def test_check(word, error):
    assert isa.check(word, CFG) == error


@pytest.mark.parametrize("instr, cycles", [
    (isa.encode(Op.HALT), 1),
    (isa.encode(Op.SETQ), 1),
    (isa.encode(Op.WAIT, cycles=77), 77),
    (isa.encode(Op.LOADW), 8),                                  # max(R=4, C=8)
    (isa.encode(Op.MATMUL, m=3), 3),
    (isa.encode(Op.MATMUL, m=3, preload=1), 8),
    (isa.encode(Op.MATMUL, m=30, preload=1), 30),
    (isa.encode(Op.VEC, m=5), 5),
])
def test_cost(instr, cycles):
    assert isa.cost(isa.decode(instr), CFG) == cycles
