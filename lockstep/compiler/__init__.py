"""The compiler: a :class:`~lockstep.qmodel.QModel` and a core configuration -> a program, the
SRAM images it needs, and its exact cycle count (docs/compiler.md).

Three steps: plan (plan.py: each tensor's layout in the byte-addressed activation SRAM, its
border for the padding its readers need, and where it lives while it is needed), lower (one
function per layer type, registered in lowering.py, in the module of its family:
window_gemm.py for Dense and Conv2d on the array, window_ops.py for the window unit's layers),
then assemble and predict (here). The lowerings share one :class:`~.resources.Builder` for
instructions, weight tiles, parameter rows and the pattern registers.
"""

from dataclasses import dataclass, field

import numpy as np

from rtl import isa
from sim.model import CoreState, run
from sim.programs import read_bytes

from ..qmodel import INPUT, Flatten, ModelError
from . import window_gemm, window_ops  # noqa: F401  (they register their lowerings)
from .errors import CompileError, bytes_text
from .lowering import Context, lower
from .plan import allocate, plan_layouts
from .resources import Builder

__all__ = ["compile_model", "CompiledModel", "CompileError", "interior_index"]


def interior_index(layout):
    """Byte addresses of a tensor's values, [batch, *shape] (its border left out)."""
    if layout.image:
        h, w, c = layout.shape
        b, y, x, ch = np.meshgrid(np.arange(layout.batch), np.arange(h), np.arange(w),
                                  np.arange(c), indexing="ij")
        t, left, _, _ = layout.pads
        return (layout.base + b * layout.image_bytes + (y + t) * layout.y_step
                + (x + left) * layout.x_step + ch)
    b, f = np.meshgrid(np.arange(layout.batch), np.arange(layout.shape[0]), indexing="ij")
    return layout.base + b * layout.image_bytes + f


