"""The weight-stationary systolic array: R x C processing elements with skew and de-skew.

Activations enter unskewed (one R-element vector per cycle) and results leave unskewed (one
C-element row of int32 per cycle); the diagonal wavefront inside is the array's own business.
"""

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .config import PE_STAGES_CHOICES
from .dsp import MULTIPLIERS, check_multiplier, mult18x18d, multiplier_kind, sb_mac16_pair
from .isa import array_latency
from .pe import ACT_SHAPE, PSUM_SHAPE, WEIGHT_SHAPE, ProcessingElement, psum_shape

__all__ = ["SystolicArray", "MULTIPLIERS", "AUTO_MULTIPLIER", "systolic_latency"]

#: What "auto" means for the array on each FPGA family. An ECP5 gets MULT18X18D instances with
#: the operands in the DSPs' input registers, so that the long routes between the PEs' registers
#: and the DSP rows spread over the die have cycles of their own (the ULX3S build also places
#: with nextpnr's ``--placer static``: boards/catalog.py).
AUTO_MULTIPLIER = {"ice40": "sb_mac16", "ecp5": "mult18x18d"}


def systolic_latency(rows, cols, pe_stages=2):
    """Cycles from a vector on the array's input to its results: the input register (the
    activation read's register of ``isa.READ_LATENCY``), then ``isa.array_latency``."""
    return 1 + array_latency(rows, cols, pe_stages)


def shadow_write_layout(rows, cols):
    """Payload of the shadow-weight write stream: array row ``sel`` of the shadows takes ``row``."""
    return data.StructLayout({
        "row": data.ArrayLayout(WEIGHT_SHAPE, cols),
        "sel": unsigned(max(1, (rows - 1).bit_length())),
    })


