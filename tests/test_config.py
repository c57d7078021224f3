"""CoreConfig validation and the host address map derived from it."""

import pytest

from rtl.config import TIMING_OPTIONS, ConfigError, CoreConfig
from rtl.hostmap import HostMap, Reg, Region


@pytest.mark.parametrize("kwargs, message", [
    (dict(rows=0), "rows must be between 1 and 64, not 0"),
    (dict(cols=65), "cols must be between 1 and 64, not 65"),
    (dict(rows=3, cols=8), "divide one another"),
    (dict(rows=1, cols=32), "ratio may be at most 16"),
    (dict(act_depth=0), "act_depth must be between 1 and 16384"),
    (dict(acc_depth=1 << 15), "acc_depth must be between 1 and 16384"),
    (dict(prog_depth=1 << 16), "prog_depth must be between 1 and 32768"),
    (dict(rows=16, wgt_depth=8), "must hold at least one weight tile"),
    (dict(rows=8.0), "rows must be an integer"),
    (dict(rows=True), "rows must be an integer"),
    (dict(rows=8, cols=8, vec_lanes=3), "vec_lanes must divide min\\(rows, cols\\) = 8, not 3"),
    (dict(rows=8, cols=8, vec_lanes=0), "vec_lanes must divide"),
    (dict(rows=12, cols=12, vec_lanes=4), "must be a power of two, not 12 / 4 = 3"),
    (dict(vec_lanes=2.0), "vec_lanes must be an integer"),
    (dict(vec_mult_cycles=2), "vec_mult_cycles must be one of 1, 4, 8, 16, 32, not 2"),
    (dict(vec_mult_cycles=0), "vec_mult_cycles must be one of"),
    (dict(vec_mult_cycles=64), "vec_mult_cycles must be one of"),
    (dict(vec_mult_cycles=True), "vec_mult_cycles must be an integer"),
    (dict(host_read_latency=5), "host_read_latency must be one of 2, 3, 4, not 5"),
    (dict(acc_write_latency=2), "acc_write_latency must be one of 0, 1, not 2"),
    (dict(decode_cycles=0), "decode_cycles must be one of 1, 2, not 0"),
    (dict(pe_stages=1), "pe_stages must be one of 2, 3, 4, 5, not 1"),
    (dict(pe_stages=6), "pe_stages must be one of 2, 3, 4, 5, not 6"),
    (dict(vec_read_latency=1), "vec_read_latency must be one of 2, 3, not 1"),
    (dict(vec_read_latency=3, vec_mult_cycles=8),
     "vec_read_latency 3 needs DSP vector lanes: vec_mult_cycles must be 1, not 8"),
    (dict(act_depth=1000), "act_depth must be a power of two of at least 2, not 1000"),
    (dict(rows=12, cols=12, act_depth=16384), "act_depth must be between 1 and 8192"),
    (dict(act_align=3), "act_align must be a power of two from 1 to act_row_bytes \\(8\\)"),
    (dict(act_align=16), "act_align must be a power of two"),
    (dict(pool=1), "pool must be True or False"),
    (dict(pool=True, vec_lanes=1), "the window unit \\(pool\\) needs at least 2 vector lanes "
     "of one multiply a cycle"),
    (dict(pool=True, vec_lanes=2, vec_mult_cycles=4), "the window unit \\(pool\\) needs at "
     "least 2 vector lanes"),
    (dict(rows=1, cols=1, pool=True), "needs at least 2 vector lanes"),
    (dict(vec_lut=True, vec_mult_cycles=8), "vec_lut needs one multiply a cycle"),
    (dict(pool=True, pool_line=5000), "pool_line must be between 1 and 4095"),
])
def test_invalid_configurations_are_refused_with_one_line(kwargs, message):
    with pytest.raises(ConfigError, match=message) as info:
        CoreConfig(**kwargs)
    assert "\n" not in str(info.value)


def test_from_dict_refuses_unknown_keys():
    with pytest.raises(ConfigError, match="unknown core parameter"):
        CoreConfig.from_dict({"rows": 4, "colums": 4})


@pytest.mark.parametrize("rows, cols, lanes, groups", [
    (8, 8, 8, 1), (4, 16, 4, 4), (16, 4, 4, 4), (1, 1, 1, 1), (3, 12, 3, 4)])
def test_lanes_and_groups(rows, cols, lanes, groups):
    cfg = CoreConfig(rows=rows, cols=cols)
    assert (cfg.lanes, cfg.groups) == (lanes, groups)


