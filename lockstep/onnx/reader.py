"""Reading an ONNX file: a path, bytes or a ModelProto, checked by onnx's checker."""

import os

from ..qmodel import ModelError

__all__ = ["read_model", "onnx_module", "one_line"]


def onnx_module():
    try:
        import onnx
    except ImportError:   # pragma: no cover - onnx is a dependency
        raise ModelError("ONNX import needs the onnx package (pip install onnx)") from None
    return onnx


def one_line(exc):
    text = " ".join(str(exc).split())
    return text[:300] + ("..." if len(text) > 300 else "") if text else type(exc).__name__


def read_model(source):
    """An ``onnx.ModelProto`` from a path, the file's bytes or a ModelProto; ModelError (one
    line) for what is not a valid ONNX model."""
    onnx = onnx_module()
    from google.protobuf.message import DecodeError
    if isinstance(source, onnx.ModelProto):
        model = source
    elif isinstance(source, (bytes, bytearray, memoryview)):
        try:
            model = onnx.load_model_from_string(bytes(source))
        except (DecodeError, ValueError, RuntimeError) as exc:
            raise ModelError(f"not a valid ONNX file: {one_line(exc)}") from None
    elif isinstance(source, (str, os.PathLike)):
        try:
            model = onnx.load(os.fspath(source))
        except OSError as exc:
            raise ModelError(f"cannot read {os.fspath(source)}: "
                             f"{exc.strerror or one_line(exc)}") from None
        except (DecodeError, ValueError, RuntimeError) as exc:
            raise ModelError(f"not a valid ONNX file: {os.fspath(source)}: "
                             f"{one_line(exc)}") from None
    else:
        raise TypeError(f"load_onnx takes a path, bytes or an onnx.ModelProto, "
                        f"not {type(source).__name__}")
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError, RuntimeError) as exc:
        raise ModelError(f"not a valid ONNX file: {one_line(exc)}") from None
    return model
