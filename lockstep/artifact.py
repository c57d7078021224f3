"""The compiled-program file written by ``lockstep compile``: one .npz with every SRAM image the
program needs (program, weights, requantisation parameters) and a JSON description of the core
it is for, the ISA version, where the input goes and where the output comes from, the host
layers that follow the core (a final softmax) and each layer's figures.

:func:`load_compiled` turns the file back into a :class:`~lockstep.compiler.CompiledModel`
that every backend runs as it runs a freshly compiled one; :func:`check_core` refuses, in one
line, a file compiled for another core than the one it is to run on.
"""

import io
import json
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from rtl.config import ConfigError, CoreConfig
from rtl.hostmap import VERSION as ISA_VERSION
from sim.model import CoreState

from .compiler import CompiledModel
from .compiler.layout import Layout
from .qmodel import ModelError, QParams, Softmax

__all__ = ["save_compiled", "load_compiled", "check_core", "ArtifactError", "FORMAT"]

FORMAT = "lockstep-compiled-3"
IMAGES = ("prog", "wgt", "bias", "mult", "shift")
#: The host layers a file can name, by their "op".
HOST_LAYERS = {"softmax": Softmax}


class ArtifactError(ValueError):
    """A compiled-program file that cannot be run here (one line: the file and why)."""


@dataclass
class ModelInterface:
    """What running a compiled program needs of its model: the input's shape and
    quantisation, the core output's quantisation and the host layers that follow it (the
    part of :class:`~lockstep.qmodel.QModel` that a compiled-program file keeps)."""
    input_shape: tuple
    input: QParams
    output: QParams
    output_shape: tuple
    host_layers: list
    name: str = "model"

    def finish(self, y):
        """The float output from the core's int8 output: dequantised, then the host layers."""
        y = self.output.dequantize(y)
        for layer in self.host_layers:
            y = layer.apply(y)
        return y


def _tensor(t):
    return {"base": t.base, "layout_shape": list(t.shape), "pads": list(t.pads),
            "transposed": t.transposed, "align": t.align}


def _layout(meta, batch):
    return Layout(shape=tuple(meta["layout_shape"]), batch=batch, align=meta["align"],
                  pads=tuple(meta["pads"]), transposed=meta["transposed"], base=meta["base"])


def save_compiled(compiled):
    """The .npz bytes of a :class:`~lockstep.compiler.CompiledModel`."""
    model = compiled.model
    meta = {
        "format": FORMAT,
        "isa_version": ISA_VERSION,
        "name": model.name,
        "config": compiled.cfg.to_dict(),
        "batch": compiled.batch,
        "predicted_cycles": compiled.predicted_cycles,
        "instructions": compiled.instructions,
        "act_bytes": compiled.act_bytes, "wgt_rows": compiled.wgt_rows,
        "qparam_rows": compiled.qparam_rows,
        "input": {"shape": list(model.input_shape), "scale": model.input.scale,
                  "zero_point": model.input.zero_point, **_tensor(compiled.input)},
        "output": {"shape": list(model.output_shape), "scale": model.output.scale,
                   "zero_point": model.output.zero_point, **_tensor(compiled.output)},
        "host_layers": [{"op": "softmax", "name": layer.name} for layer in model.host_layers],
        "layers": compiled.layers,
    }
    buffer = io.BytesIO()
    np.savez_compressed(buffer, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
                        **{name: getattr(compiled.state, name) for name in IMAGES})
    return buffer.getvalue()


def load_artifact(path):
    """(meta dict, {image name: array}) of a compiled-program file; ArtifactError if it is not
    one this version of Lockstep reads."""
    if not Path(path).is_file():
        raise ArtifactError(f"no such compiled program: {path}")
    if not zipfile.is_zipfile(path):
        raise ArtifactError(f"{path}: not a Lockstep compiled program (not an .npz file)")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            images = {name: data[name].copy() for name in IMAGES}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path}: not a Lockstep compiled program ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise ArtifactError(f"{path}: not a Lockstep compiled program of format {FORMAT} "
                            f"(found {found!r}); compile the model again")
    if meta.get("isa_version") != ISA_VERSION:
        raise ArtifactError(f"{path}: compiled for ISA version {meta.get('isa_version')}, this "
                            f"Lockstep is version {ISA_VERSION}; compile the model again")
    return meta, images


def load_compiled(path):
    """The :class:`~lockstep.compiler.CompiledModel` in a compiled-program file."""
    meta, images = load_artifact(path)
    try:
        missing = sorted({f.name for f in fields(CoreConfig)} - set(meta["config"]))
        if missing:   # a default would stand in for it: maybe not the core it was compiled for
            raise ArtifactError(f"{path}: a damaged compiled program (its core has no "
                                f"{', '.join(missing)})")
        cfg = CoreConfig.from_dict(meta["config"])
        batch = int(meta["batch"])
        state = CoreState(cfg)
        for name, image in images.items():
            target = getattr(state, name)
            if image.shape != target.shape or image.dtype != target.dtype:
                raise ArtifactError(f"{path}: its {name} image is {image.dtype} "
                                    f"{list(image.shape)}, the core it names holds "
                                    f"{target.dtype} {list(target.shape)}")
            target[...] = image
        hosts = [HOST_LAYERS[layer["op"]](name=layer["name"]) for layer in meta["host_layers"]]
        model = ModelInterface(
            input_shape=tuple(meta["input"]["shape"]), output_shape=tuple(meta["output"]["shape"]),
            input=QParams(meta["input"]["scale"], meta["input"]["zero_point"]),
            output=QParams(meta["output"]["scale"], meta["output"]["zero_point"]),
            host_layers=hosts, name=meta.get("name", "model"))
        return CompiledModel(
            cfg=cfg, model=model, batch=batch, state=state,
            input=_layout(meta["input"], batch), output=_layout(meta["output"], batch),
            predicted_cycles=int(meta["predicted_cycles"]), act_bytes=meta["act_bytes"],
            wgt_rows=meta["wgt_rows"], qparam_rows=meta["qparam_rows"], layers=meta["layers"])
    except ArtifactError:
        raise
    except (KeyError, TypeError, ValueError, ConfigError, ModelError) as exc:
        raise ArtifactError(f"{path}: a damaged compiled program ({type(exc).__name__}: "
                            f"{exc})") from None


def check_core(compiled, cfg, where, path):
    """Refuse (ArtifactError, one line) to run ``compiled`` on core ``cfg``, described by
    ``where`` (e.g. "--board icebreaker"), unless it was compiled for exactly that core."""
    if compiled.cfg == cfg:
        return
    differ = [f"{f.name} ({getattr(compiled.cfg, f.name)} vs {getattr(cfg, f.name)})"
              for f in fields(CoreConfig) if getattr(compiled.cfg, f.name) != getattr(cfg, f.name)]
    shown = ", ".join(differ[:4]) + (f" and {len(differ) - 4} more" if len(differ) > 4 else "")
    raise ArtifactError(f"{path} was compiled for another core than {where}'s: they differ in "
                        f"{shown}; compile it for that core, or run it without core options")
