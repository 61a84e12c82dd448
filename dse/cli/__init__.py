"""The ``dse`` command line.

Each subcommand lives in its own module here and exposes ``register(subparsers)``, which adds its
parser and sets ``func`` to a function ``(args) -> int``. Modules are discovered, so adding a command
touches only its own file. When the command line names a subcommand, only that module is
imported, so ``dse designs`` does not pay for torch just because ``dse inject`` needs it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from typing import NoReturn

from dse.errors import DseError


def _show_defaults(parser: argparse.ArgumentParser) -> None:
    """Append every option's meaningful default to its ``--help`` line.

    Not for None/False (flags and "not given") nor where the help already names its default.
    """
    for action in parser._actions:
        default = action.default
        if (not action.option_strings or default is None or default is False or default == []
                or default == argparse.SUPPRESS
                or "default" in (action.help or "") or action.help == argparse.SUPPRESS):
            continue
        # (not map(): the ``dse map`` submodule shadows the builtin in this package's namespace)
        shown = " ".join(str(d) for d in default) if isinstance(default, (list, tuple)) else default
        text = f"(default: {shown})".replace("%", "%%")
        action.help = f"{action.help} {text}" if action.help else text


def _command_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


class _Parser(argparse.ArgumentParser):
    """argparse with its errors as one line (no usage block): the same shape as every other
    input error, so scripts and users read one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message.splitlines()[0] if message else ''}\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="dse",
        description="Design-space exploration of DNN accelerators: efficiency and resilience.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in [only] if only else _command_modules():
        importlib.import_module(f"{__name__}.{name}").register(sub)
    for command in sub.choices.values():
        command.formatter_class = argparse.RawDescriptionHelpFormatter
        _show_defaults(command)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    first = next((a for a in argv if not a.startswith("-")), "").replace("-", "_")
    parser = build_parser(first if first in _command_modules() else None)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a flag argparse refused (one line, see _Parser)
        return exc.code if isinstance(exc.code, int) else 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        status = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows up here, inside the handler below
        return status
    except BrokenPipeError:
        return _closed_pipe()
    except DseError as exc:
        print(f"dse {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dse {args.command}: interrupted", file=sys.stderr)
        return 130


def _closed_pipe() -> int:
    """The reader went away (``dse results | head``): stop quietly, like any Unix filter.

    Python would report the failed flush of stdout at exit, so stdout is pointed at /dev/null
    first; the status is the shell's for a process killed by SIGPIPE.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 141
