"""The host port's address map: regions, registers and how SRAM rows are cut into 32-bit words.

Pure Python, imported by the gateware (rtl/hostport.py) and by every host-side driver (cocotb
benches, runtime, board link), so the two sides cannot disagree.

A host address is ``region << (word_bits + row_bits) | word << row_bits | row``: word-major, so
word ``w`` of every row of a region is one run of consecutive addresses, and a whole region is
``words_per_row`` runs of ``depth`` words. The host link moves a run in frames of 64 words
whatever the row width (a row-major map would leave holes between narrow rows, and cost a frame
per row). Every access is one 32-bit word. SRAM rows wider than 32 bits are split into words,
least significant first; the last word of a row that is not a multiple of 32 bits is
zero-extended on read. The registers are the rows of Region.CTRL (one word each), so they too
are consecutive addresses.
"""

from dataclasses import dataclass
from enum import IntEnum

__all__ = ["Region", "Reg", "HostMap", "STATUS_BUSY", "STATUS_DONE", "STATUS_ERROR_SHIFT", "MAGIC",
           "CTRL_START", "QPARAM_FIELDS", "REGION_BITS", "DATA_BITS", "SRAM_FIELDS", "row_words"]

REGION_BITS = 3
DATA_BITS = 32
MAGIC = 0x4C4B5350   # "LKSP"
VERSION = 3   # 3: the word-major address map


class Region(IntEnum):
    CTRL = 0     # control and status registers (row = register number, word 0)
    PROG = 1     # program: 2 words per instruction (low word first)
    ACT = 2      # activations: act_row_bytes bytes per row, 4 per word (byte 0 in bits 7:0)
    WGT = 3      # weights: C int8 lanes per row, 4 lanes per word
    ACC = 4      # accumulators: C int32 lanes per row, one lane per word
    QPARAM = 5   # requantisation parameters: 4 words per channel, see QPARAM_FIELDS


class Reg(IntEnum):
    """Registers in Region.CTRL. Only CTRL is writable; everything is readable at any time."""
    CTRL = 0        # write CTRL_START to start the program at address 0 (busy from the
    #                 second cycle after the write, the third with host_read_latency 4;
    #                 ignored while busy)
    STATUS = 1      # busy (bit 0), done (bit 1), error code (bits 11:8)
    CYCLES = 2      # cycles from START to the end of the program (HALT or error)
    MAC_CYCLES = 3  # cycles in which a vector entered the array (useful MAC cycles)
    INSTRET = 4     # instructions retired (HALT included; a faulting one is not)
    ERR_PC = 5      # address of the instruction that stopped the core
    MAGIC = 6       # reads MAGIC
    VERSION = 7
    ROWS = 8
    COLS = 9
    ACT_DEPTH = 10
    WGT_DEPTH = 11
    ACC_DEPTH = 12
    QPARAM_DEPTH = 13
    PROG_DEPTH = 14


CTRL_START = 1
STATUS_BUSY = 1 << 0
STATUS_DONE = 1 << 1
STATUS_ERROR_SHIFT = 8

# Word k of a channel's 4-word slot in Region.QPARAM (word = 4 * channel + k).
QPARAM_FIELDS = ("bias", "mult", "shift")   # word 3 is reserved: reads 0, writes ignored

# (image name, region) of every SRAM image the host can write and read; the names are those of
# sim.model.CoreState ("qparam" stands for its bias, mult and shift arrays together).
SRAM_FIELDS = (("prog", Region.PROG), ("act", Region.ACT), ("wgt", Region.WGT),
               ("acc", Region.ACC), ("qparam", Region.QPARAM))


def _ceil_log2(n):
    return max(1, (n - 1).bit_length())