class SystolicArray(wiring.Component):
    """R x C weight-stationary systolic array computing ``y = x @ W`` one vector per cycle.

    ``PE[r][c]`` holds weight ``W[r][c]``. Element ``r`` of an input vector enters row ``r``
    after an input register and ``r`` cycles of skew and moves one column right per cycle;
    partial sums move one row down per cycle, starting from 0 in row 0, each PE registering its
    product before adding it (rtl/pe.py); the bottom row's sums are de-skewed so that all ``C``
    results of a vector leave in the same cycle. Inside the array the sums are only as wide as R
    products need (:func:`rtl.pe.psum_shape`); they leave sign-extended to 32 bits.

    Each PE has an active and a shadow weight. ``w`` writes a whole row of shadow weights. An
    input vector with ``swap`` set switches every PE to its shadow weight just before the vector
    reaches it, and is itself multiplied by the shadow weights: it is the first vector of a new
    tile. ``clear`` zeroes every weight, shadow and active: START sets it, so that a run's
    results depend only on its program and its SRAMs, never on the weights a previous run left.

    Parameters
    ----------
    rows : int
        R, the number of rows (the length of an input vector). Positive.
    cols : int
        C, the number of columns (the length of an output vector). Positive.
    multiplier : str
        One of :data:`rtl.dsp.MULTIPLIERS` (default "auto": :data:`AUTO_MULTIPLIER`):
        "sb_mac16" is one SB_MAC16 per two neighbouring PEs of a row (a column left over is
        generic), "mult18x18d" one MULT18X18D per PE with the operands in its input registers.
        The timing is the same for all.
    pe_stages : int
        Pipeline stages of each PE, one of :data:`rtl.config.PE_STAGES_CHOICES` (rtl/pe.py):
        2 (the default) to 5, with registers for the multiplier's operands and its product.

    Members
    -------
    a : ``In(stream.Signature(StructLayout({"data": ..., "swap": 1}), always_ready=True))``
        Input vectors, unskewed: ``data`` is ``ArrayLayout(signed(8), R)``, and ``data[r]``
        goes to row ``r``. ``swap`` marks the first vector that uses the weights now in the
        shadow registers.
    w : ``In(stream.Signature(StructLayout({"row": ..., "sel": ...}), always_ready=True))``
        Shadow weight writes: ``row`` (``ArrayLayout(signed(8), C)``) is written into the
        shadow registers of array row ``sel`` (``unsigned(max(1, (R - 1).bit_length()))``), all
        ``C`` columns, at the end of the cycle. ``sel`` must be below R.
    clear : ``In(1)``
        Set in cycle T (with no vector in flight): every shadow weight is 0 from the end of T,
        and a swap mark presented in T + 1 copies those zeros into the active weights.
    y : ``Out(stream.Signature(ArrayLayout(signed(32), C), always_ready=True))``
        Results: ``y.payload[c] = sum(a.data[r] * W[r][c] for r in range(R))``, wrapping at
        32 bits, driven from registers.

    Raises
    ------
    TypeError
        If ``rows`` or ``cols`` is not an ``int``.
    ValueError
        If ``rows`` or ``cols`` is not positive.

    Timing
    ------
    A vector presented on ``a`` in cycle T leaves on ``y`` (``y.valid`` set) in cycle
    ``T + latency``, ``latency =`` :func:`systolic_latency` ``= R + C - 1 + pe_stages`` (the
    input register, then ``isa.array_latency``). Throughput one vector per cycle, without bubbles or
    back-pressure; cycles without ``a.valid`` give cycles without ``y.valid``. ``a`` may come
    straight from a block RAM's output: the array registers it first.

    ``PE[r][c]`` sees (and multiplies) the vector of cycle T in cycle ``T + 1 + r + c``. A vector
    with ``swap`` set, presented in cycle ``T_swap``, switches ``PE[r][c]`` at the end of cycle
    ``T_swap + r + c``, the cycle before it arrives there (the mark runs one cycle ahead of its
    vector, so that no PE multiplexes its weight), copying the shadow weight of that cycle. A
    write to shadow row ``r`` in cycle ``t`` is seen by swaps in cycles after ``t``: to load the
    next tile without disturbing the current one, write row ``r`` in a cycle ``t`` with
    ``T_swap + r + C - 1 <= t < T_next_swap + r``. A ``clear`` in cycle T acts as a swap
    presented in T + 1 behind a zeroed shadow: the first write after it to shadow row ``r`` must
    come in cycle ``T + r + C`` or later.

    Registers outside the PEs: ``R (R + 1) / 2`` int8 input and skew registers, ``R`` valid and
    ``R - 1`` swap bits shared by all rows, ``C (C - 1) / 2`` partial-sum de-skew registers,
    one valid bit and the clear's swap bit.
    """

    def __init__(self, rows, cols, multiplier="auto", pe_stages=2):
        self.multiplier = check_multiplier(multiplier)
        if pe_stages not in PE_STAGES_CHOICES:
            raise ValueError(f"pe_stages must be one of {PE_STAGES_CHOICES}, not {pe_stages!r}")
        self.pe_stages = pe_stages
        for name, value in (("rows", rows), ("cols", cols)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an integer, not {value!r}")
            if value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value}")
        self.rows = rows
        self.cols = cols
        self.latency = systolic_latency(rows, cols, pe_stages)
        a_layout = data.StructLayout({
            "data": data.ArrayLayout(ACT_SHAPE, rows),
            "swap": 1,
        })
        w_layout = shadow_write_layout(rows, cols)
        super().__init__({
            "a": In(stream.Signature(a_layout, always_ready=True)),
            "w": In(stream.Signature(w_layout, always_ready=True)),
            "clear": In(1),
            "y": Out(stream.Signature(data.ArrayLayout(PSUM_SHAPE, cols), always_ready=True)),
        })

    def elaborate(self, platform):
        m = Module()
        rows, cols = self.rows, self.cols

        sum_shape = psum_shape(rows)
        kind = multiplier_kind(self.multiplier, platform, AUTO_MULTIPLIER)
        external = {"generic": 0, "sb_mac16": 2 * (cols // 2), "mult18x18d": cols}[kind]
        pe = [[ProcessingElement(sum_shape, external_product=c < external, stages=self.pe_stages)
               for c in range(cols)]
              for _ in range(rows)]
        for r in range(rows):
            for c in range(cols):
                m.submodules[f"pe_{r}_{c}"] = pe[r][c]
            if kind == "sb_mac16":
                for c in range(0, external, 2):
                    lo, hi = pe[r][c], pe[r][c + 1]
                    lo_p, hi_p = sb_mac16_pair(m, f"mac_{r}_{c}", lo.mul_a, lo.mul_b,
                                               hi.mul_a, hi.mul_b)
                    m.d.comb += [lo.product.eq(lo_p), hi.product.eq(hi_p)]
            elif kind == "mult18x18d":
                for c in range(cols):
                    p = mult18x18d(m, f"mult_{r}_{c}", pe[r][c].mul_a, pe[r][c].mul_b)
                    m.d.comb += pe[r][c].product.eq(p[:16])

        # Input register and skew: row r's activation waits 1 + r cycles. valid and swap are the
        # same for every row, only later, so one delay line each serves all rows. The swap mark
        # of a valid vector enters row r one cycle before the vector does (depth r, not r + 1):
        # the PEs switch weights in the cycle before the tile's first vector reaches them.
        # A clear is followed a cycle later by a swap mark of its own, which copies the cleared
        # shadows into the active weights as it passes.
        clear_swap = Signal()
        m.d.sync += clear_swap.eq(self.clear)
        valid = [self.a.valid]
        swap = [(self.a.valid & self.a.payload.swap) | clear_swap]
        for k in range(1, rows + 1):
            valid.append(Signal(name=f"skew_valid_{k}"))
            m.d.sync += valid[k].eq(valid[k - 1])
        for k in range(1, rows):
            swap.append(Signal(name=f"skew_swap_{k}"))
            m.d.sync += swap[k].eq(swap[k - 1])
        for r in range(rows):
            act = self.a.payload.data[r]
            for k in range(r + 1):
                delayed = Signal(ACT_SHAPE, name=f"skew_{r}_{k}", reset_less=True)
                m.d.sync += delayed.eq(act)
                act = delayed
            m.d.comb += [
                pe[r][0].a_in.valid.eq(valid[r + 1]),
                pe[r][0].a_in.payload.data.eq(act),
                pe[r][0].a_in.payload.swap.eq(swap[r]),
            ]

        for r in range(rows):
            for c in range(1, cols):
                wiring.connect(m, pe[r][c - 1].a_out, pe[r][c].a_in)

        for c in range(cols):
            m.d.comb += pe[0][c].psum_in.eq(0)
            for r in range(1, rows):
                m.d.comb += pe[r][c].psum_in.eq(pe[r - 1][c].psum_out)

        for r in range(rows):
            write = Signal(name=f"w_write_{r}")
            m.d.comb += write.eq(self.w.valid & (self.w.payload.sel == r))
            for c in range(cols):
                m.d.comb += [
                    pe[r][c].clear.eq(self.clear),
                    pe[r][c].w.valid.eq(write),
                    pe[r][c].w.payload.eq(self.w.payload.row[c]),
                ]

        # Output de-skew: column c's sum is ready C - 1 - c cycles before column C - 1's.
        for c in range(cols):
            psum = pe[rows - 1][c].psum_out
            for k in range(1, cols - c):
                delayed = Signal(sum_shape, name=f"deskew_{c}_{k}", reset_less=True)
                m.d.sync += delayed.eq(psum)
                psum = delayed
            m.d.comb += self.y.payload[c].eq(psum)
        # The bottom-right PE sees each vector last; its registered valid bit, delayed by the
        # PE's stages after the first (its operand and product registers), lines up with the
        # de-skewed results.
        y_valid = pe[rows - 1][cols - 1].a_out.valid
        for k in range(1, self.pe_stages):
            delayed = Signal(name=f"y_valid_{k}")
            m.d.sync += delayed.eq(y_valid)
            y_valid = delayed
        m.d.comb += self.y.valid.eq(y_valid)

        return m
