"""cocotb benches that drive the core through the host side of the stack (the host-link client,
the compiler), so they live above sim/: sim/ imports only rtl/.

:func:`link_bench` runs the board-in-simulation bench (hostlink_bench.py) on any design whose
ports are a LinkedCore's, from its simulation run's settings.
"""

import json

from rtl.hostlink_protocol import DEFAULT_TIMEOUT_BITS

__all__ = ["LINK_BENCH", "link_bench_env"]

#: The cocotb test module of the board-in-simulation bench.
LINK_BENCH = "lockstep.benches.hostlink_bench"


def link_bench_env(cfg, seed, divisor, timeout_bits=DEFAULT_TIMEOUT_BITS, network=None,
                   programs=None, report=None, startup_cycles=None):
    """The environment of the bench: the core ``cfg`` behind a link of ``divisor`` clock cycles
    per bit and a mid-frame timeout of ``timeout_bits``; ``network``, the layer widths of the
    compiled network it runs (e.g. (64, 32, 10)); ``programs``, how many random GEMM programs;
    ``report``, a file for the link figures (JSON); ``startup_cycles``, the cycles to wait before
    the first frame (a design without a reset port)."""
    env = {"LOCKSTEP_CONFIG": json.dumps(cfg.to_dict()), "LOCKSTEP_SEED": seed,
           "LOCKSTEP_DIVISOR": divisor, "LOCKSTEP_TIMEOUT_BITS": timeout_bits}
    optional = {"LOCKSTEP_NETWORK": ",".join(map(str, network)) if network else None,
                "LOCKSTEP_PROGRAMS": programs, "LOCKSTEP_LINK_REPORT": report and str(report),
                "LOCKSTEP_STARTUP_CYCLES": startup_cycles}
    env.update({key: value for key, value in optional.items() if value is not None})
    return env
