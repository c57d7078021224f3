"""The core's parameters: one frozen object, validated once, imported by everything sized.

Nothing else in the project writes down an array size or an SRAM depth: the RTL, the golden
model, the compiler and the testbenches all take a :class:`CoreConfig`.
"""

from dataclasses import asdict, dataclass, field, fields

__all__ = ["CoreConfig", "ConfigError", "ACT_ADDR_BITS", "ACC_ADDR_BITS", "WGT_TILE_BITS",
           "COUNT_FIELD_BITS", "QADDR_FIELD_BITS", "GROUP_FIELD_BITS", "PATTERN_BITS",
           "LINE_FIELD_BITS", "WAIT_FIELD_BITS", "HOST_READ_LATENCY_CHOICES", "MULT_CYCLES_CHOICES",
           "ACC_WRITE_LATENCY_CHOICES", "DECODE_CYCLES_CHOICES", "PE_STAGES_CHOICES",
           "VEC_READ_LATENCY_CHOICES", "TIMING_OPTIONS", "shape_name"]

# Widths of the instruction fields that hold addresses and counts (see rtl/isa.py). They bound
# the sizes a configuration may ask for, so they live here, next to the checks that use them.
#: Activation addresses are byte addresses: the activation SRAM holds at most 2**17 bytes.
ACT_ADDR_BITS = 17
#: Accumulator rows.
ACC_ADDR_BITS = 14
#: Weight tiles (R weight SRAM rows each).
WGT_TILE_BITS = 12
#: Rows (MATMUL, VEC), positions (FILL) or inputs (POOL) an instruction streams.
COUNT_FIELD_BITS = 12
WAIT_FIELD_BITS = 16
#: Requantisation parameter rows.
QADDR_FIELD_BITS = 10
GROUP_FIELD_BITS = 4
#: Address-pattern registers (SETP): 2**PATTERN_BITS of them.
PATTERN_BITS = 2
#: A pattern's positions per line, and the window unit's line length.
LINE_FIELD_BITS = 12
MAX_LANES = 64
#: Cycles a vector lane may take per multiply: 1 (DSP multipliers) or 32 / bits per cycle (at
#: least 4, so that a result's tag and parameters can be read from a register that the next
#: input overwrites only that many cycles later).
MULT_CYCLES_CHOICES = (1, 4, 8, 16, 32)
#: Cycles a host read may take (rtl/hostbus.py): the SRAM read and the word's register beside
#: the SRAMs, or with 3 a register for every SRAM's output row between them, or with 4 that and
#: every access decoded into registers first (each access, writes and START too, a cycle later).
HOST_READ_LATENCY_CHOICES = (2, 3, 4)
#: Registers between the accumulator add and the accumulator SRAM's write port.
ACC_WRITE_LATENCY_CHOICES = (0, 1)
#: Cycles the sequencer spends decoding a word: the checks in one, or the fields' compares and
#: the checks made of them in two.
DECODE_CYCLES_CHOICES = (1, 2)
#: Pipeline stages of a processing element (rtl/pe.py): the product register and the sum
#: register, and with more, registers for the multiplier's operands and a second product one.
PE_STAGES_CHOICES = (2, 3, 4, 5)
#: Cycles from a VEC step's SRAM reads to a DSP vector unit's input: the read and the lane
#: select's register, or with 3 a register for every SRAM's output row in front of the select.
VEC_READ_LATENCY_CHOICES = (2, 3)
#: The options that add registers for a fast clock (each changes some cycle counts, see
#: rtl/isa.py), with their choices; the first choice is the default.
TIMING_OPTIONS = {
    "host_read_latency": HOST_READ_LATENCY_CHOICES,
    "acc_write_latency": ACC_WRITE_LATENCY_CHOICES,
    "decode_cycles": DECODE_CYCLES_CHOICES,
    "pe_stages": PE_STAGES_CHOICES,
    "vec_read_latency": VEC_READ_LATENCY_CHOICES,
}


def shape_name(rows, cols, vec_lanes=None, vec_mult_cycles=None):
    """``"4x4"``, ``"12x12v3"`` when the vector unit has fewer lanes than min(R, C), and
    ``"8x2v1s32"`` when they multiply serially in 32 cycles: the short name of an array shape
    in build folders and benchmark tables (plain numbers: a shape that failed to build too)."""
    lanes = f"v{vec_lanes}" if vec_lanes and vec_lanes != min(rows, cols) else ""
    serial = f"s{vec_mult_cycles}" if vec_mult_cycles and vec_mult_cycles != 1 else ""
    return f"{rows}x{cols}{lanes}{serial}"


