"""Verilator line and toggle coverage of the gateware, mapped back to rtl/'s Python lines.

    python scripts/coverage_report.py build/coverage/data [--out build/coverage/report.txt]

Reads every ``*.dat`` that the Verilator runs of a coverage build left (sim/runner.py,
``LOCKSTEP_COVERAGE``; scripts/coverage.sh runs the tests that way), maps each coverage point
to the Python line that made it (Amaranth's ``src`` attribute in front of the Verilog it is in:
a signal's declaration for a toggle, the ``m.If``/``m.Switch`` of a branch for a line), and
sums over all runs and core configurations: a Python line is covered if any of its points was
hit in any run. Prints a table per rtl/ file and the lines and signals never covered.
"""

import argparse
import collections
import re
import sys
from pathlib import Path

SRC = re.compile(r'\(\*.*src = "([^"]+)".*\*\)')
RTL = re.compile(r"(rtl/[\w/]+\.py):(\d+)")


def parse_dat(path):
    """[(fields, count)] of one coverage.dat (SystemC::Coverage-3)."""
    points = []
    with open(path, encoding="latin-1") as f:
        for line in f:
            if not line.startswith("C '"):
                continue
            body, count = line[3:].rstrip().rsplit("' ", 1)
            fields = dict(kv.split("\x02", 1) for kv in body.split("\x01")[1:] if "\x02" in kv)
            points.append((fields, int(count)))
    return points


class SourceMap:
    """Verilog line -> the rtl/ Python line of the nearest ``src`` attribute above it."""

    def __init__(self):
        self.maps = {}

    def lookup(self, verilog, line):
        if verilog not in self.maps:
            current, table = None, [None]
            for text in Path(verilog).read_text().splitlines():
                match = SRC.search(text)
                if match:
                    found = RTL.search(match.group(1))
                    current = (found.group(1), int(found.group(2))) if found else None
                table.append(current)
            self.maps[verilog] = table
        table = self.maps[verilog]
        return table[line] if line < len(table) else None


def collect(files):
    """{kind: {python location: [hit points, points]}} and {python location: signal names never
    toggled}, summed over ``files``."""
    sources = SourceMap()
    # A point is the same point in every run of one design: sum its counts first.
    counts = collections.Counter()
    for path in files:
        for fields, count in parse_dat(path):
            kind = fields.get("page", "").split("/")[0]
            key = (kind, fields["f"], int(fields["l"]), fields.get("n"), fields.get("o"),
                   fields.get("h"))
            counts[key] += count
    table = {"v_line": collections.defaultdict(lambda: [0, 0]),
             "v_branch": collections.defaultdict(lambda: [0, 0]),
             "v_toggle": collections.defaultdict(lambda: [0, 0])}
    stuck = collections.defaultdict(set)
    for (kind, verilog, line, _, comment, _), count in counts.items():
        if kind not in table:
            continue
        where = sources.lookup(verilog, line)
        if where is None:
            continue
        entry = table[kind][where]
        entry[1] += 1
        entry[0] += count > 0
        if kind == "v_toggle" and count == 0 and comment:
            stuck[where].add(comment.split("[")[0].split(":")[0])
    return table, stuck


def report(table, stuck, repo):
    lines = []
    per_file = collections.defaultdict(lambda: collections.Counter())
    for kind, entries in table.items():
        for (file, _), (hit, total) in entries.items():
            per_file[file][kind + "_locations"] += 1
            per_file[file][kind + "_covered"] += hit > 0
            per_file[file][kind + "_points"] += total
            per_file[file][kind + "_hit"] += hit
    lines.append(f"{'file':<22} {'lines (covered/with points)':>28} {'branches':>12} "
                 f"{'toggle bits':>16}")
    for file in sorted(per_file):
        c = per_file[file]
        lines.append(f"{file:<22} {c['v_line_covered']:>13}/{c['v_line_locations']:<14} "
                     f"{c['v_branch_hit']:>5}/{c['v_branch_points']:<6} "
                     f"{c['v_toggle_hit']:>7}/{c['v_toggle_points']:<8}")
    totals = {k: sum(c[k] for c in per_file.values()) for k in
              ("v_line_covered", "v_line_locations", "v_branch_hit", "v_branch_points",
               "v_toggle_hit", "v_toggle_points")}
    lines.append(f"{'total':<22} {totals['v_line_covered']:>13}/{totals['v_line_locations']:<14} "
                 f"{totals['v_branch_hit']:>5}/{totals['v_branch_points']:<6} "
                 f"{totals['v_toggle_hit']:>7}/{totals['v_toggle_points']:<8}")

    def source(file, line):
        try:
            return (repo / file).read_text().splitlines()[line - 1].strip()
        except (OSError, IndexError):
            return ""

    lines.append("\nPython lines whose Verilog was never executed (line coverage):")
    never = sorted(w for w, (hit, _) in table["v_line"].items() if hit == 0)
    lines += [f"  {f}:{n}: {source(f, n)}" for f, n in never] or ["  none"]
    lines.append("\nBranches never taken, by the Python line of their m.If / m.Switch:")
    partial = sorted(w for w, (hit, total) in table["v_branch"].items() if hit < total)
    lines += [f"  {f}:{n}: {table['v_branch'][f, n][0]}/{table['v_branch'][f, n][1]} taken: "
              f"{source(f, n)}" for f, n in partial] or ["  none"]
    lines.append("\nSignals with a bit that never toggled, by the Python line that made them:")
    for (f, n) in sorted(stuck):
        names = ", ".join(sorted(stuck[f, n])[:6]) + (" ..." if len(stuck[f, n]) > 6 else "")
        lines.append(f"  {f}:{n}: {names}")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="folder of coverage .dat files")
    parser.add_argument("--out", type=Path, help="also write the report to this file")
    args = parser.parse_args()
    files = sorted(args.data.glob("*.dat"))
    if not files:
        print(f"no .dat files in {args.data}: run scripts/coverage.sh", file=sys.stderr)
        return 2
    table, stuck = collect(files)
    text = (f"Verilator coverage of rtl/, {len(files)} runs ({args.data})\n\n"
            + report(table, stuck, Path(__file__).resolve().parent.parent))
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
