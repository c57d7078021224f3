"""Helpers shared by the scripts/bench_*.py benchmarks: shapes, JSON output, tables, plots.

Not a benchmark itself; the scripts import it from their own folder (``python scripts/...``
puts scripts/ on ``sys.path``).
"""

import json
import os
import re
import sys
from pathlib import Path

from rtl.config import shape_name

__all__ = ["add_json_argument", "emit_json", "format_table", "load_json",
           "parse_build_shapes", "parse_ints", "parse_shapes", "pyplot", "rtl_disagreed",
           "rtl_record", "save_figure", "shape_name"]


def parse_build_shapes(text):
    """``"2x4v1,12x12v3,4x4,8x2v1s32"`` -> ``[(2, 4, 1, 1), (12, 12, 3, 1), (4, 4, None, 1),
    (8, 2, 1, 32)]``: array shapes with an optional vector lane count and serial multiply
    cycles (1, DSP multipliers, without ``sK``); ValueError (one line) otherwise."""
    shapes = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*(?:[vV](\d+))?\s*(?:[sS](\d+))?\s*",
                             part)
        if not match:
            raise ValueError(f"a shape is ROWSxCOLS[vLANES][sCYCLES] (e.g. 4x4, 12x12v3 or "
                             f"8x2v1s32), not {part.strip()!r}")
        shapes.append((int(match[1]), int(match[2]), int(match[3]) if match[3] else None,
                       int(match[4]) if match[4] else 1))
    return shapes


def parse_shapes(text):
    """``"1x1,2x2"`` -> ``[(1, 1), (2, 2)]``; ValueError (one line) otherwise."""
    shapes = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", part)
        if not match:
            raise ValueError(f"a shape is ROWSxCOLS (e.g. 4x4), not {part.strip()!r}")
        shapes.append((int(match[1]), int(match[2])))
    return shapes


def parse_ints(text):
    """``"16,32"`` -> ``[16, 32]``; ValueError (one line) otherwise."""
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(f"expected comma-separated integers, not {text!r}") from None
    if any(v < 1 for v in values):
        raise ValueError(f"sizes must be positive, not {text!r}")
    return values


def add_json_argument(parser):
    parser.add_argument("--json", nargs="?", const="-", metavar="FILE",
                        help="write the figures as JSON to FILE (alone: print them on stdout, "
                             "and the table on stderr)")


def emit_json(path, data):
    """Write ``data`` to ``path`` (through a temporary file), or print it if ``path`` is '-'."""
    text = json.dumps(data, indent=2) + "\n"
    if path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    tmp.replace(path)


def load_json(path):
    return json.loads(Path(path).read_text())


def format_table(headers, rows):
    """Text lines of a plain table: numbers right-aligned, text left-aligned."""
    cells = [[str(c) for c in headers]] + [["" if c is None else str(c) for c in r]
                                           for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def numeric(text):
        return bool(re.fullmatch(r"[-+]?[\d.,]+ ?%?[x]?", text))

    lines = []
    for n, row in enumerate(cells):
        parts = [c.rjust(w) if n and numeric(c) else c.ljust(w)
                 for c, w in zip(row, widths, strict=True)]
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display); a one-line error if it is missing."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("matplotlib is needed for --plot: pip install -e '.[bench]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, out_dir, name):
    """Write ``fig`` as ``out_dir/name`` (the folder made if needed), close it, return the path."""
    path = Path(out_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    pyplot().close(fig)
    return path


def rtl_record(compiled, x, simulator):
    """Run ``compiled`` on int8 inputs ``x`` on the golden model and on the RTL: the record of
    the RTL run (measured cycles, whether cycles and outputs equal the golden model's)."""
    import time

    import numpy as np

    from lockstep.runtime import run
    golden = run(compiled, x, backend="golden")
    started = time.perf_counter()
    sim = run(compiled, x, backend="sim", simulator=simulator)
    return {"simulator": simulator, "measured_cycles": sim.measured_cycles[0],
            "cycles_match": sim.measured_cycles == [compiled.predicted_cycles],
            "outputs_match": bool(np.array_equal(sim.outputs, golden.outputs)),
            "wall_seconds": round(time.perf_counter() - started, 1)}


def rtl_disagreed(results, script):
    """Print an error and return True when an RTL run in ``results`` disagreed with the
    golden model (cycles or outputs)."""
    bad = [r for r in results if "rtl" in r
           and not (r["rtl"]["cycles_match"] and r["rtl"]["outputs_match"])]
    if bad:
        print(f"{script}: error: the RTL disagreed with the golden model", file=sys.stderr)
    return bool(bad)
