"""The boards Lockstep targets: the core each one carries and the clock it is built for.

Plain data (no amaranth-boards import), so the compiler and the demo can predict latencies for
every board without the FPGA tools. The board tops that realise these cores are in this folder.
"""

from dataclasses import dataclass

from rtl.config import CoreConfig

__all__ = ["Board", "BOARDS"]


@dataclass(frozen=True)
class Board:
    name: str
    part: str
    core: CoreConfig
    clock_mhz: float      # the core clock the board's build targets


BOARDS = {
    "icebreaker": Board(
        "icebreaker", "iCE40UP5K",
        CoreConfig(rows=4, cols=4, act_depth=4096, wgt_depth=8192, acc_depth=1024,
                   qparam_depth=64, prog_depth=2048),
        clock_mhz=30.0),
    "ulx3s-85f": Board(
        "ulx3s-85f", "LFE5U-85F",
        CoreConfig(rows=12, cols=12, act_depth=4096, wgt_depth=8192, acc_depth=1024,
                   qparam_depth=64, prog_depth=2048),
        clock_mhz=100.0),
}
