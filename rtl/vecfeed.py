"""The vector feed: what the vector unit takes for each VEC step, and where its results go."""

from amaranth import Cat, Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .config import ADDR_FIELD_BITS, GROUP_FIELD_BITS
from .delay import delay, row_slot
from .hostport import qparam_slots
from .isa import READ_LATENCY
from .sequencer import vec_issue_layout, vec_step_bits
from .vector import input_layout, output_layout

__all__ = ["VectorFeed", "act_write_layout", "vec_tag_width"]


def vec_tag_width(cfg):
    """Width of the tag a VEC step carries through the vector unit: its activation row, lane
    group and step."""
    return ADDR_FIELD_BITS + GROUP_FIELD_BITS + vec_step_bits(cfg)


def act_write_layout(cfg):
    return data.StructLayout({"addr": unsigned(ADDR_FIELD_BITS), "data": unsigned(8 * cfg.rows),
                              "en": unsigned(cfg.rows)})


class VectorFeed(wiring.Component):
    """Gathers each VEC step's accumulators and parameters for the vector unit, and writes its
    int8 results into their activation lanes.

    Members
    -------
    vec : In(stream.Signature(vec_issue_layout(cfg), always_ready=True))
        The sequencer's VEC steps (rtl/sequencer.py); ``payload.acc_addr`` is the accumulator
        SRAM's read address (the core's port multiplexing takes it).
    acc_data : In(32 * C)
        The accumulator SRAM's read data (a cycle after the address).
    acc_row : In(32 * C)
        The same, registered (the accumulator path's ``read_row``): taken with
        ``cfg.vec_read_latency`` = 3.
    q_addr : Out
        The parameter memories' read address of the step (:func:`qparam_slots` rows per
        parameter row).
    bias_data, mult_data, shift_data : In
        The parameter memories' read data.
    unit_i : Out(stream.Signature(input_layout(vec_lanes, tag), always_ready=True))
        To the vector unit's input.
    unit_o : In(stream.Signature(output_layout(vec_lanes, tag), always_ready=True))
        From the vector unit's output.
    act_write : Out(stream.Signature(act_write_layout(cfg), always_ready=True))
        The activation SRAM write: row, data and byte enables (``valid`` with ``unit_o``;
        the enables are 0 without it).

    Timing: a step issued in cycle t (K = ``cfg.vec_mult_cycles`` = 1) reads the SRAMs in t,
    and ``unit_i`` is valid in t + ``cfg.vec_read_latency`` (registered: the lane select of the
    SRAM's row, or with 3 of its register); with a serial unit (K > 1) ``unit_i`` is
    combinational in t + 1, straight from the SRAMs. ``act_write`` is ``unit_o`` in the same
    cycle. One step per cycle (per K cycles with K > 1).
    """

    def __init__(self, cfg):
        self.cfg = cfg
        vl, tag = cfg.vec_lanes, vec_tag_width(cfg)
        slots = qparam_slots(cfg)
        super().__init__({
            "vec": In(stream.Signature(vec_issue_layout(cfg), always_ready=True)),
            "acc_data": In(32 * cfg.cols),
            "acc_row": In(32 * cfg.cols),
            "q_addr": Out(range(cfg.qparam_depth * slots)),
            "bias_data": In(32 * vl),
            "mult_data": In(32 * vl),
            "shift_data": In(8 * vl),
            "unit_i": Out(stream.Signature(input_layout(vl, tag), always_ready=True)),
            "unit_o": In(stream.Signature(output_layout(vl, tag), always_ready=True)),
            "act_write": Out(stream.Signature(act_write_layout(cfg), always_ready=True)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        rows, cols, groups = cfg.rows, cfg.cols, cfg.groups
        vec_lanes, qslots = cfg.vec_lanes, qparam_slots(cfg)
        vec = self.vec

        # With cfg.vec_read_latency = 3 the SRAM rows are registered (``v_lag``) before the lane
        # select, and the issue's fields wait as long.
        v_lag = cfg.vec_read_latency - READ_LATENCY
        v_valid = delay(m, vec.valid, 1 + v_lag, "vec_valid")
        # The issue's fields, in the cycle its SRAM reads come back. A serial unit's step holds
        # them for K >= 4 cycles (the sequencer's payload comes from registers that move only
        # when the next step is issued): no copy needed.
        v_tag = (delay(m, vec.payload, 1 + v_lag, "vec_tag") if cfg.vec_mult_cycles == 1
                 else vec.payload)
        # What a DSP vector unit takes is registered (isa.READ_LATENCY), for the same reason as
        # the activations: the accumulator SRAM's output goes through the lane select first. A
        # serial unit's first stage holds its input for K cycles anyway, and its clock is a
        # small FPGA's: it takes the SRAM's output directly (isa.vec_pipeline_depth).
        vin = Signal(self.unit_i.payload.shape())
        assert READ_LATENCY == 2, "the vector unit's input is one register after the SRAM"
        vec_domain = m.d.sync if cfg.vec_mult_cycles == 1 else m.d.comb
        vec_domain += [self.unit_i.payload.eq(vin), self.unit_i.valid.eq(v_valid)]

        # A VEC row's lanes are processed vec_lanes at a time: "slots" of vec_lanes channels
        # index the accumulator row (C channels) and the activation row (R bytes). When
        # C > R, lane group g is accumulator slots g * steps ... and all R activation bytes;
        # when C < R, it is all C accumulator channels and activation slots g * steps ...
        def slot(group, step):
            group = group[:max(1, (groups - 1).bit_length())]
            return Cat(step, group) if cfg.vec_steps > 1 else group

        acc_slot = slot(v_tag.group, v_tag.step) if cols > rows else v_tag.step
        issue_slot = (slot(vec.payload.group, vec.payload.step) if cols > rows
                      else vec.payload.step)
        m.d.comb += self.q_addr.eq(row_slot(vec.payload.q_addr, issue_slot, qslots))

        def lane_select(value, lane_bits):
            if cols == vec_lanes:
                return value
            return value.word_select(acc_slot, lane_bits * vec_lanes)

        # The registered accumulator row is the matrix path's (``acc_row``), a cycle behind.
        v_acc_row = self.acc_row if v_lag else self.acc_data
        v_bias, v_mult, v_shift = (
            delay(m, value, v_lag, f"vec_{name}_row", reset_less=True)
            for name, value in (("bias", self.bias_data), ("mult", self.mult_data),
                                ("shift", self.shift_data)))
        m.d.comb += [
            vin.acc.eq(lane_select(v_acc_row, 32)),
            vin.bias.eq(v_bias),
            vin.mult.eq(v_mult),
            vin.zero_point.eq(v_tag.zero_point),
            vin.clamp_min.eq(v_tag.clamp_min),
            vin.clamp_max.eq(v_tag.clamp_max),
            vin.tag.eq(Cat(v_tag.act_addr, v_tag.group, v_tag.step)),
        ]
        shifts = v_shift
        for j in range(vec_lanes):
            m.d.comb += vin.shift[j].eq(shifts[8 * j:8 * j + 5])

        out = self.unit_o
        out_tag = out.payload.tag
        out_addr = out_tag[:ADDR_FIELD_BITS]
        out_group = out_tag[ADDR_FIELD_BITS:ADDR_FIELD_BITS + GROUP_FIELD_BITS]
        out_step = out_tag[ADDR_FIELD_BITS + GROUP_FIELD_BITS:]
        act_slot = slot(out_group, out_step) if cols < rows else out_step
        act_slots = rows // vec_lanes
        w = self.act_write
        m.d.comb += [
            w.valid.eq(out.valid),
            w.payload.addr.eq(out_addr),
            w.payload.data.eq(Cat(*[out.payload.data] * act_slots)),
        ]
        with m.If(out.valid):
            for i in range(act_slots):
                with m.If(act_slot == i):
                    m.d.comb += w.payload.en.eq(((1 << vec_lanes) - 1) << (i * vec_lanes))
        return m