@pytest.mark.parametrize("rows, cols, vec_lanes, steps", [
    (8, 8, None, 1), (8, 8, 2, 4), (12, 12, 3, 4), (4, 16, 1, 4), (16, 4, 4, 1)])
def test_vector_lanes_and_steps(rows, cols, vec_lanes, steps):
    cfg = CoreConfig(rows=rows, cols=cols, vec_lanes=vec_lanes)
    assert cfg.vec_lanes == (vec_lanes or min(rows, cols)) and cfg.vec_steps == steps
    assert CoreConfig.from_dict(cfg.to_dict()) == cfg
    assert (f"_v{vec_lanes}" in cfg.name) == (steps > 1)


@pytest.mark.parametrize("vec_lanes, mult_cycles, row_cycles, suffix", [
    (None, 1, 1, ""), (1, 1, 2, "_v1"), (None, 32, 32, "_s32"), (1, 4, 8, "_v1_s4")])
def test_serial_multiplier_row_cycles_and_name(vec_lanes, mult_cycles, row_cycles, suffix):
    cfg = CoreConfig(rows=8, cols=2, vec_lanes=vec_lanes, vec_mult_cycles=mult_cycles)
    assert cfg.vec_row_cycles == row_cycles == cfg.vec_steps * mult_cycles
    assert cfg.name.endswith("_p512" + suffix)
    assert CoreConfig.from_dict(cfg.to_dict()) == cfg
    # A configuration written before the field existed still loads, with DSP multipliers.
    old = {k: v for k, v in cfg.to_dict().items() if k != "vec_mult_cycles"}
    assert CoreConfig.from_dict(old).vec_mult_cycles == 1


def test_host_map_addresses_are_unique_and_bounded():
    cfg = CoreConfig(rows=4, cols=16, act_depth=8, wgt_depth=20, acc_depth=7,
                     qparam_depth=3, prog_depth=5)
    hmap = HostMap(cfg)
    seen = set()
    for region in Region:
        for row in range(hmap.depth(region)):
            for word in range(hmap.words_per_row(region)):
                addr = hmap.addr(region, row, word)
                assert addr not in seen and addr < 1 << hmap.addr_bits
                seen.add(addr)
    with pytest.raises(IndexError):
        hmap.addr(Region.ACT, 8, 0)
    with pytest.raises(IndexError):
        hmap.addr(Region.ACT, 0, 1)
    assert hmap.reg(Reg.STATUS) == Reg.STATUS


@pytest.mark.parametrize("region, values", [
    (Region.ACT, [-128, 127, 0, -1]),
    (Region.WGT, [1, -2, 3, -4, 5, -6, 7, -8, 9, -10, 11, -12, 13, -14, 15, -128]),
    (Region.ACC, [-(1 << 31)] + [(1 << 31) - 1] * 15),
    (Region.PROG, [0xF123_4567_89AB_CDEF]),
])
def test_row_packing_round_trip(region, values):
    hmap = HostMap(CoreConfig(rows=4, cols=16))
    words = hmap.row_to_words(region, values)
    assert all(0 <= w < 1 << 32 for w in words)
    assert hmap.words_to_row(region, words) == values


def test_row_packing_refuses_bad_rows():
    hmap = HostMap(CoreConfig(rows=4, cols=16))
    with pytest.raises(ValueError, match="needs 4 lanes"):
        hmap.row_to_words(Region.ACT, [1, 2, 3])
    with pytest.raises(ValueError, match="out of range"):
        hmap.row_to_words(Region.ACT, [1, 2, 3, 200])


def test_pipeline_options_are_in_the_name():
    """Build caches are keyed by the name: every timing option must change it."""
    names = {CoreConfig(**kwargs).name for kwargs in (
        {}, {"host_read_latency": 3}, {"acc_write_latency": 1}, {"decode_cycles": 2},
        {"pe_stages": 3}, {"vec_read_latency": 3},
        {"host_read_latency": 3, "acc_write_latency": 1, "decode_cycles": 2})}
    assert len(names) == 7


def test_timing_options_default_to_their_first_choice():
    """rtl.config.TIMING_OPTIONS says so; the boards' fast-clock cores set the others."""
    defaults = CoreConfig()
    for name, choices in TIMING_OPTIONS.items():
        assert getattr(defaults, name) == choices[0], name
