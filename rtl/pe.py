"""The processing element of the weight-stationary systolic array.

One int8 x int8 multiply added to a partial sum, with a double-buffered weight: the *active*
weight is used for multiplying while the next tile's weight is written into the *shadow*
register, so that weight loading overlaps computation. The product is registered before the
add, so the multiplier (a DSP block on an FPGA) and the adder each have a whole cycle. The
swap mark runs one cycle ahead of the first vector of a tile, so the multiplier's weight
operand comes straight from the active register, with no multiplexer in front of it.

With more stages (``CoreConfig.pe_stages``) the multiplier's operands and its product get
registers of their own, so that a multiplier far from its PE's other registers (an ECP5's DSP
rows spread over the die, all of them in use) can have registers beside it: a long route then
has a cycle to itself instead of sharing one with the multiplier.
"""

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .config import PE_STAGES_CHOICES

__all__ = ["ACT_SHAPE", "WEIGHT_SHAPE", "PRODUCT_SHAPE", "PSUM_SHAPE", "ActivationLayout",
           "ProcessingElement", "psum_shape"]

ACT_SHAPE = signed(8)
WEIGHT_SHAPE = signed(8)
PRODUCT_SHAPE = signed(16)
PSUM_SHAPE = signed(32)   # what leaves the array, and what the accumulators hold


def psum_shape(terms):
    """The narrowest signed shape that holds any sum of ``terms`` int8 x int8 products exactly.

    A column of R PEs adds R products, each in [-16256, 16384], so the sums inside the array
    never wrap and need far fewer than 32 bits (19 for R = 8): a shorter carry chain, fewer
    flip-flops. The array sign-extends them to :data:`PSUM_SHAPE` at the bottom."""
    return signed((16384 * terms).bit_length() + 1)

#: What travels right through a row of PEs: an activation (its valid bit is the stream's), and
#: the swap mark of the activation one cycle behind it.
ActivationLayout = data.StructLayout({"data": ACT_SHAPE, "swap": 1})


def pe_registers(stages):
    """(operand registers, product registers) of a PE of ``stages`` stages: the sum register
    is the last stage, the product's registers come before it and the operands' before them
    (3: one and one, 4: one and two, 5: two and two)."""
    extra = stages - 2
    return (extra + 1) // 2, 1 + extra // 2


