"""Arithmetic built from logic rather than DSP blocks: products as sums of shifted partial
products, and pipelined reduction trees.

An Amaranth ``*`` becomes a DSP multiplier on an FPGA that has them (Yosys maps every ``$mul``
of more than a few bits to one), and the array needs every DSP of the boards' parts: the
window unit's multipliers are written as the adds they are made of.
"""

from amaranth import Mux, Signal

__all__ = ["partial_products", "reduce_tree"]


def partial_products(a, b):
    """The terms whose sum is ``a * b`` for a signed ``a`` and a signed ``b``: one term per bit
    of ``b`` (``a << i`` where the bit is set, the top bit's negated), as wide as the
    product."""
    a = a.as_signed()
    terms = []
    for i in range(len(b)):
        term = a << i
        terms.append(Mux(b[i], -term if i == len(b) - 1 else term, 0))
    return terms


def reduce_tree(m, terms, combine, shape, name, levels_per_stage=1, stages=None):
    """Combine ``terms`` pairwise (``combine(a, b)``) into one value of ``shape``, registering
    after every ``levels_per_stage`` levels; with ``stages``, pad with registers to exactly that
    many. Returns (value, registers used)."""
    level = list(terms)
    used = 0
    depth = 0
    while len(level) > 1:
        nxt = [combine(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        depth += 1
        level = nxt
        if depth % levels_per_stage == 0 or len(level) == 1:
            regs = []
            for j, value in enumerate(level):
                reg = Signal(shape, name=f"{name}_s{used}_{j}", reset_less=True)
                m.d.sync += reg.eq(value)
                regs.append(reg)
            level = regs
            used += 1
    value = level[0]
    if stages is not None:
        assert used <= stages, (name, used, stages)
        while used < stages:
            reg = Signal(shape, name=f"{name}_s{used}", reset_less=True)
            m.d.sync += reg.eq(value)
            value = reg
            used += 1
    return value, used

