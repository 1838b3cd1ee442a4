"""The ``squeezenet`` command line.

Each subcommand lives in ``squeezenet/commands/<name>.py`` with ``add_parser(subparsers)`` and
``run(args) -> dict``. This module only dispatches: with ``--json`` the returned dict is printed as
one JSON object on the last line of stdout; without, a human summary. Bad input (ValueError,
FileNotFoundError, ...) becomes one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import import_module

__all__ = ["main", "UsageError"]

# Subcommand modules in the order `squeezenet --help` lists them.
COMMAND_MODULES = ["evaluate", "predict", "info", "train", "reproduce", "compress", "decompress", "export"]


class UsageError(Exception):
    """A problem with the user's input; printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors: one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="squeezenet", description="Train, compress, measure and deploy small image CNNs (SqueezeNet, AlexNet, Deep Compression).")
    parser.add_argument("--version", action="version", version=_version())
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMAND_MODULES:
        module = import_module(f"squeezenet.commands.{name}")
        sub = module.add_parser(subparsers)
        sub.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")
        sub.set_defaults(run=module.run, summarize=getattr(module, "summarize", None))
    return parser


def _version() -> str:
    from squeezenet import __version__

    return __version__


def _one_line(error: BaseException) -> str:
    text = str(error).strip() or error.__class__.__name__
    if isinstance(error, FileNotFoundError) and error.filename and str(error.filename) not in text:
        text = f"{text}: {error.filename}"
    elif isinstance(error, FileNotFoundError) and error.strerror and error.filename:
        text = f"{error.strerror}: {error.filename}"
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.run(args)
    except KeyboardInterrupt:
        print("squeezenet: interrupted", file=sys.stderr)
        return 130
    except (UsageError, ValueError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError,
            OSError, EOFError) as error:
        print(f"squeezenet {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, sort_keys=False))
    elif args.summarize is not None:
        args.summarize(result)
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
