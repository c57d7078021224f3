"""The cocotb runner: it fails loudly (inside pytest or out) and never skips a simulator."""

import subprocess
import sys
import time

import pytest

from sim import runner

FAILING_SCRIPT = """
import sys
from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import Out
from sim.runner import SimulationFailed, run_cocotb

class Counter(wiring.Component):
    count: Out(8)
    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.count.eq(self.count + 1)
        return m

try:
    run_cocotb(Counter, key="selftest-counter", toplevel="counter",
               test_module="sim.benches.selftest_bench", simulator=sys.argv[1],
               extra_env={"SELFTEST_EXPECT": sys.argv[2]})
except SimulationFailed as exc:
    print("SIMULATION FAILED:", str(exc).splitlines()[0])
    sys.exit(3)
print("SIMULATION PASSED")
"""


@pytest.mark.parametrize("expect, status, word", [("5", 0, "PASSED"), ("6", 3, "FAILED")])
def test_failures_raise_outside_pytest(simulator, expect, status, word):
    """Run from a plain Python process (no pytest): a failing cocotb test must raise."""
    done = subprocess.run([sys.executable, "-c", FAILING_SCRIPT, simulator, expect],
                          capture_output=True, text=True, env=_env_without_pytest())
    assert done.returncode == status, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"SIMULATION {word}" in done.stdout


def test_waves_on_request(simulator, monkeypatch):
    from amaranth import Module
    from amaranth.lib import wiring
    from amaranth.lib.wiring import Out

    class Counter(wiring.Component):
        count: Out(8)

        def elaborate(self, platform):
            m = Module()
            m.d.sync += self.count.eq(self.count + 1)
            return m

    monkeypatch.setenv("LOCKSTEP_WAVES", "1")
    started = time.time()
    results = runner.run_cocotb(Counter, key="selftest-counter", toplevel="counter",
                                test_module="sim.benches.selftest_bench", simulator=simulator,
                                extra_env={"SELFTEST_EXPECT": "5"})
    build_dir = results.parent.parent.parent
    assert build_dir.name == f"{simulator}-waves"
    fresh = [p for p in [*build_dir.rglob("*.vcd"), *build_dir.rglob("*.fst")]
             if p.stat().st_mtime >= started - 1]
    assert fresh, f"no waveform written under {build_dir}"


def _env_without_pytest():
    import os
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}


def test_missing_icarus_is_an_error_not_a_skip(monkeypatch):
    monkeypatch.setattr(runner.shutil, "which", lambda name: None)
    with pytest.raises(runner.SimulatorMissing, match="apt-get install -y iverilog"):
        runner._prepare_simulator("icarus")


def test_unknown_simulator_is_refused():
    with pytest.raises(ValueError, match="verilator, icarus"):
        runner._prepare_simulator("modelsim")


def test_progress_follower_prints_the_last_lines(tmp_path):
    """Runs that finish between the follower's last look and the end of the simulation are
    still reported (the last "run N" line used to be lost), and a half-written line is not."""
    import io
    import threading

    from sim.rtlsim import _follow
    progress = tmp_path / "progress"
    progress.write_text("1 100\n2 200\n3 3")
    stop = threading.Event()
    stop.set()
    out = io.StringIO()
    _follow(progress, stop, out, 3)
    assert out.getvalue().splitlines() == ["  RTL: run 1 finished (100 cycles)",
                                           "  RTL: run 2 finished (200 cycles)"]
