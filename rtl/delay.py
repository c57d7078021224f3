"""Delay lines and small arithmetic helpers shared by the core's blocks."""

from amaranth import Cat, Const, Mux, Signal, Value, unsigned
from amaranth.lib.memory import Memory

__all__ = ["delay", "ram_delay", "RING_DEPTH", "times", "row_slot", "below", "padded"]


def delay(m, value, cycles, name, reset_less=False):
    """``value`` delayed by ``cycles`` registers of the sync domain (reset to ``value``'s init,
    so delayed valid bits come out of reset low; data needs no reset: ``reset_less``)."""
    for stage in range(cycles):
        reg = Signal.like(value, name=f"{name}_d{stage + 1}", reset_less=reset_less)
        m.d.sync += reg.eq(value)
        value = reg
    return value


#: Slots of a block-RAM delay line: one iCE40 block RAM of 16-bit words, far more than any
#: array's latency.
RING_DEPTH = 256


def ram_delay(m, value, cycles, name):
    """``value`` delayed by ``cycles``, like :func:`delay`, but through a ring of block RAM
    (written every cycle, read ``cycles - 2`` slots behind, the read data registered) rather than
    ``cycles`` registers: flip-flops are what a UP5K runs out of. The output is 0 until
    ``cycles`` cycles after reset, so that stale slots never look like valid entries."""
    if cycles < 4:
        return delay(m, value, cycles, name)
    assert cycles <= RING_DEPTH
    ring = Memory(shape=unsigned(len(value)), depth=RING_DEPTH, init=[])
    m.submodules[f"{name}_ring"] = ring
    wr, rd = ring.write_port(), ring.read_port()
    slot = Signal(range(RING_DEPTH), name=f"{name}_slot")
    primed = Signal(name=f"{name}_primed")
    out = Signal(len(value), name=f"{name}_out", reset_less=True)
    m.d.sync += [slot.eq(slot + 1), out.eq(rd.data)]
    with m.If(slot == cycles - 1):
        m.d.sync += primed.eq(1)
    m.d.comb += [
        wr.addr.eq(slot), wr.data.eq(value), wr.en.eq(1),
        rd.addr.eq(slot - (cycles - 2)),
    ]
    return Mux(primed, out, 0)


def times(value, factor):
    """``value * factor`` for a constant ``factor``, as shifts and adds (a ``*`` could be given
    a DSP multiplier, and the array needs every one)."""
    terms = [value << i for i in range(factor.bit_length()) if factor >> i & 1]
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def row_slot(row, slot, slots):
    """``row * slots + slot`` for a ``slot`` below the constant ``slots``: a concatenation when
    ``slots`` is a power of two (no adder between a register and a block RAM's address)."""
    if slots & (slots - 1) == 0:
        k = slots.bit_length() - 1
        slot = Value.cast(slot)
        low = slot[:k] if len(slot) >= k else Cat(slot, Const(0, k - len(slot)))
        return Cat(low, row)
    return times(row, slots) + slot


def below(value, bound):
    """``value < bound`` for a constant ``bound``: when ``bound`` is a power of two, a test that
    the bits from log2(bound) up are zero (Yosys maps a compare to a carry chain either way)."""
    if bound & (bound - 1) == 0:
        k = bound.bit_length() - 1
        return ~value[k:].any() if len(value) > k else Const(1, 1)
    return value < bound


def padded(value, width):
    """``value`` zero-extended to a multiple of ``width`` bits, for word_select."""
    pad = -len(value) % width
    return Cat(value, Const(0, pad)) if pad else value
