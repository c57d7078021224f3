"""Vendor DSP blocks instantiated by hand, where Yosys would not use them well by itself.

* iCE40 SB_MAC16 in 8x8 mode, two products per block, both registered inside it (Yosys does
  not pack two products into one SB_MAC16, and ``synth_ice40 -dsp`` packs a multi-row array's
  generic multipliers into a wrong netlist: docs/benchmarks.md). Synthesise these without
  ``-dsp``: its ice40_dsp pass rewrites an instantiated SB_MAC16 as a 16 x 16 multiplier.
* ECP5 MULT18X18D with its operands in the DSP's input registers and the product
  combinational behind them (Yosys maps a ``*`` to a bare MULT18X18D and leaves every register
  in the fabric, so each product path crosses two long routes to and from the DSP column).
  The vector unit and the array use it on an ECP5 (rtl/array.py, ``AUTO_MULTIPLIER``; with it
  in every PE, the ULX3S's 12 x 12 core routes only with nextpnr's ``--placer static``).

Both give a product one cycle after its operands. Simulation uses the vendors' models: Yosys'
for the SB_MAC16, sim/models/ecp5_mult18x18d.v for the MULT18X18D (Yosys has only a blackbox).
"""

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Signal, signed

__all__ = ["MULTIPLIERS", "check_multiplier", "multiplier_kind", "sb_mac16_pair",
           "mult18x18d"]

#: How products are made: "generic" (an Amaranth ``*`` and a register, which the synthesis tool
#: maps as it likes), "sb_mac16", "mult18x18d", or "auto": what the unit asks for on the
#: platform's FPGA family (:func:`multiplier_kind`), else "generic".
MULTIPLIERS = ("auto", "generic", "sb_mac16", "mult18x18d")


def check_multiplier(multiplier, choices=MULTIPLIERS):
    """``multiplier`` if it is one of ``choices``; ValueError (one line) otherwise."""
    if multiplier not in choices:
        raise ValueError(f"multiplier must be one of {', '.join(choices)}, not {multiplier!r}")
    return multiplier


def multiplier_kind(multiplier, platform, auto):
    """The kind a unit asked for ``multiplier`` ("auto" or one of the others) uses on
    ``platform`` (None in simulation): for "auto", ``auto[family]`` (e.g. ``{"ice40":
    "sb_mac16"}``), "generic" for a family not in it."""
    if multiplier != "auto":
        return multiplier
    family = str(getattr(platform, "family", "")).lower()
    return auto.get(family, "generic")


def sb_mac16_pair(m, name, lo_a, lo_b, hi_a, hi_b):
    """One SB_MAC16 computing two signed 8 x 8 products, each registered inside the block: the
    returned (lo, hi) 16-bit values are ``lo_a * lo_b`` and ``hi_a * hi_b`` of the cycle
    before."""
    out = Signal(32, name=f"{name}_o")
    m.submodules[name] = Instance(
        "SB_MAC16",
        p_MODE_8x8=Const(1, 1), p_A_SIGNED=Const(1, 1), p_B_SIGNED=Const(1, 1),
        p_TOP_8x8_MULT_REG=Const(1, 1), p_BOT_8x8_MULT_REG=Const(1, 1),
        p_TOPOUTPUT_SELECT=Const(2, 2), p_BOTOUTPUT_SELECT=Const(2, 2),
        i_CLK=ClockSignal(), i_CE=Const(1, 1),
        i_A=Cat(lo_a, hi_a), i_B=Cat(lo_b, hi_b),
        i_C=Const(0, 16), i_D=Const(0, 16),
        i_AHOLD=0, i_BHOLD=0, i_CHOLD=0, i_DHOLD=0,
        i_IRSTTOP=0, i_IRSTBOT=0, i_ORSTTOP=0, i_ORSTBOT=0,
        i_OLOADTOP=0, i_OLOADBOT=0, i_ADDSUBTOP=0, i_ADDSUBBOT=0,
        i_OHOLDTOP=0, i_OHOLDBOT=0, i_CI=0, i_ACCUMCI=0, i_SIGNEXTIN=0,
        o_O=out)
    return out[:16], out[16:]


def mult18x18d(m, name, a, b):
    """One ECP5 MULT18X18D: ``a`` and ``b`` (values of up to 18 bits, sign-extended as their
    shapes say) go into the DSP's input registers; the returned 36-bit value is their signed
    product of the cycle before, exact for any operands that fit 18 signed bits (an unsigned
    16-bit half, say)."""
    a18 = Signal(signed(18), name=f"{name}_a")
    b18 = Signal(signed(18), name=f"{name}_b")
    p = Signal(36, name=f"{name}_p")
    m.d.comb += [a18.eq(a), b18.eq(b)]
    m.submodules[name] = Instance(
        "MULT18X18D",
        p_REG_INPUTA_CLK="CLK0", p_REG_INPUTA_CE="CE0", p_REG_INPUTA_RST="RST0",
        p_REG_INPUTB_CLK="CLK0", p_REG_INPUTB_CE="CE0", p_REG_INPUTB_RST="RST0",
        p_REG_PIPELINE_CLK="NONE", p_REG_OUTPUT_CLK="NONE", p_RESETMODE="SYNC",
        p_GSR="DISABLED", p_SOURCEB_MODE="B_SHIFT", p_MULT_BYPASS="DISABLED",
        i_CLK0=ClockSignal(), i_CE0=Const(1, 1), i_RST0=Const(0, 1),
        i_SIGNEDA=Const(1, 1), i_SIGNEDB=Const(1, 1), i_SOURCEA=Const(0, 1),
        i_SOURCEB=Const(0, 1),
        **{f"i_A{i}": a18[i] for i in range(18)},
        **{f"i_B{i}": b18[i] for i in range(18)},
        **{f"i_C{i}": Const(0, 1) for i in range(18)},
        **{f"o_P{i}": p[i] for i in range(36)})
    return p
