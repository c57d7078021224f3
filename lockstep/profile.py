"""Where a compiled program's cycles go, from the golden model's timing of it: the sum of
``isa.cost`` per opcode (MATMUL split into its streamed rows and the cycles it waits for a
weight preload longer than its stream), the interlock waits (an instruction waiting for an
earlier one's writes or results), the fetch, HALT and the final drain. The parts add up to the
predicted cycles exactly."""

from rtl import isa
from sim.model import run as golden_run

__all__ = ["OPS", "cycle_breakdown"]

#: The opcodes that take cycles (HALT is counted on its own).
OPS = tuple(op.name for op in isa.Op if op != isa.Op.HALT)


def cycle_breakdown(compiled):
    """{"cycles": {part: cycles}, "opcode_counts": {opcode: instructions}} of ``compiled``."""
    cfg = compiled.cfg
    result = golden_run(compiled.state.copy(), trace=True)
    parts = {"fetch": isa.fetch_cycles(cfg), **dict.fromkeys(OPS, 0), "matmul_rows": 0,
             "preload_wait": 0, "interlock": 0}
    counts = dict.fromkeys(OPS, 0)
    t = isa.fetch_cycles(cfg)
    for pc, start, _ in result.trace:
        instr = isa.decode(int(compiled.state.prog[pc]))
        cost = isa.cost(instr, cfg)
        name = instr.op.name
        parts["interlock"] += start - t
        parts[name] += cost
        counts[name] += 1
        if instr.op == isa.Op.MATMUL:
            parts["matmul_rows"] += instr.m
            parts["preload_wait"] += cost - instr.m
        t = start + cost
    parts["halt"] = 1
    parts["drain"] = result.cycles - t - 1   # waiting for the last writes to land
    total = sum(v for k, v in parts.items() if k not in ("matmul_rows", "preload_wait"))
    if not total == result.cycles == compiled.predicted_cycles:   # pragma: no cover
        raise AssertionError(f"cycle breakdown {total} != {result.cycles} cycles")
    return {"cycles": parts, "opcode_counts": counts}