@dataclass
class CompiledModel:
    """A program and its data for one core, for inputs of ``batch`` samples."""
    cfg: object
    model: object
    batch: int
    state: CoreState
    input: object                  # the input tensor's Layout
    output: object                 # the output tensor's Layout
    predicted_cycles: int
    act_bytes: int = 0             # activation SRAM the tensors take
    wgt_rows: int = 0              # weight SRAM rows the tiles take
    qparam_rows: int = 0           # requantisation SRAM rows the program uses
    # One dict per core layer: name, macs, instructions, first_pc (its first instruction),
    # cycles (from the cycle its first instruction could start, before any interlock wait, to
    # the next layer's; the last layer's to the end of the run), wgt_rows and qparam_rows
    # (the rows its tiles and parameters take), act_bytes (its output tensor's).
    layers: list = field(default_factory=list)

    @property
    def instructions(self):
        return int(np.count_nonzero(self.state.prog)) + 1   # + HALT (the all-zero word)

    @property
    def macs(self):
        return sum(layer["macs"] for layer in self.layers)

    def with_input(self, x):
        """A copy of the SRAM images with the int8 input batch ``x`` placed."""
        x = np.asarray(x)
        expected = (self.batch, *self.model.input_shape)
        if x.dtype != np.int8 or x.shape != expected:
            raise ModelError(f"input must be int8 of shape {expected}, not {x.dtype} {x.shape}")
        state = self.state.copy()
        index = interior_index(self.input) % self.cfg.act_bytes
        state.act_bytes[index.reshape(-1)] = x.reshape(-1)
        return state

    @property
    def output_rows(self):
        """The activation SRAM rows that hold the output."""
        index = interior_index(self.output).reshape(-1) % self.cfg.act_bytes
        return np.unique(index // self.cfg.act_row_bytes)

    def read_output(self, act):
        """The int8 output batch [batch, *shape] from an activation SRAM image."""
        index = interior_index(self.output)
        flat = np.asarray(act).reshape(-1)
        return flat[index % flat.size].astype(np.int8)


def _emit_border(builder, layout):
    """FILL a padded tensor's border with its pad value, exactly (nothing else is touched)."""
    if not layout.image or not any(layout.pads):
        return
    for b in range(layout.batch):
        segments = layout.border_segments(b)
        inner = [s for s in segments[1:-1]]
        ends = [segments[0], segments[-1]] if len(segments) > 1 else segments
        for addr, length in ends:
            builder.fill(addr, length, layout.pad_value)
        if inner:
            stride = inner[1][0] - inner[0][0] if len(inner) > 1 else 0
            builder.fill_lines(inner[0][0], inner[0][1], stride, len(inner), layout.pad_value)


def _check_fits(cfg, builder, words):
    rows = len(builder.tiles) * cfg.rows
    if rows > cfg.wgt_depth:
        raise CompileError(
            f"weight SRAM needs {len(builder.tiles)} tiles ({rows} rows, "
            f"{bytes_text(rows * cfg.cols)}), the core has {cfg.wgt_tiles} tiles "
            f"({cfg.wgt_depth} rows, {bytes_text(cfg.wgt_depth * cfg.cols)})")
    if len(builder.qrows) > cfg.qparam_depth:
        raise CompileError(
            f"requantisation SRAM needs {len(builder.qrows)} rows "
            f"({bytes_text(len(builder.qrows) * cfg.cols * 9)}), the core has "
            f"{cfg.qparam_depth} rows ({bytes_text(cfg.qparam_depth * cfg.cols * 9)})")
    if len(words) > cfg.prog_depth:
        raise CompileError(f"program needs {len(words)} instructions "
                           f"({bytes_text(8 * len(words))}), the core has room for "
                           f"{cfg.prog_depth} ({bytes_text(8 * cfg.prog_depth)})")


def compile_model(model, cfg, batch=1):
    """Lower ``model`` for a core of configuration ``cfg`` and inputs of ``batch`` samples.

    Raises :class:`CompileError` (one line: what does not fit where, needed vs available, or
    what the core cannot do, with the layer's name) or :class:`~lockstep.qmodel.ModelError`.
    """
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise CompileError(f"batch must be a positive integer, not {batch!r}")
    tensors = model.tensors()
    layouts = plan_layouts(model, cfg, batch)
    used = allocate(model, layouts, cfg, batch)
    builder = Builder(cfg)
    ctx = Context(cfg, batch, model, tensors, layouts, builder)
    for i, layer in enumerate(model.core_layers):
        builder.begin_layer(layer.describe(),
                            layer.macs([tensors[n][0] for n in layer.inputs]) * batch)
        if i == 0:
            _emit_border(builder, layouts[INPUT])
        if not isinstance(layer, Flatten):
            _emit_border(builder, layouts[layer.name])
        lower(ctx, layer)
        builder.end_layer()
    words = builder.words + [isa.encode(isa.Op.HALT)]
    _check_fits(cfg, builder, words)

    state = CoreState(cfg)
    if builder.tiles:
        state.wgt[:len(builder.tiles) * cfg.rows] = np.concatenate(builder.tiles)
    for row, (b, m, s) in enumerate(builder.qrows):
        state.bias[row], state.mult[row], state.shift[row] = b, m, s
    state.load_program(words)
    result = run(state.copy(), trace=True)
    if result.error != isa.Error.NONE:   # pragma: no cover - a compiler bug, never a user's
        raise CompileError(f"internal error: the program stops with {result.error.name} at "
                           f"instruction {result.err_pc}")
    # A layer's cycles run from the cycle its first instruction could start (before any
    # interlock wait: a wait belongs to the instruction that waits) to the next layer's.
    ready, t = {}, isa.fetch_cycles(cfg)
    for pc, start, _ in result.trace:
        ready[pc] = t
        t = start + isa.cost(isa.decode(int(state.prog[pc])), cfg)
    layers = []
    for i, info in enumerate(builder.layers):
        first = ready.get(info["first"], None)
        following = (builder.layers[i + 1]["first"] if i + 1 < len(builder.layers)
                     else len(builder.words))
        end = ready.get(following, result.cycles)
        info = dict(info, cycles=(end - first) if first is not None else 0,
                    act_bytes=layouts[model.core_layers[i].name].bytes)
        info["first_pc"] = info.pop("first")
        layers.append(info)
    return CompiledModel(cfg=cfg, model=model, batch=batch, state=state,
                         input=layouts[INPUT], output=layouts[model.core_layers[-1].name],
                         predicted_cycles=result.cycles, act_bytes=used, layers=layers,
                         wgt_rows=len(builder.tiles) * cfg.rows, qparam_rows=len(builder.qrows))


def read_act(act, base, count):
    """``count`` bytes from byte ``base`` of an activation SRAM image."""
    return read_bytes(act, base, count)
