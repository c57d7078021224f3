"""The vector unit: requantises int32 accumulators to int8 activations.

Per lane it computes, bit for bit, what :func:`sim.arith.requantize` computes for one element:
bias add (wrapping), gemmlowp ``SaturatingRoundingDoublingHighMul``, ``RoundingDivideByPOT``,
output zero point, clamp. Its 32 x 32 multiply is either four DSP multipliers (a vector per
cycle) or a serial multiplier in logic (a vector per K cycles, no DSP).
"""

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .config import MULT_CYCLES_CHOICES
from .dsp import MULTIPLIERS, check_multiplier, mult18x18d, multiplier_kind
from .isa import vec_unit_latency
from .lutmath import partial_products, reduce_tree

__all__ = ["VectorUnit", "input_layout", "output_layout"]

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def _check_positive_int(name, value):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be a positive integer, not {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value}")


def input_layout(lanes, tag_width):
    """Payload layout of :attr:`VectorUnit.i`."""
    return data.StructLayout({
        "acc": data.ArrayLayout(signed(32), lanes),
        "bias": data.ArrayLayout(signed(32), lanes),
        "mult": data.ArrayLayout(signed(32), lanes),
        "shift": data.ArrayLayout(unsigned(5), lanes),
        "zero_point": signed(8),
        "clamp_min": signed(8),
        "clamp_max": signed(8),
        "tag": unsigned(tag_width),
    })


def output_layout(lanes, tag_width):
    """Payload layout of :attr:`VectorUnit.o`."""
    return data.StructLayout({
        "data": data.ArrayLayout(signed(8), lanes),
        "tag": unsigned(tag_width),
    })


