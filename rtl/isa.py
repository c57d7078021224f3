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
    ACC_ADDR_BITS,
    ACT_ADDR_BITS,
    COUNT_FIELD_BITS,
    GROUP_FIELD_BITS,
    LINE_FIELD_BITS,
    PATTERN_BITS,
    QADDR_FIELD_BITS,
    WAIT_FIELD_BITS,
    WGT_TILE_BITS,
)

__all__ = [
    "Op", "Error", "Field", "FIELDS", "INSTR_BITS", "OPCODE_LSB", "OPCODE_BITS",
    "Instr", "encode", "decode", "check", "cost", "IsaError", "Window", "Pattern",
    "PATTERNS", "POOL_PROLOGUE", "LANES_BITS",
    "fetch_cycles", "READ_LATENCY", "act_read_latency", "act_write_latency", "array_latency",
    "vec_unit_latency", "vec_pipeline_depth", "fill_depth", "window_latency", "pool_depth",
    "matmul_settle", "vec_settle", "fill_settle", "pool_settle", "load_cost", "load_busy",
    "write_depth", "legal_ops", "PATTERN_FIELDS",
]

INSTR_BITS = 64
OPCODE_LSB = 60
OPCODE_BITS = 4


class Op(IntEnum):
    """Opcodes. An all-zero word is HALT, so running into cleared program SRAM stops the core.
    POOL and SETW exist only on cores with the window unit (``cfg.pool``)."""
    HALT = 0x0
    WAIT = 0x1
    LOADW = 0x2
    MATMUL = 0x3
    VEC = 0x4
    SETQ = 0x5
    SETP = 0x6
    FILL = 0x7
    POOL = 0x8
    SETW = 0x9


class Window(IntEnum):
    """What a POOL computes of its inputs (SETW ``op``), per lane."""
    DW = 0      # depthwise convolution: sum over the window of (x - zp_a) * weight
    AVG = 1     # sum over the window of (x - zp_a) (the scale 1/count is the requantisation's)
    MAX = 2     # max over the window of (x - zp_a)
    SUM = 3     # sum of (x - zp_a) over all inputs: one result (global pooling)
    ADD = 4     # TFLite's residual add of inputs A and B, each rescaled


class Error(IntEnum):
    """Error codes the core reports in STATUS. PC_OVERFLOW is decided first (there is no
    instruction to check); otherwise the lowest code that applies wins.

    A bad instruction is never executed: nothing it would have written is touched.
    """
    NONE = 0
    ILLEGAL_OPCODE = 1   # opcode not in :class:`Op`, or POOL/SETW on a core without the unit
    BAD_FIELD = 2        # reserved bit set, zero count, a field outside its values
    ACT_RANGE = 3        # activation address beyond the activation SRAM
    WGT_RANGE = 4        # weight tile beyond the weight SRAM
    ACC_RANGE = 5        # accumulator rows beyond acc_depth
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


#: Width of SETP's ``lanes``: bytes a write covers, 1..R (R <= 64).
LANES_BITS = 7
#: Cycles a POOL spends before its first input: the window unit reads the weights of the 3 x 3
#: window positions from weight SRAM, one a cycle, and its parameter rows.
POOL_PROLOGUE = 9
#: Address-pattern registers.
PATTERNS = 1 << PATTERN_BITS


def _layout(*fields):
    """Fields (name, width[, signed]) packed from bit 0 up."""
    out, lsb = [], 0
    for name, width, *signed in fields:
        out.append(Field(name, lsb, width, bool(signed and signed[0])))
        lsb += width
    return tuple(out)


