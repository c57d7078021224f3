"""The vector feed: what the vector unit takes for each VEC step, and where its results go."""

from amaranth import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .actmem import act_addr_bits, act_write_layout
from .delay import delay, row_slot, times
from .hostport import qparam_slots
from .isa import READ_LATENCY
from .sequencer import count_bits, vec_issue_layout, vec_step_bits
from .vector import input_layout, output_layout

__all__ = ["VectorFeed", "vec_tag_layout"]


def vec_tag_layout(cfg):
    """The tag a result carries through the vector unit: where its bytes go (the row's
    address, its byte count, the step within the row)."""
    return data.StructLayout({"addr": unsigned(act_addr_bits(cfg)),
                              "count": unsigned(count_bits(cfg)),
                              "step": unsigned(vec_step_bits(cfg))})


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
        The activation SRAM write of ``unit_o``'s result (VEC or POOL): step k of a row writes
        its ``vec_lanes`` bytes at the row's address + k * vec_lanes, as many of them as the
        row's byte count leaves (none: no write).

    Timing
    ------
    A step issued in cycle t (K = ``cfg.vec_mult_cycles`` = 1) reads the SRAMs in t,
    and ``unit_i`` is valid in t + ``cfg.vec_read_latency`` (registered: the lane select of the
    SRAM's row, or with 3 of its register); with a serial unit (K > 1) ``unit_i`` is
    combinational in t + 1, straight from the SRAMs. ``act_write`` is ``unit_o`` in the same
    cycle. One step per cycle (per K cycles with K > 1).
    """

    def __init__(self, cfg):
        self.cfg = cfg
        vl, tag = cfg.vec_lanes, vec_tag_layout(cfg).size
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
            vin.tag.eq(Cat(v_tag.act_addr, v_tag.count, v_tag.step)),
        ]
        shifts = v_shift
        for j in range(vec_lanes):
            m.d.comb += vin.shift[j].eq(shifts[8 * j:8 * j + 5])

        out = self.unit_o
        tag = vec_tag_layout(cfg)(out.payload.tag)
        offset = times(tag.step, vec_lanes) if cfg.vec_steps > 1 else 0
        left = tag.count - offset          # bytes of the row from this step's first on
        w = self.act_write
        m.d.comb += [
            w.valid.eq(out.valid & (tag.count > offset)),
            w.payload.addr.eq(tag.addr + offset),
            w.payload.count.eq(Mux(left > vec_lanes, vec_lanes, left)),
        ]
        # The step's bytes repeated across the write's R lanes: the memory's placement then has
        # only vec_lanes different bytes to choose from (one, and no choice, with one lane).
        for lane in range(cfg.rows):
            m.d.comb += w.payload.data[lane].eq(out.payload.data[lane % vec_lanes])
        return m