class VectorUnit(wiring.Component):
    """Requantisation pipeline: ``lanes`` int32 accumulators in, ``lanes`` int8 values out.

    For each lane ``j`` (all arithmetic exact, as in :func:`sim.arith.requantize`)::

        x = wrap32(acc[j] + bias[j])
        x = SaturatingRoundingDoublingHighMul(x, mult[j])
        x = RoundingDivideByPOT(x, shift[j])
        data[j] = clamp(x + zero_point, clamp_min, clamp_max)

    The caller guarantees ``clamp_min <= clamp_max``.

    Parameters
    ----------
    lanes : int
        Lanes processed per input (W).
    tag_width : int
        Width of the tag carried from ``i`` to ``o`` unchanged, next to its data.
    mult_cycles : int
        K, cycles per 32 x 32 multiply (``CoreConfig.vec_mult_cycles``): 1 for four DSP
        multipliers per lane, or 2 to 32 (a power of two) for a serial multiplier in logic that
        takes 32 / K multiplier bits per cycle.
    multiplier : str
        With K = 1, how the partial products are made: one of :data:`rtl.dsp.MULTIPLIERS`
        (default "auto": "mult18x18d" on an ECP5, else "generic"; "sb_mac16" is not one of them
        here). "mult18x18d" puts stage 1's results into the MULT18X18Ds' input registers as
        well. The timing is the same.

    Members
    -------
    i : ``In(stream.Signature(input_layout(lanes, tag_width), always_ready=True))``
        One vector to requantise: ``acc``, ``bias``, ``mult`` (W x signed(32)), ``shift``
        (W x unsigned(5)), ``zero_point``, ``clamp_min``, ``clamp_max`` (signed(8)) and ``tag``
        (unsigned(tag_width)). Every field may change from one vector to the next. Always ready:
        an input with ``i.valid`` set is taken in that cycle. With K > 1, valid inputs must be
        at least K cycles apart (the sequencer issues a VEC step every K cycles).
    o : ``Out(stream.Signature(output_layout(lanes, tag_width), always_ready=True))``
        The result: ``data`` (W x signed(8)) and the input's ``tag``. No back-pressure: the
        consumer must take it in the cycle it is valid.

    Timing
    ------
    A vector with ``i.valid`` set in cycle ``t`` appears on ``o`` with ``o.valid`` set in cycle
    ``t + latency`` (``isa.vec_unit_latency(K)``: 6 for K = 1, K + 4 otherwise), for that one
    cycle: the payload registers load every cycle, so ``o.payload`` means nothing while
    ``o.valid`` is low. Throughput is one vector per K cycles. ``o.valid`` and ``o.payload``
    come straight from registers. Reset clears the valid bits only, so vectors in flight during
    reset are dropped.

    The stages with DSP multipliers (K = 1):

    1. ``acc + bias`` (32-bit wrap);
    2. the four 16 x 16 partial products of the 32 x 32 product (one DSP multiplier each, with
       nothing but a register after it), and the saturation test;
    3. their sum, the 64-bit signed product;
    4. the product's rounded high half (SRDHM), plus the rounding offset of the shift;
    5. the arithmetic shift, saturated to nine bits;
    6. the zero point and the clamp, into the output register.

    With a serial multiplier, stage 1 holds its registers for the K cycles that follow, in
    which the product is built 32 / K multiplier bits at a time (shift and add, the last
    multiplier digit signed); the K-th of them writes the 64-bit product (stage 3 above), and
    stages 4 to 6 follow.
    """

    def __init__(self, lanes, tag_width, mult_cycles=1, multiplier="auto", lut=False):
        _check_positive_int("lanes", lanes)
        _check_positive_int("tag_width", tag_width)
        if mult_cycles not in MULT_CYCLES_CHOICES or isinstance(mult_cycles, bool):
            raise ValueError(f"mult_cycles must be one of "
                             f"{', '.join(map(str, MULT_CYCLES_CHOICES))}, not {mult_cycles!r}")
        self.multiplier = check_multiplier(
            multiplier, [kind for kind in MULTIPLIERS if kind != "sb_mac16"])
        self.lanes = lanes
        self.tag_width = tag_width
        self.mult_cycles = mult_cycles
        self.lut = lut
        self.latency = vec_unit_latency(mult_cycles, lut)
        # Everything besides the data that a later stage still needs travels with the data, so
        # that back-to-back vectors may each bring their own parameters.
        self._side = data.StructLayout({
            "shift": data.ArrayLayout(unsigned(5), lanes),
            "zero_point": signed(8),
            "clamp_min": signed(8),
            "clamp_max": signed(8),
            "tag": unsigned(tag_width),
        })
        super().__init__({
            "i": In(stream.Signature(input_layout(lanes, tag_width), always_ready=True)),
            "o": Out(stream.Signature(output_layout(lanes, tag_width), always_ready=True)),
        })

    def elaborate(self, platform):
        m = Module()

        # The full product of each lane, the input of stage 4 (a serial unit adds SRDHM's 2**30).
        full_product = Signal(data.StructLayout({
            "prod": data.ArrayLayout(signed(64), self.lanes),
            "saturate": data.ArrayLayout(unsigned(1), self.lanes),
            "side": self._side,
        }), reset_less=True)
        if self.mult_cycles == 1 and self.lut:
            full_product_valid = self._lut_product(m, full_product)
        elif self.mult_cycles == 1:
            # (An iCE40's SB_MAC16s serve the array; its vector lanes multiply serially.)
            kind = multiplier_kind(self.multiplier, platform, {"ecp5": "mult18x18d"})
            full_product_valid = self._dsp_product(m, full_product, kind == "mult18x18d")
        else:
            full_product_valid = self._serial_product(m, full_product)
        # Stages 4 to 6 follow full_product: valid bits for them, the only other bits with a
        # reset.
        post = Signal(3)
        m.d.sync += post.eq(Cat(full_product_valid, post[:-1]))
        m.d.comb += [
            self.o.valid.eq(post[-1]),
            self.o.payload.eq(self._round_shift_clamp(m, full_product)),
        ]
        return m

    def _load_side(self, dst, src):
        """Statements that copy the side fields from ``src`` (the input payload or a side
        register) into the side register ``dst``."""
        return [getattr(dst, name).eq(getattr(src, name)) for name, _ in self._side]

    def _dsp_product(self, m, full_product, instances):
        """Stages 1 to 3 with four DSP multipliers per lane: ``full_product`` three cycles after
        the input. ``instances``: ECP5 MULT18X18Ds whose input registers load stage 1's results
        (rather than inferred multipliers behind the s1 registers). Returns the valid bit of
        ``full_product``."""
        valid = Signal(3)
        m.d.sync += valid.eq(Cat(self.i.valid, valid[:2]))
        s1 = Signal(data.StructLayout({
            "x": data.ArrayLayout(signed(32), self.lanes),
            "mult": data.ArrayLayout(signed(32), self.lanes),
            "side": self._side,
        }), reset_less=True)
        partials = Signal(data.StructLayout({
            "hh": data.ArrayLayout(signed(32), self.lanes),
            "hl": data.ArrayLayout(signed(33), self.lanes),
            "lh": data.ArrayLayout(signed(33), self.lanes),
            "ll": data.ArrayLayout(unsigned(32), self.lanes),
            "saturate": data.ArrayLayout(unsigned(1), self.lanes),
            "side": self._side,
        }), reset_less=True)

        p = self.i.payload
        # Data registers load every cycle, valid or not: gating them would only add enables.
        m.d.sync += self._load_side(s1.side, p)
        m.d.sync += [partials.side.eq(s1.side), full_product.side.eq(partials.side)]

        for j in range(self.lanes):
            # Stage 1: the 33-bit sum is truncated to 32 bits, i.e. wrapped.
            x = (p.acc[j] + p.bias[j])[:32]
            m.d.sync += [s1.x[j].eq(x), s1.mult[j].eq(p.mult[j])]

            # Stage 2: x * mult = hh * 2**32 + (hl + lh) * 2**16 + ll, with signed high halves
            # and unsigned low ones; each partial product fits one 18 x 18 DSP multiplier.
            # gemmlowp's own overflow test, off the multipliers' path, costs nothing.
            m.d.sync += partials.saturate[j].eq((s1.x[j] == INT32_MIN)
                                                & (s1.mult[j] == INT32_MIN))
            if instances:
                xh, xl = x[16:].as_signed(), x[:16]
                mh, ml = p.mult[j][16:].as_signed(), p.mult[j][:16]
                products = [mult18x18d(m, f"{name}{j}", a, b)[:width]
                            for name, a, b, width in (("hh", xh, mh, 32), ("hl", xh, ml, 33),
                                                      ("lh", xl, mh, 33), ("ll", xl, ml, 32))]
            else:
                xh, xl = s1.x[j][16:].as_signed(), s1.x[j][:16]
                mh, ml = s1.mult[j][16:].as_signed(), s1.mult[j][:16]
                products = [xh * mh, xh * ml, xl * mh, xl * ml]
            m.d.sync += [partials.hh[j].eq(products[0]), partials.hl[j].eq(products[1]),
                         partials.lh[j].eq(products[2]), partials.ll[j].eq(products[3])]

            # Stage 3: the full product (|x * mult| <= 2**62 fits signed(64)).
            m.d.sync += [
                full_product.prod[j].eq((partials.hh[j] << 32)
                              + ((partials.hl[j] + partials.lh[j]) << 16)
                              + partials.ll[j]),
                full_product.saturate[j].eq(partials.saturate[j]),
            ]
        return valid[2]

    def _lut_product(self, m, full_product):
        """Stage 1, then the 64-bit product as an adder tree in logic (32 partial products,
        one level of adds a cycle: five): full_product six cycles after the input."""
        levels = 5
        valid = Signal(1 + levels)
        m.d.sync += valid.eq(Cat(self.i.valid, valid[:-1]))
        p = self.i.payload
        x = [Signal(signed(32), name=f"lx{j}", reset_less=True) for j in range(self.lanes)]
        mult = [Signal(signed(32), name=f"lm{j}", reset_less=True) for j in range(self.lanes)]
        side = Signal(self._side, reset_less=True)
        m.d.sync += self._load_side(side, p)
        for j in range(self.lanes):
            m.d.sync += [x[j].eq((p.acc[j] + p.bias[j])[:32]), mult[j].eq(p.mult[j])]
        for j in range(self.lanes):
            product, used = reduce_tree(m, partial_products(x[j], mult[j]),
                                        lambda a, b: a + b, signed(64), f"lp{j}")
            assert used == levels
            m.d.comb += full_product.prod[j].eq(product)
            saturate = (x[j] == INT32_MIN) & (mult[j] == INT32_MIN)
            for stage in range(levels):
                reg = Signal(name=f"lsat{j}_{stage}", reset_less=True)
                m.d.sync += reg.eq(saturate)
                saturate = reg
            m.d.comb += full_product.saturate[j].eq(saturate)
        for stage in range(levels):
            reg = Signal(self._side, name=f"lside{stage}", reset_less=True)
            m.d.sync += reg.eq(side)
            side = reg
        m.d.comb += full_product.side.eq(side)
        return valid[-1]

    def _serial_product(self, m, full_product):
        """Stage 1 and a K-cycle shift-and-add multiply per lane, in logic: ``full_product``
        K + 1 cycles after the input. Returns the valid bit of ``full_product``."""
        k = self.mult_cycles
        b = 32 // k                  # multiplier bits per cycle
        p = self.i.payload

        # Which multiply cycle it is: a counter rather than a K-bit valid shift register.
        running = Signal()           # reset: a multiply in flight is dropped
        count = Signal(range(k))
        last = Signal()              # the K-th multiply cycle: the top digit, which is signed
        full_product_valid = Signal()
        # last = running & (count == K - 1), decided a cycle ahead (it drives the adders).
        m.d.sync += [count.eq(count + 1), full_product_valid.eq(last),
                     last.eq(~self.i.valid & running & (count == k - 2))]
        with m.If(self.i.valid):
            m.d.sync += [running.eq(1), count.eq(0)]
        with m.Elif(last):
            m.d.sync += running.eq(0)

        # Stage 1 loads only with a valid input and holds through the multiply. The side fields
        # move on with the product, and stay there for the K cycles (K >= 4) until the next one:
        # stages 4 to 6 read them there instead of from copies of their own.
        side = Signal(self._side, reset_less=True)
        with m.If(self.i.valid):
            m.d.sync += self._load_side(side, p)
        with m.If(last):
            m.d.sync += full_product.side.eq(side)

        for j in range(self.lanes):
            x = Signal(signed(32), name=f"x{j}", reset_less=True)
            digits = Signal(32, name=f"digits{j}", reset_less=True)   # mult, b bits shifted out
            mult_min = Signal(name=f"mult_min{j}", reset_less=True)
            # After i multiply cycles, x * (the i * b low bits of mult) + 2**30
            # = high * 2**(i*b) + low,
            # low's bits entering at the top of a (32 - b)-bit shift register: after K - 1
            # cycles it holds the product's low 32 - b bits.
            high = Signal(signed(33), name=f"prod_high{j}", reset_less=True)
            low = Signal(32 - b, name=f"prod_low{j}", reset_less=True)

            digit = digits[:b]
            terms = [Mux(digit[i], x << i, 0) for i in range(b - 1)]
            top = x << (b - 1)
            # The top bit of the last digit weighs -2**31: subtract, as ~top + 1.
            terms.append(Mux(digit[b - 1], Mux(last, ~top, top), 0))
            total = high + (digit[b - 1] & last)
            for term in terms:
                total = total + term
            step = Signal(signed(34 + b), name=f"prod_step{j}")
            m.d.comb += step.eq(total)

            with m.If(self.i.valid):
                # The 33-bit sum is truncated by the 32-bit register, i.e. wrapped.
                # high starts at SRDHM's nudge, 2**30: the product comes out nudged, and
                # stage 4 needs no add of its own.
                m.d.sync += [x.eq(p.acc[j] + p.bias[j]), digits.eq(p.mult[j]),
                             mult_min.eq(p.mult[j] == INT32_MIN), high.eq(1 << 30)]
            with m.Else():
                m.d.sync += [digits.eq(digits >> b), high.eq(step >> b)]
            m.d.sync += [
                low.eq(Cat(low[b:], step[:b])),
                # Only read after the K-th multiply cycle, like the saturation test.
                full_product.prod[j].eq(Cat(low, step)[:64].as_signed()),
                full_product.saturate[j].eq((x == INT32_MIN) & mult_min),
            ]
        return full_product_valid

    def _round_shift_clamp(self, m, full_product):
        """Stages 4 to 6 from the product register ``full_product``; returns the output: the
        stage 6 register, and the tag from a register (its own, or the serial unit's
        ``full_product``)."""
        s3 = Signal(data.StructLayout({
            "y": data.ArrayLayout(signed(33), self.lanes),
            "side": self._side,
        }), reset_less=True)
        s4 = Signal(output_layout(self.lanes, self.tag_width), reset_less=True)
        if self.mult_cycles == 1:
            # The shifted values' stage carries what the last stage still needs.
            s5_side = Signal(self._side, reset_less=True)
            m.d.sync += [s3.side.eq(full_product.side), s5_side.eq(s3.side),
                         s4.tag.eq(s5_side.tag)]
            out = s4
        else:
            # full_product.side holds until the next product, K >= 4 cycles on: no copies needed.
            m.d.comb += s3.side.eq(full_product.side)
            s5_side = full_product.side
            out = Signal.like(s4)
            m.d.comb += [out.data.eq(s4.data), out.tag.eq(full_product.side.tag)]

        for j in range(self.lanes):
            # Stage 4, SRDHM: gemmlowp computes (ab + nudge) / 2**31 truncating toward zero, with
            # nudge = 2**30 for ab >= 0 and 1 - 2**30 otherwise. For ab >= 0 that is
            # floor((ab + 2**30) / 2**31). For ab < 0 the numerator is negative, and truncation is
            # ceil(n / d) = floor((n + d - 1) / d) = floor((ab + 1 - 2**30 + 2**31 - 1) / 2**31)
            # = floor((ab + 2**30) / 2**31) again. So one add and an arithmetic shift are exact
            # for both signs. Unless saturating, the result fits int32: its low 32 bits are it.
            high = Signal(signed(32), name=f"high{j}")
            # (A serial unit's product register already holds ab + 2**30.)
            nudged = full_product.prod[j]
            if self.mult_cycles == 1:
                nudged = nudged + (1 << 30)
            m.d.comb += high.eq(nudged >> 31)
            x = Mux(full_product.saturate[j], INT32_MAX, high)
            x_negative = ~full_product.saturate[j] & high[31]

            # Still stage 4: the rounding of RoundingDivideByPOT, moved ahead of its shift so that
            # stage 5 is only a shift (one lane alone on an LFE5U-85F, when the shift, the add and
            # the clamp were one stage: 45-54 MHz with the remainder compare in it, 75-78 MHz
            # without). gemmlowp adds 1
            # to floor(x / 2**s) when x mod 2**s > 2**(s-1) - 1 + (x < 0). For s >= 1 that is
            # floor((x + c) / 2**s) with c = 2**(s-1) - (x < 0), as 0 <= c < 2**s; for s = 0 it
            # is x, i.e. c = 0. x + c lies in [-2**31, 2**31 + 2**30): 33 bits.
            shift = full_product.side.shift[j]
            half = Signal(unsigned(31), name=f"half{j}")   # 2**(s-1), or 0 for s = 0
            m.d.comb += half.eq((1 << shift) >> 1)
            m.d.sync += s3.y[j].eq(x + half - (x_negative & (shift != 0)))

            # Stage 5: the shift (arithmetic: y is signed). Only nine bits of the shifted value v
            # matter: the clamp bounds and the zero point are int8, so any v above 255 ends as
            # clamp_max and any v below -256 as clamp_min, exactly as 255 and -256 do. So v is
            # saturated to signed(9): a nine-bit window of the shifter, and a test that no bit of
            # y at or above s + 8 differs from its sign. Stage 6's add and compares are then ten
            # bits wide instead of 34.
            y, shift = s3.y[j], s3.side.shift[j]
            sign = y[-1]
            overflow = Const(0, 1)
            for i in range(8, len(y) - 1):
                overflow = overflow | ((y[i] ^ sign) & (shift <= i - 8))
            window = Signal(signed(9), name=f"window{j}")
            m.d.comb += window.eq((y >> shift)[:9])
            # The shift has a stage of its own (its register shares the shift's logic cells),
            # the add and the clamp the next: together, 13.8 ns on an LFE5U-85F (4x4 core).
            v = Signal(signed(9), name=f"shifted{j}", reset_less=True)
            m.d.sync += v.eq(Mux(overflow, Mux(sign, -256, 255), window))

            # Stage 6: the zero point and the clamp.
            biased = Signal(signed(10), name=f"biased{j}")
            m.d.comb += biased.eq(v + s5_side.zero_point)
            lo, hi = s5_side.clamp_min, s5_side.clamp_max
            # Both compares look at biased, not one at the other's result: they run in parallel.
            m.d.sync += s4.data[j].eq(Mux(biased < lo, lo, Mux(biased > hi, hi, biased)))
        return out
