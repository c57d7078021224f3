"""Soak the RTL with constrained-random instruction streams (sim/randstream.py) under new seeds,
and print every seed that fails, with the command that reruns it.

    python scripts/soak_streams.py --seed random --count 2000            # one new seed
    python scripts/soak_streams.py --seed random --rounds 10 --count 500 # ten new seeds
    python scripts/soak_streams.py --seed 19887 --core 4x4v2-fastpool --simulator icarus

Each round runs ``--count`` streams per core on one simulated core (one cocotb run, so the
core is reused back to back, as on a board), half of them with one word broken, and compares
error code, counters and every writable SRAM with the golden model after each stream. The
coverage table of each round is printed. Exit status 1 if any round failed.
"""

import argparse
import json
import secrets
import sys
import tempfile
import time
from pathlib import Path

from boards.catalog import BOARDS
from sim.randstream import Coverage, stream_cores
from sim.rtlsim import run_core_bench
from sim.runner import SIMULATORS, SimulationFailed

CORES = stream_cores(BOARDS["ulx3s-85f"].core.timing)


def soak(cfg, simulator, seed, count, report):
    """None if ``count`` streams under ``seed`` matched the model, else the failure's first
    line."""
    try:
        run_core_bench(cfg, simulator, seed, "random_streams", LOCKSTEP_PROGRAMS=count,
                       LOCKSTEP_REPORT=report)
    except SimulationFailed as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if "Error" in ln] or [str(exc)]
        return lines[0][:300]
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", default="random",
                        help="'random' (a new seed each round) or an integer (default random)")
    parser.add_argument("--count", type=int, default=1000, help="streams per core and round")
    parser.add_argument("--rounds", type=int, default=1, help="rounds (seeds) to run")
    parser.add_argument("--core", choices=sorted(CORES), action="append",
                        help="core to soak (repeatable; default all)")
    parser.add_argument("--simulator", choices=SIMULATORS, default="verilator")
    args = parser.parse_args()
    if args.seed != "random" and not args.seed.isdigit():
        parser.error(f"--seed must be 'random' or a non-negative integer, not {args.seed!r}")
    if args.count < 1 or args.rounds < 1:
        parser.error("--count and --rounds must be at least 1")
    if args.seed != "random" and args.rounds > 1:
        parser.error("--rounds > 1 needs --seed random (a fixed seed repeats the same streams)")
    failures = []
    for _ in range(args.rounds):
        seed = secrets.randbelow(1 << 16) if args.seed == "random" else int(args.seed)
        for name in args.core or sorted(CORES):
            cfg = CORES[name]
            with tempfile.TemporaryDirectory() as tmp:
                report = Path(tmp) / "coverage.json"
                started = time.monotonic()
                failure = soak(cfg, args.simulator, seed, args.count, report)
                seconds = time.monotonic() - started
                if failure:
                    failures.append((name, seed))
                    print(f"FAILED {name} seed {seed} ({args.simulator}, {args.count} streams): "
                          f"{failure}\n  rerun: LOCKSTEP_STREAMS={args.count} python -m pytest "
                          f"'tests/test_core.py::test_random_streams[{args.simulator}-{name}]' "
                          f"--seed {seed}", flush=True)
                    continue
                coverage = Coverage.from_dict(cfg, json.loads(report.read_text()))
                pairs, interlocks, hazards = coverage.missing()
                print(f"ok {name} seed {seed} ({args.simulator}): {args.count} streams in "
                      f"{seconds:.0f} s; not reached: {len(pairs)} pairs, "
                      f"{len(interlocks)} interlocks, {len(hazards)} hazards", flush=True)
                print(coverage.table(), flush=True)
    rounds = args.rounds * len(args.core or CORES)
    print(f"\n{rounds - len(failures)} of {rounds} runs matched the model"
          + (f"; failing (core, seed): {failures}" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
