"""The instruction set: opcodes, field layouts, encode/decode, checks, cycle costs, error codes.

This file is the one place where a number of the ISA is written. The sequencer slices its
fields from :data:`FIELDS`, the golden model executes :func:`decode` d instructions with
:func:`check` and :func:`cost`, and the compiler emits :func:`encode` d words. ``docs/isa.md``
explains each instruction in prose.

Every instruction is one 64-bit word: the opcode in bits [63:60], then the fields below; every
bit not named by a field is reserved and must be zero.
"""

from dataclasses import dataclass
from enum import IntEnum

from .config import (
    ADDR_FIELD_BITS,
    COUNT_FIELD_BITS,
    GROUP_FIELD_BITS,
    QADDR_FIELD_BITS,
    WAIT_FIELD_BITS,
)

__all__ = [
    "Op", "Error", "Field", "FIELDS", "INSTR_BITS", "OPCODE_LSB", "OPCODE_BITS",
    "Instr", "encode", "decode", "check", "cost", "IsaError",
    "fetch_cycles", "READ_LATENCY", "array_latency",
    "vec_unit_latency", "vec_pipeline_depth",
    "matmul_settle", "vec_settle", "load_cost",
]

INSTR_BITS = 64
OPCODE_LSB = 60
OPCODE_BITS = 4


class Op(IntEnum):
    """Opcodes. An all-zero word is HALT, so running into cleared program SRAM stops the core."""
    HALT = 0x0
    WAIT = 0x1
    LOADW = 0x2
    MATMUL = 0x3
    VEC = 0x4
    SETQ = 0x5


class Error(IntEnum):
    """Error codes the core reports in STATUS. PC_OVERFLOW is decided first (there is no
    instruction to check); otherwise the lowest code that applies wins.

    A bad instruction is never executed: nothing it would have written is touched.
    """
    NONE = 0
    ILLEGAL_OPCODE = 1   # opcode not in :class:`Op`
    BAD_FIELD = 2        # reserved bit set, zero count, group out of range, clamp_min >
    #                      clamp_max, or a MATMUL weight address without preload
    ACT_RANGE = 3        # activation SRAM rows addressed beyond act_depth
    WGT_RANGE = 4        # weight SRAM rows addressed beyond wgt_depth
    ACC_RANGE = 5        # accumulator SRAM rows addressed beyond acc_depth
    QPARAM_RANGE = 6     # requantisation parameter row beyond qparam_depth
    PC_OVERFLOW = 7      # the program ran past the end of program SRAM without HALT


@dataclass(frozen=True)
class Field:
    name: str
    lsb: int
    width: int
    signed: bool = False

    @property
    def mask(self):
        return (1 << self.width) - 1

    @property
    def range(self):
        if self.signed:
            return -(1 << (self.width - 1)), (1 << (self.width - 1)) - 1
        return 0, self.mask


A, N, Q, G = ADDR_FIELD_BITS, COUNT_FIELD_BITS, QADDR_FIELD_BITS, GROUP_FIELD_BITS

FIELDS = {
    Op.HALT: (),
    Op.WAIT: (Field("cycles", 0, WAIT_FIELD_BITS),),
    Op.LOADW: (Field("wgt_addr", 0, A),),
    Op.MATMUL: (
        Field("act_addr", 0, A),
        Field("acc_addr", A, A),
        Field("wgt_addr", 2 * A, A),
        Field("m", 3 * A, N),
        Field("swap", 3 * A + N, 1),
        Field("accumulate", 3 * A + N + 1, 1),
        Field("preload", 3 * A + N + 2, 1),
    ),
    Op.VEC: (
        Field("acc_addr", 0, A),
        Field("act_addr", A, A),
        Field("m", 2 * A, N),
        Field("q_addr", 2 * A + N, Q),
        Field("group", 2 * A + N + Q, G),
    ),
    Op.SETQ: (
        Field("zero_point", 0, 8, signed=True),
        Field("clamp_min", 8, 8, signed=True),
        Field("clamp_max", 16, 8, signed=True),
    ),
}

