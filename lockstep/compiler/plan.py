"""Before any instruction: how each tensor is laid out (padding, alignment, orientation) and where
in the activation SRAM it lives while it is needed."""

from ..qmodel import INPUT, Conv2d, Flatten, MaxPool
from .errors import CompileError, bytes_text
from .layout import Layout

__all__ = ["plan_layouts", "allocate", "MAX_POOL_PAD", "check_pool_unit", "check_window"]

#: What a max pool's padding holds: no int8 value is smaller.
MAX_POOL_PAD = -128


def _pad_needs(model, tensors):
    """Tensor -> (pads, pad value) its consumers need (the widest of each side)."""
    needs = {}
    for layer in model.core_layers:
        pads = getattr(layer, "pads", (0, 0, 0, 0))
        if not any(pads):
            continue
        source = layer.inputs[0]
        value = (MAX_POOL_PAD if isinstance(layer, MaxPool)
                 else int(tensors[source][1].zero_point))
        old_pads, old_value = needs.get(source, ((0, 0, 0, 0), value))
        if old_value != value:
            raise CompileError(f"{layer.name}: tensor {source!r} would need two border values "
                               f"({old_value} and {value}) for the padding of its consumers")
        needs[source] = (tuple(max(a, b) for a, b in zip(old_pads, pads, strict=True)), value)
    return needs


def _window_count(offsets, rows, align):
    """Windows of ``rows`` bytes (starting at multiples of ``align``) that cover ``offsets``."""
    count, end = 0, None
    for o in sorted(offsets):
        if end is None or o >= end:
            start = o - o % align
            end = start + rows
            count += 1
    return count


def _transposed_is_better(layer, shape, pads, cfg):
    """Whether the model input, read only by convolution ``layer``, needs fewer windows stored
    column by column (a tall kernel over few channels: each window then holds a column)."""
    if not isinstance(layer, Conv2d):
        return False
    kh, kw, cin, _ = layer.weight.shape
    counts = []
    for transposed in (False, True):
        probe = Layout(shape, 1, cfg.act_align, pads, 0, transposed)
        offsets = [dy * probe.y_step + dx * probe.x_step + c
                   for dy in range(kh) for dx in range(kw) for c in range(cin)]
        counts.append(_window_count(offsets, cfg.rows, cfg.act_align))
    return counts[1] < counts[0]


def plan_layouts(model, cfg, batch):
    """Tensor name -> :class:`Layout` (bases not yet set). A Flatten's output shares its input's
    storage: its layout is the input's."""
    tensors = model.tensors()
    needs = _pad_needs(model, tensors)
    consumers = model.consumers()
    layouts = {}
    for name in [INPUT] + [layer.name for layer in model.core_layers]:
        shape = tensors[name][0]
        pads, value = needs.get(name, ((0, 0, 0, 0), None))
        transposed = False
        readers = consumers.get(name, [])
        if name == INPUT and len(shape) == 3 and len(readers) == 1:
            transposed = _transposed_is_better(readers[0], shape, readers[0].pads
                                               if hasattr(readers[0], "pads") else pads, cfg)
        layouts[name] = Layout(shape, batch, cfg.act_align, pads, value, transposed)
    for layer in model.core_layers:
        if isinstance(layer, Flatten):
            layouts[layer.name] = layouts[layer.inputs[0]]
    return layouts


def _storage(model):
    """Tensor -> the tensor whose storage it uses (a Flatten's output: its input's)."""
    owner = {INPUT: INPUT}
    for layer in model.core_layers:
        owner[layer.name] = (owner[layer.inputs[0]] if isinstance(layer, Flatten)
                             else layer.name)
    return owner


def allocate(model, layouts, cfg, batch):
    """Give each stored tensor a base address: first fit over the time from its production to
    its last reader (the output lives to the end). Raises CompileError with the needed bytes
    when the activation SRAM is too small."""
    layers = model.core_layers
    owner = _storage(model)
    first = {INPUT: -1}
    last = {INPUT: -1}
    for i, layer in enumerate(layers):
        first.setdefault(owner[layer.name], i)
        last.setdefault(owner[layer.name], i)
        for name in layer.inputs:
            last[owner[name]] = max(last[owner[name]], i)
    last[owner[layers[-1].name]] = len(layers)
    placed = []      # (start, end, first, last)
    for name in sorted(first, key=lambda n: (first[n], n)):
        size = layouts[name].bytes
        align = max(cfg.act_align, 1)
        busy = sorted((s, e) for s, e, f, l_ in placed
                      if not (l_ < first[name] or last[name] < f))
        base = 0
        for s, e in busy:
            if base + size <= s:
                break
            base = max(base, -(-e // align) * align)
        layouts[name].base = base
        placed.append((base, base + size, first[name], last[name]))
    for layer in layers:
        if isinstance(layer, Flatten):
            layouts[layer.name] = layouts[owner[layer.name]]
    needed = max(e for _, e, _, _ in placed)
    if needed > cfg.act_bytes:
        peak = max(placed, key=lambda p: p[1])
        names = [n for n in first if layouts[n].base + layouts[n].bytes == peak[1]]
        raise CompileError(
            f"activation SRAM needs {bytes_text(needed)} for batch {batch} (the tensors live "
            f"beside {names[0]!r}), the core has {bytes_text(cfg.act_bytes)} "
            f"({cfg.act_depth} rows of {cfg.act_row_bytes} bytes)")
    return needed


def check_pool_unit(layer, cfg):
    if not cfg.pool:
        raise CompileError(f"{layer.describe()}: needs the window unit (POOL), which this core "
                           "does not have")


def check_window(layer, kernel, stride, cfg):
    kh, kw = kernel
    if kh > 3 or kw > 3 or max(stride) > 2:
        raise CompileError(f"{layer.describe()}: the window unit takes kernels up to 3x3 and "
                           f"strides up to 2, not {kh}x{kw} stride {max(stride)}")

