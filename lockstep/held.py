"""Load once, infer many: what a core's SRAMs are known to hold, so that each run of a program
loads only the rows it needs that the core may not hold, and reads back only its output.

:class:`HeldImage` is the host's copy of the core's SRAMs with, per SRAM image, which rows are
known (loaded or read back since the last time a run could have written them).
:func:`load_needed` and :func:`read_rows` are operations of the host link protocol (generators
for ``client.perform``, like :class:`~lockstep.hostlink.LinkProtocol`'s own), so the board
backend and the board-in-simulation bench run the same code.

What a program needs comes from the golden model (:class:`sim.model.Access`): the program words
it executes, the weight and parameter rows it reads, and the activation and accumulator rows it
reads before writing them. A run makes the rows it writes unknown. For a compiled network, that
is its own words and tiles once, then each inference's input rows to load and output rows to
read.
"""

import numpy as np

from rtl.hostmap import SRAM_FIELDS, HostMap, Region, row_words
from sim.model import CoreState

__all__ = ["HeldImage", "load_needed", "after_run", "read_rows", "sram_rows"]


def sram_rows(state, name):
    """SRAM image ``name`` (see rtl.hostmap.SRAM_FIELDS) of ``state`` as one row per SRAM row,
    for comparing rows (the parameter SRAM's bias, multiplier and shift side by side)."""
    if name == "qparam":
        return np.concatenate([state.bias, state.mult, state.shift.astype(np.int32)], axis=1)
    values = getattr(state, name)
    return values.reshape(len(values), -1)


class HeldImage:
    """What a core holds: ``state`` (a sim.model.CoreState of the values) and ``known`` (per
    SRAM image, a mask of the rows whose value in ``state`` the core is known to hold). At first
    nothing is known."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.hmap = HostMap(cfg)
        self.state = CoreState(cfg)
        self.known = {name: np.zeros(len(sram_rows(self.state, name)), dtype=bool)
                      for name, _ in SRAM_FIELDS}

    def forget(self, name=None, rows=None):
        """Mark ``rows`` of SRAM ``name`` unknown (all rows; every SRAM when ``name`` is None)."""
        for n in ([name] if name else self.known):
            self.known[n][slice(None) if rows is None else rows] = False

    def take(self, state, name, rows):
        """The core now holds ``state``'s values in ``rows`` of SRAM ``name``."""
        if name == "qparam":
            for field in ("bias", "mult", "shift"):
                getattr(self.state, field)[rows] = getattr(state, field)[rows]
        else:
            getattr(self.state, name)[rows] = getattr(state, name)[rows]
        self.known[name][rows] = True

    def rows_to_load(self, state, name, candidates=None):
        """Of ``candidates`` (rows of SRAM ``name``; all when None), those the core is not known
        to hold with ``state``'s values."""
        new, old = sram_rows(state, name), sram_rows(self.state, name)
        rows = np.arange(len(new)) if candidates is None else np.asarray(candidates, dtype=int)
        differ = (new[rows] != old[rows]).any(axis=1)
        return rows[differ | ~self.known[name][rows]]

    def get(self, addr, default=None):
        """The word the core is known to hold at host address ``addr``, else ``default`` (the
        hole filler of LinkProtocol.write_scattered)."""
        hmap = self.hmap
        region, row, word = hmap.decode(addr)
        name = _NAMES.get(region)
        if name is None or row >= len(self.known[name]) or not self.known[name][row]:
            return default
        words = row_words(hmap, self.state, name, row)
        return words[word] if word < len(words) else default



_NAMES = {int(region): name for name, region in SRAM_FIELDS}


def load_needed(protocol, state, held, needs=None):
    """Load what ``state``'s program needs that the core (``held``) may not hold: of the rows
    that ``needs`` (its sim.model.Access) says its results depend on (all rows without it),
    those that ``held`` does not know to hold ``state``'s values. Updates ``held``; after a
    failure nothing is known. Returns the rows loaded, {SRAM name: rows}."""
    loaded, items = {}, []
    for name, region in SRAM_FIELDS:
        rows = held.rows_to_load(state, name, None if needs is None else needs.rows_read(name))
        loaded[name] = rows
        for row in rows:
            items += [(protocol.map.addr(region, int(row), w), value)
                      for w, value in enumerate(row_words(protocol.map, state, name, int(row)))]
    try:
        yield from protocol.write_scattered(sorted(items), held)
    except BaseException:
        held.forget()
        raise
    for name, rows in loaded.items():
        held.take(state, name, rows)
    return loaded


def after_run(held, needs=None):
    """The rows the run of a program (``needs``: its sim.model.Access; unknown: all of them)
    may have written are no longer known."""
    if needs is None:
        held.forget("act")
        held.forget("acc")
    else:
        held.forget("act", needs.act_rows_written)
        held.forget("acc", needs.acc_rows_written)


def read_rows(protocol, held, name, rows):
    """Read ``rows`` of SRAM ``name`` ("act" or "acc") back into ``held`` (they become known);
    returns them as an array [len(rows), lanes]."""
    region = dict(SRAM_FIELDS)[name]
    if region not in (Region.ACT, Region.ACC):
        raise ValueError(f"read_rows reads the act or acc SRAM, not {name!r}")
    rows = np.asarray(rows, dtype=int)
    per_row = protocol.map.words_per_row(region)
    addrs = [protocol.map.addr(region, int(r), w) for r in rows for w in range(per_row)]
    words = yield from protocol.read_scattered(addrs)
    values = getattr(held.state, name)
    for i, row in enumerate(rows):
        values[row] = protocol.map.words_to_row(region, words[i * per_row:(i + 1) * per_row])
    held.known[name][rows] = True
    return values[rows].copy()
