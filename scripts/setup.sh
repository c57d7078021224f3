#!/usr/bin/env bash
# One command from a fresh clone: install everything, then run the main job (lockstep demo:
# a small int8 network on the golden model and on the RTL under Verilator, compared bit for bit).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/lockstep demo "$@"