for _op, _fields in FIELDS.items():
    assert all(f.lsb + f.width <= OPCODE_LSB for f in _fields), _op


def reserved_mask(op):
    """Bits of an instruction word of opcode ``op`` that must be zero."""
    used = ((1 << OPCODE_BITS) - 1) << OPCODE_LSB
    for f in FIELDS[op]:
        used |= f.mask << f.lsb
    return ((1 << INSTR_BITS) - 1) & ~used


class IsaError(ValueError):
    """An instruction that cannot be encoded (a field value that does not fit)."""


@dataclass(frozen=True)
class Instr:
    """A decoded instruction: the opcode and a dict of its field values (unnamed ones are 0)."""
    op: Op
    args: dict

    def __getattr__(self, name):
        try:
            return self.args[name]
        except KeyError:
            raise AttributeError(name) from None

    def __str__(self):
        return f"{self.op.name} " + " ".join(f"{k}={v}" for k, v in self.args.items())


def encode(op, **args):
    """Encode one instruction as a 64-bit integer. Unnamed fields are zero."""
    op = Op(op)
    by_name = {f.name: f for f in FIELDS[op]}
    unknown = sorted(set(args) - set(by_name))
    if unknown:
        raise IsaError(f"{op.name} has no field(s) {', '.join(unknown)}")
    word = op << OPCODE_LSB
    for name, value in args.items():
        f = by_name[name]
        value = int(value)
        lo, hi = f.range
        if not lo <= value <= hi:
            raise IsaError(f"{op.name}.{name} = {value} does not fit in [{lo}, {hi}]")
        word |= (value & f.mask) << f.lsb
    return word


def decode(word):
    """Decode a 64-bit word. Returns an :class:`Instr`, or None if the opcode is illegal.

    Reserved bits are not looked at here: :func:`check` reports them.
    """
    word = int(word) & ((1 << INSTR_BITS) - 1)
    try:
        op = Op(word >> OPCODE_LSB)
    except ValueError:
        return None
    args = {}
    for f in FIELDS[op]:
        value = (word >> f.lsb) & f.mask
        if f.signed and value >> (f.width - 1):
            value -= 1 << f.width
        args[f.name] = value
    return Instr(op, args)


def check(word, cfg):
    """The error an instruction word raises on a core of configuration ``cfg``, or Error.NONE."""
    instr = decode(word)
    if instr is None:
        return Error.ILLEGAL_OPCODE
    op, a = instr.op, instr.args
    if int(word) & reserved_mask(op):
        return Error.BAD_FIELD
    if op == Op.WAIT and a["cycles"] == 0:
        return Error.BAD_FIELD
    if op in (Op.MATMUL, Op.VEC) and a["m"] == 0:
        return Error.BAD_FIELD
    if op == Op.MATMUL and not a["preload"] and a["wgt_addr"]:
        return Error.BAD_FIELD
    if op == Op.VEC and a["group"] >= cfg.groups:
        return Error.BAD_FIELD
    if op == Op.SETQ and a["clamp_min"] > a["clamp_max"]:
        return Error.BAD_FIELD
    if op == Op.MATMUL:
        if a["act_addr"] + a["m"] > cfg.act_depth:
            return Error.ACT_RANGE
        if a["preload"] and a["wgt_addr"] + cfg.rows > cfg.wgt_depth:
            return Error.WGT_RANGE
        if a["acc_addr"] + a["m"] > cfg.acc_depth:
            return Error.ACC_RANGE
    if op == Op.LOADW and a["wgt_addr"] + cfg.rows > cfg.wgt_depth:
        return Error.WGT_RANGE
    if op == Op.VEC:
        if a["act_addr"] + a["m"] > cfg.act_depth:
            return Error.ACT_RANGE
        if a["acc_addr"] + a["m"] > cfg.acc_depth:
            return Error.ACC_RANGE
        if a["q_addr"] >= cfg.qparam_depth:
            return Error.QPARAM_RANGE
    return Error.NONE


# -- timing ------------------------------------------------------------------------------------
# Every instruction occupies the sequencer for cost() cycles. Two interlocks, both decided by
# the program alone: VEC (which reads accumulators) starts only once every accumulator write of
# earlier MATMULs has landed, and MATMUL (which reads activations) starts only once every
# activation write of earlier VECs has landed. HALT waits for both. See docs/isa.md.

