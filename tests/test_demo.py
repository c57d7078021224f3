"""`lockstep demo`, the README's main job, on each board's core: both networks on the golden
model and the RTL, bit for bit, predicted == measured cycles, the latency at the board's clock."""

import io

import pytest

from boards.catalog import get_board
from lockstep.demo import LARGE_BATCH, run_demo


@pytest.mark.parametrize("name, cnn_batch", [("ulx3s-85f", LARGE_BATCH), ("icebreaker", 1)])
def test_demo_on_a_board_core(name, cnn_batch):
    """The iCEBreaker's core holds the CNN's activations for one image only (4 KiB of block
    RAM; its weights are in SPRAM), and the demo says so."""
    board = get_board(name)
    out = io.StringIO()
    assert run_demo(rtl_samples=2, out=out, board=board)   # SystemExit if the RTL disagreed
    text = out.getvalue()
    assert f"{name}'s core, {board.core.rows}x{board.core.cols}" in text
    assert (f"RTL == golden model, bit for bit, on 2 images at batch 1 and {LARGE_BATCH} at "
            f"batch {LARGE_BATCH}: yes") in text, text
    assert (f"RTL == golden model, bit for bit, on 2 images at batch 1 and {cnn_batch} at "
            f"batch {cnn_batch}: yes") in text, text
    runs = 3 + (cnn_batch > 1)
    assert text.count("(equal)") == runs and "DIFFERENT" not in text, text
    assert text.count(f"us at {board.clock_mhz:g} MHz") == runs, text
    if cnn_batch < LARGE_BATCH:
        assert f"batch {LARGE_BATCH} does not fit the core's SRAMs; batch {cnn_batch} does" in text
