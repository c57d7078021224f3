"""The lowering registry: one function per layer type, in the module of its family
(window_gemm.py: Dense and Conv2d on the array; window_ops.py: the window unit's layers), each
turning one layer into instructions through the shared :class:`~.resources.Builder`."""

from dataclasses import dataclass

from .errors import CompileError

__all__ = ["Context", "lowers", "lower", "LOWERINGS"]

LOWERINGS = {}


@dataclass
class Context:
    """What a lowering sees: the core, the batch, the model's tensors (shape, quantisation),
    their layouts in activation SRAM, and the builder."""
    cfg: object
    batch: int
    model: object
    tensors: dict
    layouts: dict
    builder: object

    def shape(self, name):
        return self.tensors[name][0]

    def q(self, name):
        return self.tensors[name][1]


def lowers(*layer_types):
    """Register the decorated function as the lowering of ``layer_types``."""
    def register(function):
        for layer_type in layer_types:
            LOWERINGS[layer_type] = function
        return function
    return register


def lower(ctx, layer):
    try:
        function = LOWERINGS[type(layer)]
    except KeyError:
        raise CompileError(f"{layer.describe()}: no lowering for a {type(layer).__name__}; "
                           f"the compiler lowers {', '.join(sorted(t.__name__ for t in LOWERINGS))}"
                           ) from None
    function(ctx, layer)
