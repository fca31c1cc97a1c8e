"""The ``au`` command: one sub-command per pipeline stage, each a thin layer over the Python API.

User errors (:class:`au.AUError`, unreadable or unwritable paths) print one line and exit 1; bad
arguments print one line and exit 2. ``AU_DEBUG=1`` shows tracebacks instead.
"""

from __future__ import annotations

import argparse
import os
import sys

from au import progress
from au.allocator import tune_malloc
from au.cli import (
    ablate_cmd,
    curve_cmd,
    datasets_cmd,
    demo_cmd,
    gold_cmd,
    models_cmd,
    record_cmd,
    score_cmd,
    train_cmd,
)
from au.errors import AUError

COMMANDS = (
    train_cmd,
    ablate_cmd,
    curve_cmd,
    record_cmd,
    score_cmd,
    gold_cmd,
    demo_cmd,
    datasets_cmd,
    models_cmd,
)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, not a usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> Parser:
    parser = Parser(
        prog="au", description="AU, Search for Gold: how a CNN's training data relates to its accuracy."
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars or status lines")
    parser.add_argument(
        "--threads", type=int, help="torch CPU threads (results are bit-identical for a fixed count)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.quiet:
        progress.set_enabled(False)
    tune_malloc()
    prog = f"au {args.command}"
    try:
        if args.threads is not None:
            if args.threads < 1:
                raise AUError(f"--threads must be at least 1, got {args.threads}")
            import torch

            torch.set_num_threads(args.threads)
        return int(args.handler(args) or 0)
    except AUError as e:
        if os.environ.get("AU_DEBUG"):
            raise
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        if os.environ.get("AU_DEBUG"):
            raise
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        print(f"{prog}: error: {where}{e.strerror or e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