# Each field's width comes from rtl/config.py, where the configuration's limits are checked
# against it.
FIELDS = {
    Op.HALT: (),
    Op.WAIT: _layout(("cycles", WAIT_FIELD_BITS)),
    Op.LOADW: _layout(("wgt_tile", WGT_TILE_BITS)),
    Op.MATMUL: _layout(("act_addr", ACT_ADDR_BITS), ("acc_addr", ACC_ADDR_BITS),
                       ("wgt_tile", WGT_TILE_BITS), ("m", COUNT_FIELD_BITS), ("swap", 1),
                       ("accumulate", 1), ("preload", 1), ("pattern", PATTERN_BITS)),
    Op.VEC: _layout(("acc_addr", ACC_ADDR_BITS), ("act_addr", ACT_ADDR_BITS),
                    ("m", COUNT_FIELD_BITS), ("q_addr", QADDR_FIELD_BITS),
                    ("group", GROUP_FIELD_BITS), ("pattern", PATTERN_BITS)),
    Op.SETQ: _layout(("zero_point", 8, True), ("clamp_min", 8, True), ("clamp_max", 8, True)),
    Op.SETP: _layout(("index", PATTERN_BITS), ("count", LINE_FIELD_BITS),
                     ("step", ACT_ADDR_BITS), ("line", ACT_ADDR_BITS), ("lanes", LANES_BITS)),
    Op.FILL: _layout(("act_addr", ACT_ADDR_BITS), ("m", COUNT_FIELD_BITS), ("value", 8, True),
                     ("pattern", PATTERN_BITS)),
    Op.POOL: _layout(("act_addr", ACT_ADDR_BITS), ("out_addr", ACT_ADDR_BITS),
                     ("m", COUNT_FIELD_BITS), ("q_addr", QADDR_FIELD_BITS),
                     ("pattern", PATTERN_BITS), ("out_pattern", PATTERN_BITS)),
    Op.SETW: _layout(("kind", 3), ("kh", 2), ("kw", 2), ("stride", 1), ("line", LINE_FIELD_BITS),
                     ("zp_a", 8, True), ("zp_b", 8, True), ("aux", ACT_ADDR_BITS),
                     ("aux_pattern", PATTERN_BITS)),
}

for _op, _fields in FIELDS.items():
    assert all(f.lsb + f.width <= OPCODE_LSB for f in _fields), _op


#: The fields that name a pattern register, by opcode (each must be below cfg.patterns).
PATTERN_FIELDS = {Op.MATMUL: ("pattern",), Op.VEC: ("pattern",), Op.FILL: ("pattern",),
                  Op.POOL: ("pattern", "out_pattern"), Op.SETP: ("index",),
                  Op.SETW: ("aux_pattern",)}


def legal_ops(cfg):
    """The opcodes a core of configuration ``cfg`` executes."""
    return [op for op in Op if cfg.pool or op not in (Op.POOL, Op.SETW)]


