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
        description="Train mnist-cnn on MNIST, run a reduced data-ablation sweep and fit its learning curve, record "
        "the model's activations, and write a self-contained report.html. Resumable: re-run the same command "
        "after an interruption.",
    )
    p.add_argument("--out", type=Path, default=DemoConfig.out, help="output directory (default runs/demo)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--keep", type=fraction, default=1.0, help="share of MNIST's training split (a quicker demo)"
    )
    p.add_argument("--epochs", type=positive_int, help="training epochs (default: the model's own)")
    p.add_argument("--max-steps", type=positive_int, help="cap on training steps (a quicker demo)")
    p.add_argument("--record-limit", type=positive_int, help="record only the first N examples of each split")
    p.add_argument(
        "--score-limit",
        type=positive_int,
        default=DemoConfig.score_limit,
        help=f"inputs scored per set by the coverage detectors (default {DemoConfig.score_limit})",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    report = run_demo(
        DemoConfig(
            out=args.out,
            seed=args.seed,
            keep=args.keep,
            epochs=args.epochs,
            max_steps=args.max_steps,
            record_limit=args.record_limit,
            score_limit=args.score_limit,
        )
    )
    print(f"report: {report}")
    return 0
