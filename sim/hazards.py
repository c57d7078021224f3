"""Directed hazard programs: each puts one interlock of docs/isa.md (section 4) at its tightest,
so that an instruction starts in the very cycle its interlock allows and then touches exactly
the data that the interlock protects. Run on the RTL against the golden model, they show that
every interlock is needed to the cycle (scripts/timing_tightness.py shortens each by one).

The data are random; the golden model says what the results must be.
"""

from rtl import isa

from .arith import INT32_MIN
from .programs import setp
from .randstream import random_images

__all__ = ["hazard_cases"]

Op, W = isa.Op, isa.Window


def _saturating(state):
    """Accumulator row 0 and parameter row 0 such that acc + bias == mult == INT32_MIN."""
    state.acc[0], state.bias[0], state.mult[0] = INT32_MIN, 0, INT32_MIN


def hazard_cases(cfg, rng):
    """[(name, CoreState with its program)] for ``cfg``: one per interlock, with the window
    unit's only on a core that has it. Positions along one pattern, a row (``act_row_bytes``)
    apart, so every address is aligned."""
    p = cfg.act_row_bytes
    x, y, z = 0, 8 * p, 16 * p                       # MATMUL/POOL inputs, VEC outputs, FILLs
    tiles = cfg.wgt_tiles
    rows_pattern = setp(0, count=1, step=0, line=p, lanes=cfg.rows)

    def matmul(m, act=x, acc=0, **fields):
        return isa.encode(Op.MATMUL, m=m, act_addr=act, acc_addr=acc, **fields)

    def vec(m, act=y, acc=0):       # its first row read is acc, in its first cycle
        return isa.encode(Op.VEC, m=m, acc_addr=acc, act_addr=act, q_addr=0)

    load0 = isa.encode(Op.LOADW, wgt_tile=0)
    cases = {
        "MATMUL -> VEC reading its last accumulator row first (matmul_settle)":
            [load0, matmul(3, swap=1), vec(1, acc=2)],
        "VEC -> MATMUL reading its last row (vec_settle)":
            [load0, matmul(2, swap=1), vec(2), matmul(1, act=y + p, acc=4)],
        "FILL -> MATMUL reading its last position (fill_settle)":
            [load0, isa.encode(Op.FILL, act_addr=z, m=3, value=int(rng.integers(-128, 128))),
             matmul(1, act=z + 2 * p, swap=1)],
        "VEC -> FILL elsewhere: the FILL's first write right after the VEC's last "
        "(write_depth FILL)":
            [load0, matmul(2, swap=1), vec(2),
             isa.encode(Op.FILL, act_addr=z, m=1, value=int(rng.integers(-128, 128)))],
        "LOADW -> MATMUL swapping the tile in (load_cost)":
            [isa.encode(Op.LOADW, wgt_tile=1 % tiles), matmul(cfg.rows, swap=1)],
        "MATMUL preloading -> MATMUL swapping it in (load_cost)":
            [load0, matmul(1, swap=1, preload=1, wgt_tile=2 % tiles), matmul(2, acc=4, swap=1)],
        "VEC -> HALT (vec_settle)": [load0, matmul(2, swap=1), vec(2)],
        # Not an interlock: the one input of the doubling high multiply that saturates
        # (acc + bias == multiplier == INT32_MIN), which the coverage report found untaken.
        "VEC whose doubling high multiply saturates (acc + bias == mult == INT32_MIN)":
            ([vec(1)], _saturating),
    }
    if cfg.pool:
        dw_tile = 3 % max(1, (cfg.wgt_depth - 9) // cfg.rows + 1)
        avg = isa.encode(Op.SETW, kind=W.AVG, kh=1, kw=1, line=1)
        pool = isa.encode(Op.POOL, act_addr=x, out_addr=z, m=2, q_addr=0)
        cases.update({
            "POOL -> MATMUL reading its last output (pool_settle)":
                [load0, avg, pool, matmul(1, act=z + p, swap=1)],
            "POOL -> VEC: the VEC's first result right after the POOL's last (write_depth VEC)":
                [load0, matmul(2, swap=1), avg, pool, vec(2)],
            "VEC -> POOL reading its last row (vec_settle)":
                [load0, matmul(2, swap=1), vec(2), avg,
                 isa.encode(Op.POOL, act_addr=y + p, out_addr=z, m=1, q_addr=0)],
            "LOADW -> POOL reading depthwise weights -> MATMUL swapping the load in (load_busy)":
                [isa.encode(Op.LOADW, wgt_tile=1 % tiles),
                 isa.encode(Op.SETW, kind=W.DW, kh=3, kw=3, line=3, aux=dw_tile),
                 isa.encode(Op.POOL, act_addr=x, out_addr=z, m=1, q_addr=0),
                 matmul(1, swap=1)],
            "POOL -> HALT (pool_settle)": [avg, pool],
        })
        # A POOL reading its own results: input k sees the result of input k - lag, and not
        # that of input k - lag + 1 (docs/isa.md, POOL), on each side of the edge.
        lag = isa.pool_depth(cfg) + 1
        half = -(-lag // 2)
        for name, out in (("the earliest input that sees it", x + lag * p),
                          ("each input a cycle before it sees it", x + (lag - 1) * p)):
            cases[f"POOL reading its own results, {name} (pool_depth)"] = [
                avg, isa.encode(Op.POOL, act_addr=x, out_addr=out, m=lag + 4, q_addr=0)]
        cases["POOL ADD whose B inputs are its own results (pool_depth)"] = [
            isa.encode(Op.SETW, kind=W.ADD, kh=1, kw=1, line=1, aux=z, aux_pattern=0,
                       zp_a=int(rng.integers(-128, 128)), zp_b=int(rng.integers(-128, 128))),
            isa.encode(Op.POOL, act_addr=x, out_addr=z + half * p, m=2 * half + 8, q_addr=0)]
    # A case is its instructions, or (instructions, a function that sets up its SRAM images).
    out = []
    for name, case in cases.items():
        body, prepare = case if isinstance(case, tuple) else (case, None)
        program = [rows_pattern, *body, isa.encode(Op.HALT)]
        for word in program:
            error = isa.check(word, cfg)
            assert not error, f"hazard case {name!r}: {isa.decode(word)} is {error.name}"
        state = random_images(cfg, rng)
        if prepare is not None:
            prepare(state)
        state.load_program(program)
        out.append((name, state))
    return out
