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


#: What a layer's cycles are spent on, in the order the table shows them.
PARTS = ("stream", "weight_load", "requant", "window", "fill", "setup", "interlock", "drain")
#: The parts that can limit a layer (setup and drain are fixed overheads).
LIMITS = ("stream", "weight_load", "requant", "window", "fill", "interlock")


def _part(instr):
    """The part an instruction's cost belongs to, and its streamed MATMUL rows."""
    op = instr.op
    if op == isa.Op.MATMUL:
        return "stream", instr.m
    return {isa.Op.LOADW: "weight_load", isa.Op.VEC: "requant", isa.Op.POOL: "window",
            isa.Op.FILL: "fill"}.get(op, "setup"), 0


def timeline(compiled):
    """The golden model's schedule of ``compiled``: one (pc, layer index, start, cost, wait,
    instruction) per instruction, ``wait`` being the interlock cycles before it, and the
    program's total cycles."""
    result = golden_run(compiled.state.copy(), trace=True)
    firsts = [layer["first_pc"] for layer in compiled.layers]
    rows, t, index = [], isa.fetch_cycles(compiled.cfg), 0
    for pc, start, _ in result.trace:
        while index + 1 < len(firsts) and firsts[index + 1] <= pc:
            index += 1
        instr = isa.decode(int(compiled.state.prog[pc]))
        cost = isa.cost(instr, compiled.cfg)
        rows.append((pc, index, start, cost, start - t, instr))
        t = start + cost
    return rows, result.cycles


def layer_profile(compiled):
    """Per layer of ``compiled``: its figures (name, MACs, cycles, utilisation, instructions,
    the SRAM it takes) and where its cycles go (:data:`PARTS`), the part that limits it, and
    the program's fetch and total. A layer's cycles run from its first instruction's start to
    the next layer's; an interlock counts in the layer whose instruction waits (the first
    instruction of a layer may wait for the previous layer's writes), the last layer's also
    the HALT and the final drain. The figures add up to the predicted cycles exactly."""
    cfg = compiled.cfg
    rows, total = timeline(compiled)
    layers = [dict(layer, parts=dict.fromkeys(PARTS, 0)) for layer in compiled.layers]
    for _, index, _, cost, wait, instr in rows:
        parts = layers[index]["parts"]
        part, streamed = _part(instr)
        parts["interlock"] += wait
        if part == "stream":    # a preload longer than the stream waits for the loader
            parts["stream"] += streamed
            parts["weight_load"] += cost - streamed
        else:
            parts[part] += cost
    if rows:
        _, index, start, cost, _, _ = rows[-1]
        layers[index]["parts"]["drain"] += total - start - cost    # HALT: the last writes land
    # The per-layer cycles come from the compiler; each layer's parts must add up to them.
    for layer in layers:
        if sum(layer["parts"].values()) != layer["cycles"]:   # pragma: no cover - a bug
            raise AssertionError(f"{layer['name']}: parts {layer['parts']} != "
                                 f"{layer['cycles']} cycles")
        busy = {k: layer["parts"][k] for k in LIMITS}
        layer["limit"] = max(busy, key=busy.get) if layer["cycles"] else "-"
        layer["utilization"] = (layer["macs"] / (layer["cycles"] * cfg.macs_per_cycle)
                                if layer["cycles"] else 0.0)
    fetch = isa.fetch_cycles(cfg)
    if fetch + sum(layer["cycles"] for layer in layers) != total:   # pragma: no cover
        raise AssertionError("the layers' cycles do not add up to the program's")
    return {"fetch": fetch, "cycles": total, "macs": sum(layer["macs"] for layer in layers),
            "layers": layers}
