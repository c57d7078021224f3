"""The boards Lockstep targets: the core each one carries and how its bitstream is built.

Plain data (no amaranth-boards import), so the compiler and the demo can predict latencies for
every board without the FPGA tools. The platform class is named by a dotted path and imported
only by :meth:`Board.platform` (boards/build.py), so ``BOARDS`` imports without amaranth-boards.

Each board's core runs at ``clock_mhz``: a PLL makes it from the board's oscillator
(``osc_mhz``) when the two differ, with settings computed at build time (boards/pll.py), and the
build constrains the PLL's output, so a bitstream that misses the clock fails to build.
``lockstep build --board NAME`` reports the achieved Fmax beside it (docs/benchmarks.md).

* iCEBreaker (iCE40UP5K, 12 MHz oscillator, core at 24 MHz from the PLL): an 8x2 array, 16
  MACs on all 8 SB_MAC16, two PEs to each (rtl/dsp.py), one vector lane with a serial
  multiplier in logic (``vec_mult_cycles`` = 32: a VEC row takes 2 x 32 cycles), whole-row
  activation windows (``act_align`` = 8) and one pattern register, no window unit. Its weight
  SRAM is one of the four SB_SPRAM256KA (16,384 rows of 2 bytes: rtl/wgtmem.py); the other
  SRAMs are block RAM. It is synthesised without ``synth_ice40 -dsp``: that option's DSP
  packing (Yosys 0.70) rewrites hand-instantiated SB_MAC16s into a 16 x 16 multiplier, and
  packs a multi-row array's generic multipliers wrongly (docs/benchmarks.md).
* ULX3S 85F (LFE5U-85F, 25 MHz oscillator, core at 50 MHz from the PLL): a 12x12 array (144
  MULT18X18D, the operands in their input registers), 6 vector lanes and a 6-lane window
  unit (POOL) whose multipliers are built from logic (the array takes the DSPs; 12 lanes of
  each do not fit the part's logic), and the registers of a fast clock: four-cycle host
  reads, the accumulator sum registered before its write, a two-cycle decode, four-stage PEs
  and the vector unit's SRAM rows registered before its lane select. Its SRAMs hold KWS's and
  IC's activations (64 KiB) and 144 KiB of weights. Placed by nextpnr's electrostatic placer
  (docs/benchmarks.md has the routed Fmax and the resources).
"""

import importlib
from dataclasses import dataclass

from rtl.config import CoreConfig
from rtl.hostlink_protocol import DEFAULT_BAUD

__all__ = ["Board", "BOARDS", "UnknownBoard", "get_board"]


class UnknownBoard(KeyError):
    """A board name that is not in :data:`BOARDS`."""

    def __str__(self):
        return self.args[0]


@dataclass(frozen=True)
class Board:
    name: str
    part: str
    core: CoreConfig
    clock_mhz: float            # the core clock, which the build constrains and targets
    osc_mhz: float | None = None   # the oscillator; a PLL makes clock_mhz from it if they differ
    platform_path: str = ""     # "module:Class" of the amaranth-boards platform
    baud: int = DEFAULT_BAUD    # host link UART rate (docs/host-protocol.md)
    synth_opts: str = ""        # extra options for the vendor synth_* script
    pnr_opts: str = ""          # extra options for nextpnr (after the report and seed ones)
    # Commands that program the board, in order of preference (the first whose tool is found is
    # used); the bitstream path is appended.
    programmers: tuple = ()
    # Status LEDs as (resource name, number): busy, error, done; a board may list fewer.
    leds: tuple = (("led", 0), ("led", 1), ("led", 2))

    @property
    def oscillator_mhz(self):
        return self.clock_mhz if self.osc_mhz is None else self.osc_mhz

    @property
    def has_pll(self):
        """Whether the core clock comes from a PLL (boards/pll.py) rather than the oscillator."""
        return self.oscillator_mhz != self.clock_mhz

    @property
    def peak_gmacs(self):
        """Multiply-accumulates per second at the core clock, in billions."""
        return self.core.macs_per_cycle * self.clock_mhz / 1e3

    @property
    def clock_hz(self):
        return round(self.clock_mhz * 1e6)

    @property
    def uart_divisor(self):
        """Clock cycles per UART bit (rtl/uart.py checks the rate error and the minimum)."""
        from rtl.uart import uart_divisor
        return uart_divisor(self.clock_hz, self.baud)

    def platform(self):
        """A new instance of the board's amaranth-boards platform (imported on demand)."""
        module_name, _, class_name = self.platform_path.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ImportError(f"board {self.name} needs {module_name} "
                              f"(pip install amaranth-boards): {exc}") from None
        return getattr(module, class_name)()

    @property
    def platform_module(self):
        return self.platform_path.partition(":")[0]


BOARDS = {
    "icebreaker": Board(
        "icebreaker", "iCE40UP5K",
        CoreConfig(rows=8, cols=2, vec_lanes=1, vec_mult_cycles=32, act_depth=512,
                   wgt_depth=16384, wgt_spram=True, acc_depth=256, qparam_depth=32,
                   prog_depth=256, act_align=8, patterns=1),
        clock_mhz=24.0, osc_mhz=12.0,
        platform_path="amaranth_boards.icebreaker:ICEBreakerPlatform",
        baud=3_000_000,             # 8 cycles per bit at 24 MHz, exact; the FT2232H makes it too
        # -device u: ABC maps for the UP5K's delays, not the HX's (the default). No -dsp: its
        # ice40_dsp pass rewrites the array's own SB_MAC16s, which the netlist simulation
        # caught (tests/test_netlist.py); the core infers no multiplier of its own.
        synth_opts="-device u",
        programmers=(("iceprog",), ("openFPGALoader", "-b", "icebreaker")),
        leds=(("led_g", 0), ("led_r", 0))),
    "ulx3s-85f": Board(
        "ulx3s-85f", "LFE5U-85F",
        CoreConfig(rows=12, cols=12, vec_lanes=6, vec_lut=True, pool=True, pool_line=64,
                   act_depth=4096, wgt_depth=12288, acc_depth=512, qparam_depth=256,
                   prog_depth=1024, host_read_latency=4, acc_write_latency=1,
                   decode_cycles=2, pe_stages=4, vec_read_latency=3),
        # 50 MHz from the EHXPLLL: routed at 58.74 MHz against it (seed 1; seeds 2 and 3 not
        # measured), 62.50 against the oscillator's 25 (docs/benchmarks.md).
        clock_mhz=50.0, osc_mhz=25.0,
        platform_path="amaranth_boards.ulx3s:ULX3S_85F_Platform",
        baud=2_000_000,             # 25 cycles per bit at 50 MHz, exact; the FT231X makes it
        # nextpnr's electrostatic placer, not HeAP (the default): HeAP packs the core into a
        # corner, far from most of the DSPs, and with the operands in the DSPs' input registers
        # its placements did not route; this one spreads the PEs to their DSPs and routes the
        # 12x12.
        pnr_opts="--placer static",
        programmers=(("openFPGALoader", "-b", "ulx3s"),)),
}


def get_board(name):
    """The :class:`Board` called ``name``; :class:`UnknownBoard` (one line) otherwise."""
    try:
        return BOARDS[name]
    except KeyError:
        raise UnknownBoard(f"unknown board {name!r}; known boards: "
                           f"{', '.join(sorted(BOARDS))}") from None
