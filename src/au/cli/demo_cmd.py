"""``au demo``: the whole pipeline on MNIST, ending in a self-contained report.html."""

from __future__ import annotations

import argparse
from pathlib import Path

from au.cli.options import fraction, positive_int
from au.demo import DemoConfig, run_demo


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the whole pipeline on MNIST and write report.html",
        description="Train mnist-cnn on MNIST and write a self-contained report.html with test accuracy, "
        "per-class metrics and the training curve. Resumable: re-run the same command after an interruption.",
    )
    p.add_argument("--out", type=Path, default=DemoConfig.out, help="output directory (default runs/demo)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--keep", type=fraction, default=1.0, help="share of MNIST's training split (a quicker demo)"
    )
    p.add_argument("--epochs", type=positive_int, help="training epochs (default: the model's own)")
    p.add_argument("--max-steps", type=positive_int, help="cap on training steps (a quicker demo)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    report = run_demo(
        DemoConfig(out=args.out, seed=args.seed, keep=args.keep, epochs=args.epochs, max_steps=args.max_steps)
    )
    print(f"report: {report}")
    return 0
