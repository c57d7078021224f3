"""The ``lockstep`` command.

Every user error (a bad configuration, a file that cannot be written) ends in one line on
stderr and a non-zero exit status, never a traceback.
"""

import argparse
import os
import sys
from pathlib import Path

from rtl.config import ConfigError, CoreConfig

__all__ = ["main"]


class UserError(Exception):
    """Something the user can fix; printed as one line."""


def add_config_arguments(parser):
    """Flags for every CoreConfig field, defaulting to CoreConfig's own defaults."""
    defaults = CoreConfig()
    for name, help_text in (
            ("rows", "array rows R (activation lanes)"),
            ("cols", "array columns C (output channels in parallel)"),
            ("act_depth", "activation SRAM rows"),
            ("wgt_depth", "weight SRAM rows"),
            ("acc_depth", "accumulator SRAM rows"),
            ("qparam_depth", "requantisation parameter SRAM rows"),
            ("prog_depth", "program SRAM instructions")):
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=int,
                            default=getattr(defaults, name),
                            help=f"{help_text} (default {getattr(defaults, name)})")


def config_from_args(args):
    values = {name: getattr(args, name) for name in CoreConfig().to_dict()}
    return CoreConfig(**values)


def write_atomically(path, text):
    """Write ``text`` to ``path`` through a temporary file, so a failure leaves nothing half
    written."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(f"cannot write {path}: {exc.strerror}") from None


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


def cmd_demo(args):
    from .demo import run_demo
    run_demo(simulator=args.simulator, seed=args.seed, batch=args.batch)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="lockstep", description="Lockstep: a compiler-scheduled int8 inference core.")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write the core's Verilog")
    add_config_arguments(gen)
    gen.add_argument("-o", "--output", required=True, help="Verilog file to write")
    gen.add_argument("--name", default="lockstep_core", help="top module name")
    gen.set_defaults(func=cmd_generate)

    demo = sub.add_parser("demo", help="run a small int8 network on the golden model and the RTL")
    demo.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator")
    demo.add_argument("--seed", type=int, default=2026)
    demo.add_argument("--batch", type=int, default=8)
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (ConfigError, UserError) as exc:
        print(f"lockstep {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lockstep {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
