"""Are the interlock constants of rtl/isa.py what the hardware needs, or padding?

For each constant, a copy of the repository gets an rtl/isa.py in which the wait that the
constant sets is one cycle shorter, so the RTL's sequencer (whose wait counters come from it)
and the golden model's prediction both shrink by a cycle and still agree on every cycle count.
Then the chosen tests run on that copy. A constant that is exactly what the hardware needs
now lets an instruction read before a write has landed, two writes meet in one cycle, or a swap
overtake a load, and some test fails on **wrong data**; a padded one would pass. The table
says which test caught each mutation and how.

    python scripts/timing_tightness.py                 # every constant (about 25 minutes here)
    python scripts/timing_tightness.py --only vec_settle --json t.json

The structural latencies (array_latency, vec_unit_latency, act_read_latency, window_latency,
...) are not mutated: the RTL's pipelines are built from them, so a shorter one is a different
pipeline, not a shorter wait. Mutations apply on top of the current working tree's tracked
files, so uncommitted changes count.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: Each mutation: (constant, the wait it shortens, the change, Python appended to rtl/isa.py).
#: A settle time or cost shortens its wait at -1; write_depth at +1, because a writer waits
#: until ``act_settled - write_depth`` (its first write must land after every earlier one).
MUTATIONS = [
    ("matmul_settle", "a MATMUL's last accumulator write, before a VEC reads it", "-1",
     "def matmul_settle(cfg, m):\n    return _original(cfg, m) - 1\n"),
    ("vec_settle", "a VEC's last activation write, before a reader or HALT", "-1",
     "def vec_settle(cfg, m):\n    return _original(cfg, m) - 1\n"),
    ("fill_settle", "a FILL's last activation write, before a reader or HALT", "-1",
     "def fill_settle(cfg, m):\n    return _original(cfg, m) - 1\n"),
    ("pool_settle", "a POOL's last activation write, before a reader or HALT", "-1",
     "def pool_settle(cfg, m):\n    return _original(cfg, m) - 1\n"),
    ("load_cost", "a load's sequencer cycles, before the next swap", "-1",
     "def load_cost(cfg):\n    return _original(cfg) - 1\n"),
    ("load_busy", "the weight loader's SRAM reads, before a POOL reads its weights", "-1",
     "def load_busy(cfg):\n    return _original(cfg) - 1\n"),
    ("write_depth(VEC)", "earlier activation writes, before a VEC's first write lands", "+1",
     "def write_depth(cfg, op):\n    return _original(cfg, op) + (op == Op.VEC)\n"),
    ("write_depth(FILL)", "earlier activation writes, before a FILL's first write lands", "+1",
     "def write_depth(cfg, op):\n    return _original(cfg, op) + (op == Op.FILL)\n"),
]

#: Constants that no mutation can show, and why.
CANNOT_BIND = {
    "write_depth(POOL)": "a POOL reads activations, so it also waits for act_settled itself, "
                         "which is later than act_settled - write_depth(POOL)",
}

#: The tests run against each mutation, in this order, up to the first that fails: the directed
#: hazard programs, then random programs, each on a core with the window unit, one with the
#: fast-clock pipeline and one with a serial lane and whole-row windows.
SHAPES = ["verilator-8x8v2-pool", "verilator-8x8v2-fast", "verilator-4x4v1s32-aligned"]
DEFAULT_TESTS = ([f"tests/test_core.py::test_hazards[{shape}]" for shape in SHAPES]
                 + [f"tests/test_core.py::test_random_programs[{shape}]" for shape in SHAPES])

WRONG_DATA = re.compile(r"(\w+) SRAM differs from the model|(\w+) differs from the model")
COUNTERS = re.compile(r"RTL \{.*\} != model \{.*\}")


def function_name(constant):
    return constant.split("(")[0]


def mutated_copy(constant, body, into):
    """The tracked files of the working tree in ``into``, with ``constant``'s wait one cycle
    short."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            target = into / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    isa = into / "rtl" / "isa.py"
    text = isa.read_text()
    name = function_name(constant)
    if f"\ndef {name}(" not in text:
        raise SystemExit(f"rtl/isa.py has no function {name}")
    isa.write_text(text + f"\n\n# timing_tightness: {constant}'s wait one cycle short\n"
                   f"_original = {name}\n\n\n{body}")


def run_tests(copy, tests, seed):
    """(caught, test, how, excerpt) for the first of ``tests`` that fails on ``copy``."""
    env = dict(os.environ, PYTHONPATH=str(copy))
    for test in tests:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                               test, "--seed", str(seed)], cwd=copy, env=env,
                              capture_output=True, text=True)
        if proc.returncode == 0:
            continue
        output = proc.stdout + proc.stderr
        logs = re.findall(r"log (\S+sim\.log)", output)
        for log in logs:
            try:
                output += Path(log.rstrip(")")).read_text()
            except OSError:
                pass
        data = WRONG_DATA.search(output)
        if data:
            line = next(ln for ln in output.splitlines() if data.group(0) in ln)
            return True, test, "wrong data", line.strip()[:160]
        counters = COUNTERS.search(output)
        how = "counters differ" if counters else "failed otherwise"
        excerpt = counters.group(0) if counters else output.strip().splitlines()[-1]
        return True, test, how, excerpt[:160]
    return False, None, "not caught", ""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", metavar="CONSTANT",
                        help="mutate only this constant (repeatable): "
                             + ", ".join(c for c, *_ in MUTATIONS))
    parser.add_argument("--tests", nargs="+", default=DEFAULT_TESTS,
                        help="pytest node ids to run against each mutation")
    parser.add_argument("--seed", type=int, default=1, help="the tests' seed (default 1)")
    parser.add_argument("--json", metavar="FILE", help="write the table to this JSON file")
    args = parser.parse_args()
    chosen = [m for m in MUTATIONS if not args.only or m[0] in args.only]
    unknown = set(args.only or ()) - {c for c, *_ in MUTATIONS}
    if unknown:
        parser.error(f"unknown constant(s) {sorted(unknown)}; "
                     f"choose from {[c for c, *_ in MUTATIONS]}")
    rows = []
    print(f"{'constant':<18} {'mutated':<8} {'caught by':<58} how")
    for constant, meaning, change, body in chosen:
        with tempfile.TemporaryDirectory(prefix="tightness-") as tmp:
            mutated_copy(constant, body, Path(tmp))
            caught, test, how, excerpt = run_tests(Path(tmp), args.tests, args.seed)
        rows.append(dict(constant=constant, shortens=meaning, mutated=change, caught=caught,
                         test=test, how=how, excerpt=excerpt))
        print(f"{constant:<18} {change:<8} {test or '-':<58} {how}", flush=True)
        if excerpt:
            print(f"{'':<28}{excerpt}", flush=True)
    missed = [r["constant"] for r in rows if not r["caught"]]
    print(f"\n{len(rows) - len(missed)} of {len(rows)} mutations caught"
          + (f"; not caught: {', '.join(missed)}" if missed else ""))
    for constant, why in CANNOT_BIND.items():
        print(f"{constant}: never binds ({why})")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(seed=args.seed, tests=args.tests, rows=rows),
                                              indent=2))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
