"""The compiler's refusals: one line each, naming the layer, the reason and the numbers."""

__all__ = ["CompileError", "fits_field", "bytes_text"]


class CompileError(ValueError):
    """The model does not fit the chosen core, or uses what the core cannot do. One line."""


def fits_field(layer, op, field, value):
    """Refuse (CompileError) a value that an instruction field cannot hold."""
    lo, hi = field.range
    if not lo <= int(value) <= hi:
        raise CompileError(f"{layer}: {op.name}.{field.name} would be {int(value)}, which its "
                           f"{field.width}-bit field cannot hold ([{lo}, {hi}])")


def bytes_text(n):
    return f"{n} bytes" if n < 10 * 1024 else f"{n / 1024:.1f} KiB"
