"""A drawing of which unit of the core is busy in which cycle of a compiled program, from the
golden model's schedule (``lockstep profile --timeline FILE``; .png or .svg, with matplotlib).

Rows, top to bottom: the array's stream (MATMUL rows entering it), the weight loader (LOADW and
a MATMUL's preload, ``isa.load_busy`` cycles each), the vector unit (VEC), the window unit
(POOL), FILL, the other instructions (SETQ, SETP, SETW, WAIT) and the stalls (an instruction
waiting for an earlier one's writes). Dashed lines mark where each layer starts.
"""

from rtl import isa

from .profile import timeline

__all__ = ["draw_timeline", "UNITS"]

UNITS = ("array stream", "weight loader", "vector unit", "window unit", "fill", "setup", "stall")
COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:grey",
           "tab:red")


def busy_intervals(compiled):
    """{unit: [(start, length), ...]} of ``compiled``'s schedule, and its total cycles."""
    rows, total = timeline(compiled)
    load = isa.load_busy(compiled.cfg)
    spans = {unit: [] for unit in UNITS}
    for _, _, start, cost, wait, instr in rows:
        if wait:
            spans["stall"].append((start - wait, wait))
        op = instr.op
        if op == isa.Op.MATMUL:
            spans["array stream"].append((start, instr.m))
            if instr.preload:
                spans["weight loader"].append((start, load))
        elif op == isa.Op.LOADW:
            spans["weight loader"].append((start, load))
        else:
            unit = {isa.Op.VEC: "vector unit", isa.Op.POOL: "window unit",
                    isa.Op.FILL: "fill"}.get(op, "setup")
            spans[unit].append((start, cost))
    return spans, total


def draw_timeline(compiled, path, title=None):
    """Write the timeline of ``compiled`` to ``path`` (its suffix picks the format)."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("drawing a timeline needs matplotlib: pip install -e '.[bench]'") \
            from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    spans, total = busy_intervals(compiled)
    fig, ax = plt.subplots(figsize=(12, 3.6))
    for i, (unit, colour) in enumerate(zip(UNITS, COLOURS, strict=True)):
        ax.broken_barh(spans[unit], (len(UNITS) - 1 - i - 0.4, 0.8), facecolors=colour)
    starts = _layer_starts(compiled)
    for name, start in starts:
        ax.axvline(start, color="black", linestyle="--", linewidth=0.6)
        ax.text(start, len(UNITS) - 0.4, " " + name.split(" ")[0], fontsize=7, va="bottom",
                rotation=30 if len(starts) > 8 else 0)
    ax.set_yticks(range(len(UNITS)), labels=list(reversed(UNITS)))
    ax.set_xlim(0, total)
    ax.set_ylim(-0.6, len(UNITS) + (1.2 if len(starts) > 8 else 0.4))
    ax.set_xlabel("cycle")
    ax.set_title(title or f"{total:,} cycles on a {compiled.cfg.rows}x{compiled.cfg.cols} core",
                 fontsize=10, pad=18)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _layer_starts(compiled):
    """(layer name, start cycle) of each layer with instructions."""
    rows, _ = timeline(compiled)
    first = {}
    for _, index, start, _, wait, _ in rows:
        first.setdefault(index, start - wait)
    return [(compiled.layers[i]["name"], start) for i, start in sorted(first.items())]
