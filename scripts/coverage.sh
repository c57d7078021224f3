#!/usr/bin/env bash
# Verilator line, branch and toggle coverage of rtl/ under the core's cocotb tests, mapped back
# to the Python lines (scripts/coverage_report.py). The report goes to build/coverage/report.txt.
#   scripts/coverage.sh                                   # tests/test_core.py on Verilator
#   scripts/coverage.sh tests/test_core.py -k "hazards and verilator"    # any pytest selection
# Coverage builds are separate from the normal ones (build/sim/*/verilator-*-coverage).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
out=build/coverage
rm -rf "$out/data"
mkdir -p "$out/data"
if [ $# -eq 0 ]; then set -- tests/test_core.py -k verilator; fi
LOCKSTEP_COVERAGE="$PWD/$out/data" .venv/bin/python -m pytest -n "${LOCKSTEP_JOBS:-2}" -q "$@"
.venv/bin/python scripts/coverage_report.py "$out/data" --out "$out/report.txt"
