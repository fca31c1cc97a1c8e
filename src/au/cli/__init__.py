"""The ``au`` command: one sub-command per pipeline stage, each a thin layer over the Python API.

``au COMMAND`` imports only ``au.cli.COMMAND_cmd`` - and that module imports torch and the stage's
job only when it runs - so ``au --help`` and ``au COMMAND --help`` answer at once.

User errors (:class:`au.AUError`, unreadable or unwritable paths) print one line and exit 1; bad
arguments print one line and exit 2. ``AU_DEBUG=1`` shows tracebacks instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from au.cli.options import positive_int
from au.errors import AUError

COMMANDS = {
    "export": "write a dataset split as a Parquet table of PNG images (input for Spark)",
    "train": "train a model on a stratified, seeded keep-fraction of a dataset",
    "ablate": "train one model per (training fraction, trial) and tabulate accuracy",
    "curve": "fit PAC and power-law learning curves to an ablation sweep",
    "record": "record layer activations of a trained model to Parquet",
    "score": "fit coverage detectors and evaluate them on in- and out-of-distribution data",
    "gold": "certified coverage of every coverage score: the gold leaderboard",
    "explain": "attribution maps, unit projections and the low-density backtrace (captum)",
    "perturb": "perturb a layer's activations: accuracy, changed predictions, detector scores",
    "decode": "decode layer activations back to images; sample the density's regions; invert by optimisation",
    "boundary": "a confident classifier's generated samples: probabilities, scores, certificates, guided backprop",
    "demo": "run the whole pipeline on MNIST and write report.html",
    "datasets": "list dataset sources and the spec syntax",
    "models": "list registered models and their layers",
}
"""Sub-command -> one-line help; ``au.cli.<name>_cmd`` holds its arguments (``register``) and ``run``."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, not a usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _chosen(argv: list[str]) -> str | None:
    """The sub-command named in ``argv`` (the first word that is one), if any."""
    return next((a for a in argv if a in COMMANDS), None)


def build_parser(command: str | None = None) -> Parser:
    """The parser; only ``command``'s module is imported to declare its arguments."""
    parser = Parser(
        prog="au", description="AU, Search for Gold: how a CNN's training data relates to its accuracy."
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars or status lines")
    parser.add_argument(
        "--threads", type=positive_int, help="torch CPU threads (results are bit-identical for a fixed count)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, help_text in COMMANDS.items():
        if name == command:
            importlib.import_module(f"au.cli.{name}_cmd").register(sub, help_text)
        else:
            sub.add_parser(name, help=help_text)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_chosen(argv))
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from au import progress
    from au.allocator import tune_malloc

    if args.quiet:
        progress.set_enabled(False)
    tune_malloc()
    prog = f"au {args.command}"
    try:
        if args.threads is not None:
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
