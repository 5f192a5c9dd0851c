"""The `pyengine` command: demo, info, run, check, bench, convert, train.

Each command lives in its own module with `register(subparsers)` (adds its
parser and sets `func`) and `run(args) -> exit status`. Errors a user can
cause end as one line `pyengine: error: ...` and a non-zero status; set
PYENGINE_DEBUG=1 to see the traceback instead.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings

from ._common import CLIError

COMMANDS = ("demo", "info", "run", "check", "bench", "convert", "train")

EPILOG = """examples:
  pyengine demo                         classify digits with the bundled model
  pyengine info model.onnx              inputs, outputs, operators, FLOPs, support
  pyengine run model.onnx --random      run on random inputs and summarize outputs
  pyengine check model.onnx             compare with onnxruntime, find the first bad node
  pyengine bench model.onnx --threads 1,2 --batch 1,16
  pyengine convert model.onnx -o small.onnx --fp16

Run `pyengine COMMAND --help` for a command's options."""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def build_parser() -> argparse.ArgumentParser:
    import importlib
    from .. import __version__
    parser = argparse.ArgumentParser(
        prog="pyengine", formatter_class=_Formatter, epilog=EPILOG,
        description="pyengine: a fast CPU inference engine for ONNX networks.")
    parser.add_argument("--version", action="version", version=f"pyengine {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def add_command(sub, name: str, help: str, description: str, epilog: str) -> argparse.ArgumentParser:
    """A subcommand parser whose --help ends with examples."""
    return sub.add_parser(name, help=help, description=description, epilog="example:\n" + epilog,
                          formatter_class=_Formatter)


def _fail(message: str, code: int = 1) -> int:
    text = " ".join(str(message).strip().split("\n")[0].split()) or "failed"
    sys.stderr.flush()
    print(f"pyengine: error: {text}", file=sys.stderr)
    return code


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    debug = os.environ.get("PYENGINE_DEBUG", "") not in ("", "0")
    with warnings.catch_warnings():
        if not debug:  # one clean line for warnings the commands raise on purpose
            warnings.simplefilter("default")
            warnings.showwarning = _show_warning
        try:
            return int(args.func(args) or 0)
        except KeyboardInterrupt:
            return _fail("interrupted", 130)
        except BrokenPipeError:  # e.g. `pyengine info m.onnx | head`: stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
        except Exception as e:  # noqa: BLE001 - everything ends as one line unless debugging
            if debug:
                raise
            from ..errors import PyEngineError
            known = (CLIError, PyEngineError, FileNotFoundError, IsADirectoryError, PermissionError)
            if isinstance(e, known):
                return _fail(str(e))
            return _fail(f"{type(e).__name__}: {e}")


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"pyengine: warning: {message}", file=sys.stderr)
