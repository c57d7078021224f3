#!/usr/bin/env bash
# The test command: installs what is missing, checks style, runs the whole suite on both
# simulators (a missing simulator is a failure, never a skip). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -n "${LOCKSTEP_JOBS:-2}" "$@"
