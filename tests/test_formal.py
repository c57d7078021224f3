"""Bounded formal proofs (sim/formal.py: yowasp-sby, smtbmc, Boolector), each with a twin that must
fail, so that a harness which proves nothing would be noticed."""

import pytest

from rtl.config import CoreConfig
from sim.formal import (
    AccumulatorHarness,
    BadCrcHarness,
    SequencerHarness,
    prove,
)

#: A small core whose SRAM depths are not powers of two where the config allows it, so that
#: an address one past the end is still encodable and the range asserts mean something.
SMALL = CoreConfig(rows=2, cols=2, act_depth=4, acc_depth=6, wgt_depth=6, qparam_depth=3,
                   prog_depth=6)
SMALL_POOL = CoreConfig(rows=2, cols=2, act_depth=4, acc_depth=6, wgt_depth=6, qparam_depth=3,
                        prog_depth=6, pool=True, pool_line=4)

#: Depths: enough cycles for the shortest paths into every property, within CI's time.
SEQUENCER_DEPTH = 24
FRAME_DEPTH = 24
ACC_DEPTH = 16


def _check(result, name):
    assert result.passed, f"{name}: {result.failed_assertion}\n{result.log[-3000:]}"


@pytest.mark.parametrize("cfg", [SMALL, SMALL_POOL], ids=["2x2", "2x2-pool"])
def test_sequencer_ranges_and_error_stop(cfg):
    """Any program: every issued address inside its SRAM, nothing issued after an error, and
    busy for at most drain_bound(cfg) cycles after it (BMC to SEQUENCER_DEPTH cycles)."""
    _check(prove(SequencerHarness(cfg), SEQUENCER_DEPTH, "sequencer"), "sequencer")


def test_sequencer_drain_bound_is_reached():
    """The twin: a bound far below the drain fails, so the proof above can fail."""
    result = prove(SequencerHarness(SMALL, bound=1), SEQUENCER_DEPTH, "sequencer_twin")
    assert not result.passed, "a drain bound of 1 cycle was proved: the harness proves nothing"


def test_bad_crc_changes_no_memory():
    """Any frame of up to one word whose CRC is wrong, with any gaps and any answer from the
    bus and transmitter: the frame engine never writes the bus (BMC to FRAME_DEPTH)."""
    _check(prove(BadCrcHarness(SMALL, max_words=1), FRAME_DEPTH, "bad_crc"), "bad_crc")


def test_good_crc_writes():
    """The twin: with the right CRC some frame writes, so the proof above can fail."""
    result = prove(BadCrcHarness(SMALL, max_words=1, good_crc=True), FRAME_DEPTH, "good_crc")
    assert not result.passed, "no frame with a good CRC wrote: the harness proves nothing"


@pytest.mark.parametrize("acc_write_latency", [0, 1])
def test_accumulator_forwarding(acc_write_latency):
    """MATMUL rows back to back onto any accumulator rows: every write carries the sum the
    ISA defines, so the forwarding covers every row still in flight (BMC to ACC_DEPTH)."""
    cfg = CoreConfig(rows=1, cols=1, acc_write_latency=acc_write_latency)
    _check(prove(AccumulatorHarness(cfg, latency=4), ACC_DEPTH, "accumulator"), "accumulator")


def test_accumulator_twin_fails():
    """The twin: results a cycle later than the path expects give wrong sums."""
    cfg = CoreConfig(rows=1, cols=1, acc_write_latency=1)
    result = prove(AccumulatorHarness(cfg, latency=4, skew=1), ACC_DEPTH, "accumulator_twin")
    assert not result.passed, "a skewed array was proved right: the harness proves nothing"
