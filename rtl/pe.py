"""The processing element of the weight-stationary systolic array.

One int8 x int8 multiply added to a 32-bit partial sum, with a double-buffered weight: the
*active* weight is used for multiplying while the next tile's weight is written into the
*shadow* register, so that weight loading overlaps computation.
"""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["ACT_SHAPE", "WEIGHT_SHAPE", "PSUM_SHAPE", "ActivationLayout", "ProcessingElement"]

ACT_SHAPE = signed(8)
WEIGHT_SHAPE = signed(8)
PSUM_SHAPE = signed(32)

#: What travels right through a row of PEs with each activation (its valid bit is the stream's).
ActivationLayout = data.StructLayout({"data": ACT_SHAPE, "swap": 1})


class ProcessingElement(wiring.Component):
    """One multiply-accumulate cell with an active and a shadow weight register.

    In each cycle in which ``a_in`` is valid the PE computes
    ``psum_out = psum_in + a_in.data * weight`` (wrapping at 32 bits), where ``weight`` is the
    active weight, or the shadow weight if ``a_in.swap`` is set. A valid activation with ``swap``
    set also copies the shadow weight into the active weight at the end of the cycle, so that
    it and every later activation use the new weight. Invalid activations never swap.

    The shadow weight is written from ``w`` at the end of every cycle in which ``w.valid`` is
    set. A swap in the same cycle still reads the old shadow weight.

    Members
    -------
    a_in : ``In(stream.Signature(ActivationLayout, always_ready=True))``
        The activation (``data``, signed 8 bits) and its ``swap`` bit, from the left neighbour.
    a_out : ``Out(stream.Signature(ActivationLayout, always_ready=True))``
        ``a_in`` delayed by one cycle, for the right neighbour.
    psum_in : ``In(signed(32))``
        Partial sum from the PE above (0 in the top row).
    psum_out : ``Out(signed(32))``
        ``psum_in + a_in.data * weight``, registered, for the PE below. Don't-care after a
        cycle in which ``a_in`` was not valid.
    w : ``In(stream.Signature(signed(8), always_ready=True))``
        Shadow weight write.

    Notes
    -----
    Timing: latency one cycle from ``a_in`` to both ``a_out`` and ``psum_out``; one activation per
    cycle, no back-pressure. ``a_out.valid`` and ``a_out.swap`` reset to 0; the data registers
    and the weights have no reset.
    """

    def __init__(self):
        super().__init__({
            "a_in": In(stream.Signature(ActivationLayout, always_ready=True)),
            "a_out": Out(stream.Signature(ActivationLayout, always_ready=True)),
            "psum_in": In(PSUM_SHAPE),
            "psum_out": Out(PSUM_SHAPE),
            "w": In(stream.Signature(WEIGHT_SHAPE, always_ready=True)),
        })

    def elaborate(self, platform):
        m = Module()

        # Data registers skip reset: their contents only matter when the valid bit beside them
        # is set, and a reset on 41 flip-flops per PE costs logic in every one of R x C cells.
        active = Signal(WEIGHT_SHAPE, reset_less=True)
        shadow = Signal(WEIGHT_SHAPE, reset_less=True)
        act = Signal(ACT_SHAPE, reset_less=True)
        psum = Signal(PSUM_SHAPE, reset_less=True)
        valid = Signal()
        swap = Signal()

        swapping = Signal()
        m.d.comb += swapping.eq(self.a_in.valid & self.a_in.payload.swap)
        # The first vector of a tile must already use the new weight, so the shadow value is
        # selected combinationally rather than waiting for the copy into `active`.
        weight = Mux(swapping, shadow, active)

        m.d.sync += [
            act.eq(self.a_in.payload.data),
            valid.eq(self.a_in.valid),
            swap.eq(self.a_in.payload.swap),
            psum.eq(self.psum_in + self.a_in.payload.data * weight),
        ]
        with m.If(swapping):
            m.d.sync += active.eq(shadow)
        with m.If(self.w.valid):
            m.d.sync += shadow.eq(self.w.payload)

        m.d.comb += [
            self.a_out.payload.data.eq(act),
            self.a_out.payload.swap.eq(swap),
            self.a_out.valid.eq(valid),
            self.psum_out.eq(psum),
        ]
        return m