class ConfigError(ValueError):
    """A configuration the core cannot be built with. The message is one line, for users."""


#: One SB_SPRAM256KA: 16,384 words of 16 bits, single port; the iCE40UP5K has four.
SPRAM_DEPTH = 16384
SPRAM_WIDTH = 16
SPRAM_BANKS = 4


def spram_banks(width, depth):
    """(columns, rows) of SB_SPRAM256KA that hold ``depth`` words of ``width`` bits; ValueError
    (one line) if the shape does not tile them or needs more than the part has."""
    if width % SPRAM_WIDTH or depth % SPRAM_DEPTH:
        raise ValueError(f"SPRAM holds words of a multiple of {SPRAM_WIDTH} bits, "
                         f"{SPRAM_DEPTH} deep at a time, not {depth} x {width} bits")
    columns, rows = width // SPRAM_WIDTH, depth // SPRAM_DEPTH
    if columns * rows > SPRAM_BANKS:
        raise ValueError(f"{depth} x {width} bits needs {columns * rows} SPRAMs, the "
                         f"iCE40UP5K has {SPRAM_BANKS}")
    return columns, rows


def _param(default, help_text):
    """A CoreConfig field with its description (``--help`` shows it too)."""
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class CoreConfig:
    """Parameters of one Lockstep core. Each field's description is in its metadata
    (:meth:`describe`), the one copy that the CLI's ``--help`` shows too. Why the timing
    options exist and what they cost: docs/architecture.md, "Core parameters"."""

    rows: int = _param(8, "R, the array's rows: int8 activations (K values) entering per cycle; "
                          "the activation SRAM is R lanes wide")
    cols: int = _param(8, "C, the array's columns: output channels (N values) in parallel; the "
                          "weight SRAM is C int8 lanes, the accumulator SRAM C int32 lanes")
    act_depth: int = _param(1024, "activation SRAM rows of act_row_bytes bytes (R rounded up to "
                                  "a power of two, at least 4); a power of two, at most 2**17 "
                                  "bytes in all")
    wgt_depth: int = _param(1024, "weight SRAM rows of C int8 (at most 4096 tiles of R rows)")
    acc_depth: int = _param(512, "accumulator SRAM rows of C int32")
    qparam_depth: int = _param(64, "requantisation parameter SRAM rows (bias, multiplier and "
                                   "shift of C channels each)")
    prog_depth: int = _param(512, "program SRAM instructions (64-bit words)")
    vec_lanes: int = _param(None, "vector unit lanes (default min(rows, cols)); fewer take "
                                  "min(rows, cols) / vec_lanes steps per VEC row")
    vec_mult_cycles: int = _param(1, "cycles per requantisation multiply: 1 (four DSP "
                                     "multipliers per lane) or 4, 8, 16, 32 (serial, in logic, "
                                     "no DSP); a VEC row takes vec_steps x this")
    host_read_latency: int = _param(2, "cycles per host port read: 2; 3 registers every SRAM "
                                       "output first; 4 also decodes each access into "
                                       "registers (every access, START included, a cycle "
                                       "later)")
    acc_write_latency: int = _param(0, "registers between the accumulator add and its SRAM "
                                       "write: 0, or 1 (a MATMUL's results land a cycle later)")
    decode_cycles: int = _param(1, "cycles the sequencer decodes a word in: 1, or 2 (each "
                                   "field's compare registered first; a run takes a cycle "
                                   "more)")
    pe_stages: int = _param(2, "pipeline stages of each PE, 2 to 5: registers for the "
                               "multiplier's operands and product (each delays a MATMUL's "
                               "results a cycle)")
    vec_read_latency: int = _param(2, "cycles from a VEC step's SRAM reads to the vector unit: "
                                      "2, or 3 to register the SRAM rows first (a VEC's writes "
                                      "land a cycle later; DSP lanes only)")
    act_align: int = _param(1, "MATMUL and POOL windows start at multiples of this many bytes: "
                               "1 (any byte: a byte rotator and a cycle) up to act_row_bytes "
                               "(whole rows)")
    pool: bool = _param(False, "the window unit (POOL, SETW: depthwise convolution, pooling, "
                               "residual add) on as many channels as the vector unit has lanes")
    pool_line: int = _param(64, "pixels per line the window unit's line buffers hold")
    vec_lut: bool = _param(False, "vector lanes multiply in logic rather than DSP blocks "
                                  "(isa.LUT_PRODUCT_EXTRA cycles more)")
    patterns: int = _param(4, "address pattern registers (SETP), 1 to 4; the window unit "
                              "needs 3")
    wgt_spram: bool = _param(False, "the weight SRAM in the iCE40UP5K's SB_SPRAM256KA (16,384 "
                                    "x 16 bits each): 8 x cols a multiple of 16, wgt_depth of "
                                    "16,384 per SPRAM; undefined after configuration")

    @classmethod
    def describe(cls, name):
        """The description of parameter ``name``."""
        return next(f.metadata["help"] for f in fields(cls) if f.name == name)

    def __post_init__(self):
        if self.vec_lanes is None and isinstance(self.rows, int) and isinstance(self.cols, int):
            object.__setattr__(self, "vec_lanes", min(self.rows, self.cols))
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("pool", "vec_lut", "wgt_spram"):
                if not isinstance(value, bool):
                    raise ConfigError(f"{f.name} must be True or False, not {value!r}")
            elif not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"{f.name} must be an integer, not {value!r}")
        for name in ("rows", "cols"):
            value = getattr(self, name)
            if not 1 <= value <= MAX_LANES:
                raise ConfigError(f"{name} must be between 1 and {MAX_LANES}, not {value}")
        big, small = max(self.rows, self.cols), min(self.rows, self.cols)
        if big % small:
            raise ConfigError(
                f"rows and cols must divide one another (got {self.rows} x {self.cols}): "
                "a layer's output columns are re-read as the next layer's input rows")
        if big // small > 2 ** GROUP_FIELD_BITS:
            raise ConfigError(
                f"rows/cols ratio may be at most {2 ** GROUP_FIELD_BITS}, "
                f"not {big // small} ({self.rows} x {self.cols})")
        limits = {
            "act_depth": 2 ** ACT_ADDR_BITS // self.act_row_bytes,
            "wgt_depth": 2 ** WGT_TILE_BITS * self.rows,
            "acc_depth": 2 ** ACC_ADDR_BITS,
            "qparam_depth": 2 ** QADDR_FIELD_BITS,
            "prog_depth": 2 ** 15,
            "pool_line": 2 ** LINE_FIELD_BITS - 1,
        }
        for name, limit in limits.items():
            value = getattr(self, name)
            if not 1 <= value <= limit:
                raise ConfigError(f"{name} must be between 1 and {limit}, not {value}")
        if not 1 <= self.vec_lanes <= self.lanes or self.lanes % self.vec_lanes:
            raise ConfigError(f"vec_lanes must divide min(rows, cols) = {self.lanes}, "
                              f"not {self.vec_lanes}")
        steps = self.lanes // self.vec_lanes
        if steps & (steps - 1):
            raise ConfigError(f"min(rows, cols) / vec_lanes must be a power of two, "
                              f"not {self.lanes} / {self.vec_lanes} = {steps}")
        k = self.vec_mult_cycles
        if k not in MULT_CYCLES_CHOICES:
            raise ConfigError(f"vec_mult_cycles must be one of "
                              f"{', '.join(map(str, MULT_CYCLES_CHOICES))}, not {k}")
        for name, choices in TIMING_OPTIONS.items():
            value = getattr(self, name)
            if value not in choices:
                raise ConfigError(f"{name} must be one of {', '.join(map(str, choices))}, "
                                  f"not {value}")
        if self.vec_read_latency != 2 and k != 1:
            raise ConfigError(f"vec_read_latency {self.vec_read_latency} needs DSP vector lanes: "
                              f"vec_mult_cycles must be 1, not {k}")
        if self.vec_lut and k != 1:
            raise ConfigError(f"vec_lut needs one multiply a cycle (vec_mult_cycles 1), not {k}")
        if self.act_depth < 2 or self.act_depth & (self.act_depth - 1):
            raise ConfigError(f"act_depth must be a power of two of at least 2, "
                              f"not {self.act_depth}")
        a = self.act_align
        if a < 1 or a & (a - 1) or a > self.act_row_bytes:
            raise ConfigError(f"act_align must be a power of two from 1 to act_row_bytes "
                              f"({self.act_row_bytes}), not {a}")
        if not 1 <= self.patterns <= 2 ** PATTERN_BITS:
            raise ConfigError(f"patterns must be between 1 and {2 ** PATTERN_BITS}, "
                              f"not {self.patterns}")
        if self.pool and self.patterns < 3:
            raise ConfigError(f"the window unit (pool) needs 3 pattern registers, not "
                              f"{self.patterns}")
        if self.pool and (self.vec_lanes < 2 or k != 1):
            raise ConfigError(f"the window unit (pool) needs at least 2 vector lanes of one "
                              f"multiply a cycle (vec_mult_cycles 1), not {self.vec_lanes} "
                              f"lanes of {k} cycles")
        if self.wgt_spram:
            try:
                spram_banks(8 * self.cols, self.wgt_depth)
            except ValueError as exc:
                raise ConfigError(f"wgt_spram: {exc}") from None
        if self.wgt_depth < self.rows:
            raise ConfigError(
                f"wgt_depth ({self.wgt_depth}) must hold at least one weight tile "
                f"({self.rows} rows)")

    # -- derived sizes -----------------------------------------------------------------------

    @property
    def act_row_bytes(self):
        """Bytes per activation SRAM row: R rounded up to a power of two, at least 4 (a host
        word)."""
        return max(4, 1 << (self.rows - 1).bit_length())

    @property
    def act_bytes(self):
        """Bytes of the activation SRAM (byte addresses wrap modulo this)."""
        return self.act_depth * self.act_row_bytes

    @property
    def wgt_tiles(self):
        """Whole R-row weight tiles the weight SRAM holds."""
        return self.wgt_depth // self.rows

    @property
    def lanes(self):
        """Lanes the vector unit processes per cycle: min(rows, cols)."""
        return min(self.rows, self.cols)

    @property
    def pool_lanes(self):
        """Channels the window unit (POOL) processes per input: the vector unit's lanes, which
        requantise its results one input a cycle."""
        return self.vec_lanes

    @property
    def groups(self):
        """Lane groups of a VEC instruction: max(rows, cols) // min(rows, cols)."""
        return max(self.rows, self.cols) // self.lanes

    @property
    def vec_steps(self):
        """Steps of ``vec_lanes`` channels per accumulator row: lanes // vec_lanes (each takes
        vec_mult_cycles cycles, see :attr:`vec_row_cycles`)."""
        return self.lanes // self.vec_lanes

    @property
    def vec_row_cycles(self):
        """Cycles a VEC instruction spends on one accumulator row: vec_steps x vec_mult_cycles."""
        return self.vec_steps * self.vec_mult_cycles

    @property
    def shape(self):
        """:func:`shape_name` of this configuration, e.g. ``"8x2v1s32"``."""
        return shape_name(self.rows, self.cols, self.vec_lanes, self.vec_mult_cycles)

    @property
    def timing(self):
        """The values of this configuration's :data:`TIMING_OPTIONS`, by name (a dict)."""
        return {name: getattr(self, name) for name in TIMING_OPTIONS}

    @property
    def macs_per_cycle(self):
        return self.rows * self.cols

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, data):
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown core parameter(s): {', '.join(unknown)}")
        return cls(**data)

    @property
    def name(self):
        """A short name that identifies the configuration, e.g. for build caches."""
        suffix = f"_v{self.vec_lanes}" if self.vec_lanes != self.lanes else ""
        if self.vec_mult_cycles != 1:
            suffix += f"_s{self.vec_mult_cycles}"
        if self.host_read_latency != 2:
            suffix += f"_h{self.host_read_latency}"
        if self.acc_write_latency:
            suffix += f"_aw{self.acc_write_latency}"
        if self.decode_cycles != 1:
            suffix += f"_d{self.decode_cycles}"
        if self.pe_stages != 2:
            suffix += f"_pe{self.pe_stages}"
        if self.vec_read_latency != 2:
            suffix += f"_vr{self.vec_read_latency}"
        if self.act_align != 1:
            suffix += f"_al{self.act_align}"
        if self.pool:
            suffix += f"_pool{self.pool_line}"
        if self.vec_lut:
            suffix += "_lut"
        if self.wgt_spram:
            suffix += "_spram"
        if self.patterns != 2 ** PATTERN_BITS:
            suffix += f"_pat{self.patterns}"
        return (f"r{self.rows}c{self.cols}_a{self.act_depth}_w{self.wgt_depth}"
                f"_c{self.acc_depth}_q{self.qparam_depth}_p{self.prog_depth}{suffix}")