class ProcessingElement(wiring.Component):
    """One multiply-accumulate cell with an active and a shadow weight register.

    For each valid ``a_in`` the PE computes ``psum_out = psum_in + a_in.data * active``.
    ``a_in.swap`` set (valid or not) copies the shadow weight into the active weight at the end
    of the cycle. It marks the cycle before the first activation of a new tile, so that this
    activation and every later one use the new weight, and the multiplier's weight operand is a
    register rather than a choice between two.

    The shadow weight is written from ``w`` at the end of every cycle in which ``w.valid`` is
    set, and cleared to 0 at the end of every cycle in which ``clear`` is (over a write). A swap
    in the same cycle still copies the old shadow weight.

    Parameters
    ----------
    psum_shape : signed shape
        Width of the partial sums (:func:`psum_shape` of the PE's row count, in the array).
    external_product : bool
        Leave the multiplier and its register to the caller (a DSP block that serves two PEs,
        say): the PE then has ``mul_a``/``mul_b`` outputs, the operands, and a ``product``
        input that must be ``mul_a * mul_b`` of the previous cycle.
    stages : int
        Pipeline stages from ``a_in`` to ``psum_out``, one of :data:`rtl.config.PE_STAGES_CHOICES`:
        2 (the default) multiplies ``a_in.data`` by the active weight into the product register,
        then adds. 3 multiplies the registered activation (the one ``a_out`` drives) by a
        registered copy of the active weight, so both operands are registers of this PE. 4 adds
        a second product register, so the first one drives nothing but the second. 5 adds a
        second operand register on each side too, so that the weight's drives nothing but the
        multiplier. (The activation's second register has the same input as the right
        neighbour's activation register, so Yosys merges the two: that one register feeds both
        the multiplier and the next PE.)

    Members
    -------
    a_in : ``In(stream.Signature(ActivationLayout, always_ready=True))``
        The activation (``data``, signed 8 bits) and the ``swap`` mark of the next cycle's
        activation, from the left neighbour.
    a_out : ``Out(stream.Signature(ActivationLayout, always_ready=True))``
        ``a_in`` delayed by one cycle, for the right neighbour (the mark stays one cycle ahead).
    psum_in : ``In(psum_shape)``
        Partial sum from the PE above (0 in the top row), for the activation that was on
        ``a_in`` ``stages - 1`` cycles earlier.
    psum_out : ``Out(psum_shape)``
        ``psum_in + product``, registered, for the PE below, where ``product`` is the registered
        product of the activation and its weight. Don't-care for an invalid activation.
    w : ``In(stream.Signature(signed(8), always_ready=True))``
        Shadow weight write.
    clear : ``In(1)``
        Clear the shadow weight (START: a swap mark behind it then clears the active one).
    mul_a, mul_b : ``Out(signed(8))``, only with ``external_product``
        The activation and the weight to multiply in this cycle.
    product : ``In(signed(16))``, only with ``external_product``
        Their product, registered: one cycle later.

    Timing
    ------
    An activation on ``a_in`` in cycle T leaves on ``a_out`` in T + 1, and its partial
    sum on ``psum_out`` in T + ``stages`` (``isa.array_latency`` counts them), which is when
    the PE below, having seen the activation in T + 1, wants it. A swap mark on ``a_in`` in
    cycle T - 1 makes the activation of cycle T the first to use the new weight. One activation
    per cycle, no back-pressure.
    ``a_out.valid`` and ``a_out.swap`` reset to 0; the data registers and the weights have no
    reset.
    """

    def __init__(self, psum_shape=PSUM_SHAPE, external_product=False, stages=2):
        if stages not in PE_STAGES_CHOICES:
            raise ValueError(f"stages must be one of {PE_STAGES_CHOICES}, not {stages!r}")
        self.psum_shape = psum_shape
        self.external_product = external_product
        self.stages = stages
        members = {
            "a_in": In(stream.Signature(ActivationLayout, always_ready=True)),
            "a_out": Out(stream.Signature(ActivationLayout, always_ready=True)),
            "psum_in": In(psum_shape),
            "psum_out": Out(psum_shape),
            "w": In(stream.Signature(WEIGHT_SHAPE, always_ready=True)),
            "clear": In(1),
        }
        if external_product:
            members.update(mul_a=Out(ACT_SHAPE), mul_b=Out(WEIGHT_SHAPE),
                           product=In(PRODUCT_SHAPE))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()

        # Data registers skip reset: their contents only matter when the valid bit beside them
        # is set, and a reset on every data flip-flop costs logic in each of R x C cells.
        active = Signal(WEIGHT_SHAPE, reset_less=True)
        shadow = Signal(WEIGHT_SHAPE, reset_less=True)
        act = Signal(ACT_SHAPE, reset_less=True)
        psum = Signal(self.psum_shape, reset_less=True)
        valid = Signal()
        swap = Signal()

        operand_regs, product_regs = pe_registers(self.stages)
        mul_a, mul_b = self.a_in.payload.data, active
        for k in range(operand_regs):
            # The first activation register is the one that feeds the right neighbour (a
            # separate copy would be merged with it); each weight copy lags the active weight
            # by as many cycles as the activation has waited.
            a_reg = act if k == 0 else Signal(ACT_SHAPE, name=f"mul_a_{k}", reset_less=True)
            w_reg = Signal(WEIGHT_SHAPE, name=f"mul_b_{k}", reset_less=True)
            if k:
                m.d.sync += a_reg.eq(mul_a)
            m.d.sync += w_reg.eq(mul_b)
            mul_a, mul_b = a_reg, w_reg
        if self.external_product:
            m.d.comb += [self.mul_a.eq(mul_a), self.mul_b.eq(mul_b)]
            product = self.product
        else:
            product = Signal(PRODUCT_SHAPE, reset_less=True)
            m.d.sync += product.eq(mul_a * mul_b)
        for k in range(1, product_regs):
            delayed = Signal(PRODUCT_SHAPE, name=f"product_{k}", reset_less=True)
            m.d.sync += delayed.eq(product)
            product = delayed

        m.d.sync += [
            act.eq(self.a_in.payload.data),
            valid.eq(self.a_in.valid),
            swap.eq(self.a_in.payload.swap),
            psum.eq(self.psum_in + product),
        ]
        with m.If(self.a_in.payload.swap):
            m.d.sync += active.eq(shadow)
        with m.If(self.w.valid):
            m.d.sync += shadow.eq(self.w.payload)
        with m.If(self.clear):
            m.d.sync += shadow.eq(0)

        m.d.comb += [
            self.a_out.payload.data.eq(act),
            self.a_out.payload.swap.eq(swap),
            self.a_out.valid.eq(valid),
            self.psum_out.eq(psum),
        ]
        return m
