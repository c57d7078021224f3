"""The compiled-program file written by ``lockstep compile``: one .npz with every SRAM image the
program needs (program, weights, requantisation parameters) and a JSON description of the core
it is for, where the input goes and where the output comes from."""

import io
import json

import numpy as np

__all__ = ["save_compiled", "load_artifact", "FORMAT"]

FORMAT = "lockstep-compiled-2"
IMAGES = ("prog", "wgt", "bias", "mult", "shift")


def _tensor(t):
    return {"base": t.base, "layout_shape": list(t.shape), "pads": list(t.pads),
            "transposed": t.transposed, "align": t.align}


def save_compiled(compiled):
    """The .npz bytes of a :class:`~lockstep.compiler.CompiledModel`."""
    model = compiled.model
    meta = {
        "format": FORMAT,
        "config": compiled.cfg.to_dict(),
        "batch": compiled.batch,
        "predicted_cycles": compiled.predicted_cycles,
        "instructions": compiled.instructions,
        "input": {"shape": list(model.input_shape), "scale": model.input.scale,
                  "zero_point": model.input.zero_point, **_tensor(compiled.input)},
        "output": {"shape": list(model.output_shape), "scale": model.output.scale,
                   "zero_point": model.output.zero_point, **_tensor(compiled.output)},
        "layers": compiled.layers,
    }
    buffer = io.BytesIO()
    np.savez_compressed(buffer, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
                        **{name: getattr(compiled.state, name) for name in IMAGES})
    return buffer.getvalue()


def load_artifact(path):
    """(meta dict, {image name: array}) of a compiled-program file."""
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(bytes(data["meta"]).decode())
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path}: not a Lockstep compiled program ({meta.get('format')!r})")
        return meta, {name: data[name].copy() for name in IMAGES}
