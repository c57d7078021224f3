"""The host port's bus: one 32-bit word per access, fixed latency, no wait states."""

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .hostmap import DATA_BITS, HostMap

__all__ = ["HostBusSignature"]


class HostBusSignature(wiring.Signature):
    """Host bus, seen from the host (the initiator). The core has ``In(HostBusSignature(cfg))``.

    Members
    -------
    addr : Out(HostMap(cfg).addr_bits)
        Word address (see rtl/hostmap.py).
    w_en : Out(1)
        Write ``w_data`` to ``addr`` at the end of this cycle.
    w_data : Out(32)
    r_en : Out(1)
        Read ``addr``; the word arrives on ``r_data`` with ``r_valid``
        ``cfg.host_read_latency`` cycles later.
    r_data : In(32)
    r_valid : In(1)

    Timing
    ------
    One access per cycle, back to back; reads have a latency of exactly
    ``cfg.host_read_latency`` cycles: 2 is the SRAM read, then a
    register next to the SRAMs for the selected word, so that no block RAM output has to reach
    the host in the cycle it appears; 3 puts a register for each SRAM's whole output row
    between the two; 4 adds a cycle in front, in which every access is decoded into registers
    that act in the next cycle (writes and START a cycle later too, in the order they came).
    ``r_data`` is 0 in cycles without ``r_valid``.
    SRAM accesses take effect only while the core is idle (writes are dropped and reads
    return 0 while it runs); the control registers answer at any time.
    """

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__({
            "addr": Out(HostMap(cfg).addr_bits),
            "w_en": Out(1),
            "w_data": Out(DATA_BITS),
            "r_en": Out(1),
            "r_data": In(DATA_BITS),
            "r_valid": In(1),
        })

    def __eq__(self, other):
        return isinstance(other, HostBusSignature) and self.cfg == other.cfg

    def __repr__(self):
        return f"HostBusSignature({self.cfg!r})"