READ_LATENCY = 2          # cycles from an SRAM read address to a unit's input: read, register


def fetch_cycles(cfg):
    """Cycles after START before instruction 0 can start: the program SRAM read, its output
    register, then ``cfg.decode_cycles`` of decode (3 or 4)."""
    return 2 + cfg.decode_cycles


def array_latency(rows, cols, pe_stages):
    """Cycles from a vector reaching the systolic array's first PE (after the input register
    that is the activation read's, READ_LATENCY) to its de-skewed results leaving the array:
    the wavefront crosses R + C - 1 PEs, one a cycle, and the last one's sum takes
    ``pe_stages`` (``CoreConfig.pe_stages``, 2 to 5) from its activation: R + C - 2 +
    pe_stages."""
    return rows + cols - 2 + pe_stages


def vec_unit_latency(mult_cycles):
    """Cycles from an input of the vector unit to its result (rtl/vector.py): six stages with
    DSP multipliers (``mult_cycles`` = 1): the bias add, the partial products, their sum, the
    rounding, the shift, the zero point and clamp; with a serial multiplier of K cycles, the
    bias add, K multiply steps, then the last three: K + 4."""
    return 6 if mult_cycles == 1 else mult_cycles + 4


def vec_pipeline_depth(cfg):
    """Cycles from a VEC step's accumulator read to its activation write landing: the read,
    then the vector unit, 8 in all with DSP multipliers, whose input is registered
    (READ_LATENCY; ``cfg.vec_read_latency`` = 3 registers the SRAM rows first: 9); a serial
    lane takes the SRAM's output directly: K + 5."""
    k = cfg.vec_mult_cycles
    return (cfg.vec_read_latency if k == 1 else 1) + vec_unit_latency(k)


def load_cost(cfg):
    """Cycles a weight load occupies the sequencer. The loader needs R cycles (one shadow row
    each), and the next swap may start only C cycles after the load did: shadow row j is written
    in cycle s + C + j, after the previous swap has reached PE[j][C-1], and must land before
    the next swap reaches PE[j][0] (docs/isa.md, "6. Pipeline timing")."""
    return max(cfg.rows, cfg.cols)


def cost(instr, cfg):
    """Cycles the sequencer spends on a (valid) instruction, not counting interlock waits."""
    op, a = instr.op, instr.args
    if op == Op.WAIT:
        return a["cycles"]
    if op == Op.LOADW:
        return load_cost(cfg)
    if op == Op.MATMUL:
        return max(a["m"], load_cost(cfg)) if a["preload"] else a["m"]
    if op == Op.VEC:
        return a["m"] * cfg.vec_row_cycles
    return 1   # HALT, SETQ


def max_cost(cfg):
    """The longest an instruction can occupy the sequencer (sizes its cycle counter)."""
    max_m = (1 << COUNT_FIELD_BITS) - 1
    return max((1 << WAIT_FIELD_BITS) - 1, max_m * cfg.vec_row_cycles, load_cost(cfg))


def matmul_settle(cfg, m):
    """Cycles from a MATMUL's first cycle until all its accumulator writes can be read: row i is
    read from activation SRAM in cycle s+i, enters the array in s+i+READ_LATENCY, leaves it
    array_latency cycles later, is added to its accumulator row and written
    ``cfg.acc_write_latency`` cycles after that, readable in the cycle after."""
    return (m - 1 + READ_LATENCY + array_latency(cfg.rows, cfg.cols, cfg.pe_stages)
            + cfg.acc_write_latency + 1)


def vec_settle(cfg, m):
    """Cycles from a VEC's first cycle until all its activation writes can be read: it issues
    m rows of vec_row_cycles cycles each, and the last one's write lands vec_pipeline_depth
    cycles after its last step was issued (a step is issued in the first of its
    vec_mult_cycles cycles)."""
    return m * cfg.vec_row_cycles - (cfg.vec_mult_cycles - 1) + vec_pipeline_depth(cfg)