@dataclass(frozen=True)
class HostMap:
    """The address map of one core configuration."""
    cfg: object

    def words_per_row(self, region):
        c = self.cfg
        return {
            Region.CTRL: 1,
            Region.PROG: 2,
            Region.ACT: c.act_row_bytes // 4,
            Region.WGT: -(-c.cols // 4),
            Region.ACC: c.cols,
            Region.QPARAM: 4 * c.cols,
        }[Region(region)]

    def depth(self, region):
        c = self.cfg
        return {
            Region.CTRL: len(Reg),
            Region.PROG: c.prog_depth,
            Region.ACT: c.act_depth,
            Region.WGT: c.wgt_depth,
            Region.ACC: c.acc_depth,
            Region.QPARAM: c.qparam_depth,
        }[Region(region)]

    @property
    def word_bits(self):
        return max(_ceil_log2(self.words_per_row(r)) for r in Region)

    @property
    def row_bits(self):
        return max(_ceil_log2(self.depth(r)) for r in Region)

    @property
    def addr_bits(self):
        return REGION_BITS + self.row_bits + self.word_bits

    def addr(self, region, row=0, word=0):
        region = Region(region)
        if not 0 <= row < self.depth(region):
            raise IndexError(f"{region.name} row {row} outside 0..{self.depth(region) - 1}")
        if not 0 <= word < self.words_per_row(region):
            raise IndexError(f"{region.name} word {word} outside "
                             f"0..{self.words_per_row(region) - 1}")
        return (region << (self.word_bits + self.row_bits)) | (word << self.row_bits) | row

    def decode(self, addr):
        """(region number, row, word) of host address ``addr``, whether or not it is mapped."""
        row = addr & ((1 << self.row_bits) - 1)
        word = addr >> self.row_bits & ((1 << self.word_bits) - 1)
        return addr >> (self.row_bits + self.word_bits), row, word

    def mapped(self, addr):
        """Whether ``addr`` names a register or an SRAM word (others read 0, writes are lost)."""
        region, row, word = self.decode(addr)
        return (region in iter(Region) and row < self.depth(region)
                and word < self.words_per_row(region))

    def reg(self, reg):
        return self.addr(Region.CTRL, Reg(reg), 0)

    def register_values(self):
        """Constant registers: what the core reports about itself."""
        c = self.cfg
        return {
            Reg.MAGIC: MAGIC, Reg.VERSION: VERSION, Reg.ROWS: c.rows, Reg.COLS: c.cols,
            Reg.ACT_DEPTH: c.act_depth, Reg.WGT_DEPTH: c.wgt_depth, Reg.ACC_DEPTH: c.acc_depth,
            Reg.QPARAM_DEPTH: c.qparam_depth, Reg.PROG_DEPTH: c.prog_depth,
        }

    # -- packing rows into words (host side) -------------------------------------------------

    def row_to_words(self, region, values):
        """The 32-bit words that make up one SRAM row holding ``values`` (lanes, lane 0 first)."""
        region = Region(region)
        values = [int(v) for v in values]
        if region in (Region.ACT, Region.WGT):
            lanes = self.cfg.act_row_bytes if region == Region.ACT else self.cfg.cols
            if len(values) != lanes:
                raise ValueError(f"{region.name} row needs {lanes} lanes, got {len(values)}")
            words = []
            for w in range(self.words_per_row(region)):
                word = 0
                for b, v in enumerate(values[4 * w:4 * w + 4]):
                    if not -128 <= v <= 127:
                        raise ValueError(f"int8 lane value {v} out of range")
                    word |= (v & 0xFF) << (8 * b)
                words.append(word)
            return words
        if region == Region.ACC:
            if len(values) != self.cfg.cols:
                raise ValueError(f"ACC row needs {self.cfg.cols} lanes, got {len(values)}")
            return [v & 0xFFFF_FFFF for v in values]
        if region == Region.PROG:
            (instr,) = values
            return [instr & 0xFFFF_FFFF, (instr >> 32) & 0xFFFF_FFFF]
        raise ValueError(f"no row packing for {region.name}")

    def words_to_row(self, region, words):
        """Inverse of :meth:`row_to_words`: signed lane values."""
        region = Region(region)
        if region in (Region.ACT, Region.WGT):
            lanes = self.cfg.act_row_bytes if region == Region.ACT else self.cfg.cols
            out = []
            for lane in range(lanes):
                byte = (words[lane // 4] >> (8 * (lane % 4))) & 0xFF
                out.append(byte - 256 if byte & 0x80 else byte)
            return out
        if region == Region.ACC:
            return [w - (1 << 32) if w & 0x8000_0000 else w for w in words]
        if region == Region.PROG:
            return [words[0] | (words[1] << 32)]
        raise ValueError(f"no row unpacking for {region.name}")


def row_words(hmap, state, name, row):
    """The host words of row ``row`` of SRAM image ``name`` (see SRAM_FIELDS) of ``state``, a
    sim.model.CoreState or anything with its arrays (prog, act, wgt, acc, bias, mult, shift).

    The one copy of this packing: the cocotb benches and the host link client both use it."""
    if name == "prog":
        return hmap.row_to_words(Region.PROG, [int(state.prog[row])])
    if name in ("act", "wgt", "acc"):
        return hmap.row_to_words(dict(SRAM_FIELDS)[name], getattr(state, name)[row])
    if name != "qparam":
        raise ValueError(f"no SRAM image called {name!r}")
    words = []
    for ch in range(hmap.cfg.cols):
        words += [int(state.bias[row, ch]) & 0xFFFF_FFFF, int(state.mult[row, ch]) & 0xFFFF_FFFF,
                  int(state.shift[row, ch]) & 0xFF, 0]
    return words