@dataclass(frozen=True)
class Pattern:
    """An address pattern (SETP): position i of a stream starting at byte ``base`` is
    ``base + (i // count) * line + (i % count) * step``, modulo the activation SRAM's size;
    a write there covers ``lanes`` bytes."""
    count: int
    step: int
    line: int
    lanes: int

    @classmethod
    def default(cls, cfg):
        """What START sets every pattern register to: R-byte windows one after the other."""
        return cls(count=1, step=0, line=cfg.rows, lanes=cfg.rows)

    def address(self, cfg, base, i):
        return (base + (i // self.count) * self.line + (i % self.count) * self.step) \
            % cfg.act_bytes


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
    """The error an instruction word raises on a core of configuration ``cfg``, or Error.NONE.

    Checks use the word alone: the pattern (SETP) and window (SETW) registers an instruction
    uses are never checked against it (an address a pattern generates wraps around the
    activation SRAM; docs/isa.md)."""
    instr = decode(word)
    if instr is None or instr.op not in legal_ops(cfg):
        return Error.ILLEGAL_OPCODE
    op, a = instr.op, instr.args
    if int(word) & reserved_mask(op):
        return Error.BAD_FIELD
    if op == Op.WAIT and a["cycles"] == 0:
        return Error.BAD_FIELD
    if op in (Op.MATMUL, Op.VEC, Op.FILL, Op.POOL) and a["m"] == 0:
        return Error.BAD_FIELD
    if op == Op.MATMUL and not a["preload"] and a["wgt_tile"]:
        return Error.BAD_FIELD
    if op == Op.VEC and a["group"] >= vec_groups(cfg):
        return Error.BAD_FIELD
    if op == Op.SETQ and a["clamp_min"] > a["clamp_max"]:
        return Error.BAD_FIELD
    if op == Op.SETP and (a["count"] == 0 or not 1 <= a["lanes"] <= cfg.rows):
        return Error.BAD_FIELD
    if any(a.get(name, 0) >= cfg.patterns for name in PATTERN_FIELDS.get(op, ())):
        return Error.BAD_FIELD
    if op == Op.SETW and (a["kind"] not in set(Window) or not 1 <= a["kh"] <= 3
                          or not 1 <= a["kw"] <= 3 or not 1 <= a["line"] <= cfg.pool_line
                          or a["kw"] > a["line"] or (a["kh"] > 1 and a["line"] < 2)):
        return Error.BAD_FIELD
    if op in (Op.MATMUL, Op.VEC, Op.FILL, Op.POOL) and a["act_addr"] >= cfg.act_bytes:
        return Error.ACT_RANGE
    if op == Op.POOL and a["out_addr"] >= cfg.act_bytes:
        return Error.ACT_RANGE
    if op == Op.SETW and a["kind"] == Window.ADD and a["aux"] >= cfg.act_bytes:
        return Error.ACT_RANGE
    if op == Op.MATMUL and a["preload"] and a["wgt_tile"] >= cfg.wgt_tiles:
        return Error.WGT_RANGE
    if op == Op.LOADW and a["wgt_tile"] >= cfg.wgt_tiles:
        return Error.WGT_RANGE
    if (op == Op.SETW and a["kind"] == Window.DW
            and a["aux"] * cfg.rows + a["kh"] * a["kw"] > cfg.wgt_depth):
        return Error.WGT_RANGE
    if op in (Op.MATMUL, Op.VEC) and a["acc_addr"] + a["m"] > cfg.acc_depth:
        return Error.ACC_RANGE
    if op == Op.VEC and a["q_addr"] >= cfg.qparam_depth:
        return Error.QPARAM_RANGE
    if op == Op.POOL and a["q_addr"] + 1 >= cfg.qparam_depth:
        return Error.QPARAM_RANGE
    return Error.NONE


def vec_groups(cfg):
    """Lane groups a VEC may name: C / R when C > R (each R channels of a C-channel row),
    else 1 (all C channels: where they go is the activation address's business)."""
    return cfg.cols // cfg.rows if cfg.cols > cfg.rows else 1


# -- timing ------------------------------------------------------------------------------------
# Every instruction occupies the sequencer for cost() cycles. The interlocks, decided by the
# program alone (docs/isa.md, section 4): an instruction that reads activations (MATMUL, POOL,
# SETW) starts once every earlier activation write has landed; one that writes them (VEC, FILL,
# POOL) no earlier than needed for its first write to land after every earlier one
# (write_depth); VEC starts once every accumulator write of earlier MATMULs has landed; POOL
# once the weight loader is done reading. HALT waits for every write.

READ_LATENCY = 2          # cycles from an SRAM read address to a unit's input: read, register


def fetch_cycles(cfg):
    """Cycles after START before instruction 0 can start: the program SRAM read, its output
    register, then ``cfg.decode_cycles`` of decode (3 or 4)."""
    return 2 + cfg.decode_cycles


def act_read_latency(cfg):
    """Cycles from an activation window's address to its R bytes in the array's (or the window
    unit's) input register: the SRAM read and that register (2); with windows at any byte
    (``cfg.act_align`` below a row) the two rows are registered first and rotated into it (3)."""
    return READ_LATENCY + (cfg.act_align < cfg.act_row_bytes)


def act_write_latency(cfg):
    """Cycles a write of activation bytes spends placing them in their rows: 1 (registered)
    with windows at any byte, else 0 (``cfg.act_align``)."""
    return int(cfg.act_align < cfg.act_row_bytes)


def array_latency(rows, cols, pe_stages):
    """Cycles from a vector reaching the systolic array's first PE (after the input register
    that is the activation read's, READ_LATENCY) to its de-skewed results leaving the array:
    the wavefront crosses R + C - 1 PEs, one a cycle, and the last one's sum takes
    ``pe_stages`` (``CoreConfig.pe_stages``, 2 to 5) from its activation: R + C - 2 +
    pe_stages."""
    return rows + cols - 2 + pe_stages


#: Extra cycles of a vector lane whose 32 x 32 product is an adder tree in logic
#: (``CoreConfig.vec_lut``): five levels of adds, each a cycle, instead of the DSP multipliers'
#: product and sum.
LUT_PRODUCT_EXTRA = 3


def vec_unit_latency(mult_cycles, lut=False):
    """Cycles from an input of the vector unit to its result (rtl/vector.py): six stages with
    DSP multipliers (``mult_cycles`` = 1): the bias add, the partial products, their sum, the
    rounding, the shift, the zero point and clamp (nine with the product in logic, ``lut``);
    with a serial multiplier of K cycles, the bias add, K multiply steps, then the last three:
    K + 4."""
    if mult_cycles != 1:
        return mult_cycles + 4
    return 6 + (LUT_PRODUCT_EXTRA if lut else 0)


def vec_pipeline_depth(cfg):
    """Cycles from a VEC step's accumulator read to its activation write landing: the read,
    then the vector unit, whose input is registered (READ_LATENCY; ``cfg.vec_read_latency`` =
    3 registers the SRAM rows first), then the activation write (``act_write_latency``); a
    serial lane takes the SRAM's output directly: 1 + K + 4 + act_write_latency."""
    k = cfg.vec_mult_cycles
    return ((cfg.vec_read_latency if k == 1 else 1) + vec_unit_latency(k, cfg.vec_lut)
            + act_write_latency(cfg))


def fill_depth(cfg):
    """Cycles from a FILL position's issue to its write landing: the write request is
    registered, then placed (``act_write_latency``)."""
    return 1 + act_write_latency(cfg)


def window_latency():
    """Cycles from a window unit input in its input register to its result at the vector
    unit's input (rtl/window.py): the window, then the longest path, ADD's: its product in
    four levels of adds, TFLite's rounding high half, the rounding term and the shift, the
    sum with the A input's result, and the output register."""
    return 10


def pool_depth(cfg):
    """Cycles from a POOL input's read to its result's activation write landing: the read
    (``act_read_latency``), the window unit, the vector unit, the write."""
    return (act_read_latency(cfg) + window_latency() + vec_unit_latency(1, cfg.vec_lut)
            + act_write_latency(cfg))


def write_depth(cfg, op):
    """Cycles from the first cycle of an instruction that writes activations to its first
    write landing: it may start once that lands after every earlier activation write."""
    return {Op.VEC: vec_pipeline_depth(cfg), Op.FILL: fill_depth(cfg),
            Op.POOL: POOL_PROLOGUE + pool_depth(cfg)}[op]


def load_cost(cfg):
    """Cycles a weight load occupies the sequencer. The loader needs R cycles (one shadow row
    each), and the next swap may start only C cycles after the load did: shadow row j is written
    in cycle s + C + j, after the previous swap has reached PE[j][C-1], and must land before
    the next swap reaches PE[j][0] (docs/isa.md, "6. Pipeline timing")."""
    return max(cfg.rows, cfg.cols)


def load_busy(cfg):
    """Cycles from a load's start (LOADW, or a MATMUL with preload) until the weight loader
    has read its last row from weight SRAM (rtl/loader.py): a POOL, which reads depthwise
    weights through the same port, starts no earlier."""
    delay = act_read_latency(cfg) - 2
    return delay + max(cfg.cols - 2, 0) + cfg.rows


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
    if op == Op.FILL:
        return a["m"]
    if op == Op.POOL:
        return POOL_PROLOGUE + a["m"]
    return 1   # HALT, SETQ, SETP, SETW


def max_cost(cfg):
    """The longest an instruction can occupy the sequencer (sizes its cycle counter)."""
    max_m = (1 << COUNT_FIELD_BITS) - 1
    return max((1 << WAIT_FIELD_BITS) - 1, max_m * cfg.vec_row_cycles, load_cost(cfg))


def matmul_settle(cfg, m):
    """Cycles from a MATMUL's first cycle until all its accumulator writes can be read: row i is
    read from activation SRAM in cycle s+i, enters the array in s+i+act_read_latency, leaves it
    array_latency cycles later, is added to its accumulator row and written
    ``cfg.acc_write_latency`` cycles after that, readable in the cycle after."""
    return (m - 1 + act_read_latency(cfg) + array_latency(cfg.rows, cfg.cols, cfg.pe_stages)
            + cfg.acc_write_latency + 1)


def vec_settle(cfg, m):
    """Cycles from a VEC's first cycle until all its activation writes can be read: it issues
    m rows of vec_row_cycles cycles each, and the last one's write lands vec_pipeline_depth
    cycles after its last step was issued (a step is issued in the first of its
    vec_mult_cycles cycles)."""
    return m * cfg.vec_row_cycles - (cfg.vec_mult_cycles - 1) + vec_pipeline_depth(cfg)


def fill_settle(cfg, m):
    """Cycles from a FILL's first cycle until all its writes can be read."""
    return m + fill_depth(cfg)


def pool_settle(cfg, m):
    """Cycles from a POOL's first cycle until all its writes can be read: its last input is
    read in cycle s + POOL_PROLOGUE + m - 1."""
    return POOL_PROLOGUE + m + pool_depth(cfg)
