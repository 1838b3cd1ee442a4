"""The ``squeezenet`` command line.

Each subcommand lives in ``squeezenet/commands/<name>.py`` with ``add_parser(subparsers)`` and
``run(args) -> dict``. This module only dispatches: with ``--json`` the returned dict is printed as
one JSON object on the last line of stdout; without, a human summary. Bad input (ValueError,
FileNotFoundError, ...) becomes one line on stderr and exit status 2, never a traceback; with
``--json`` that line is also printed on stdout as ``{"error": "<the line>"}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib import import_module

__all__ = ["main", "UsageError"]

# Subcommand modules in the order `squeezenet --help` lists them.
COMMAND_MODULES = ["evaluate", "predict", "info", "train", "reproduce", "compress", "decompress", "relabel", "export"]


class UsageError(Exception):
    """A problem with the user's input; printed as one line, exit status 2."""


class _UsageExit(SystemExit):
    """argparse's own error, exit status 2, carrying its one line for ``--json``."""

    def __init__(self, line: str) -> None:
        super().__init__(2)
        self.line = line


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors: one line, exit 2
        line = f"{self.prog}: error: {' '.join(message.split())}"
        self._print_message(line + "\n", sys.stderr)
        raise _UsageExit(line)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="squeezenet", description="Train, compress, measure and deploy small image CNNs (SqueezeNet, AlexNet, Deep Compression).")
    parser.add_argument("--version", action="version", version=_version())
    # Not required: a bare `squeezenet` prints the help with the command list instead of argparse's error.
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
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


def _fail(line: str, json_requested: bool) -> int:
    """The one-line error on stderr (and as JSON on stdout with --json); exit status 2."""
    print(line, file=sys.stderr)
    if json_requested:
        print(json.dumps({"error": line}))
    return 2


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    json_requested = "--json" in arguments
    parser = build_parser()
    try:
        args = parser.parse_args(arguments)
    except _UsageExit as stop:  # the line is on stderr already
        if json_requested:
            print(json.dumps({"error": stop.line}))
        raise
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        result = args.run(args)
    except KeyboardInterrupt:
        print("squeezenet: interrupted", file=sys.stderr)
        return 130
    except (UsageError, ValueError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError,
            OSError, EOFError) as error:
        return _fail(f"squeezenet {args.command}: error: {_one_line(error)}", args.json)
    try:
        if args.json:
            print(json.dumps(result, sort_keys=False))
        elif args.summarize is not None:
            args.summarize(result)
        else:
            for key, value in result.items():
                print(f"{key}: {value}")
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader left early (`squeezenet info ... | head`): stop quietly, as Unix tools do; stdout
        # goes to /dev/null so that Python's own flush at exit does not raise again.
        sys.stdout = open(os.devnull, "w")
    return 0


if __name__ == "__main__":
    sys.exit(main())
