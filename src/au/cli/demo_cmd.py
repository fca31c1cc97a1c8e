"""``au demo``: the whole pipeline on MNIST, ending in a self-contained report.html."""

from __future__ import annotations

import argparse
from pathlib import Path

from au.cli.options import fraction, nonneg_int, positive_int
from au.demo.config import OUT, DemoConfig


def register(sub: argparse._SubParsersAction, help_text: str) -> None:
    p = sub.add_parser(
        "demo",
        help=help_text,
        description="Train mnist-cnn on MNIST, run a reduced data-ablation sweep and fit its learning curve, record "
        "the model's activations, score every coverage detector against five OOD sets, certify them (the gold "
        "leaderboard), look inside (attribution maps, unit projections, a low-density backtrace, the sigma sweep of "
        "perturbed activations) and write a self-contained report.html. Resumable: re-run the same command after an "
        "interruption.",
    )
    c = DemoConfig
    p.add_argument("--out", type=Path, default=Path(OUT), help=f"output directory (default {OUT})")
    p.add_argument("--seed", type=nonneg_int, default=c.seed, help=f"default {c.seed}")
    p.add_argument(
        "--keep", type=fraction, default=c.keep, help="share of MNIST's training split (a quicker demo)"
    )
    p.add_argument("--epochs", type=positive_int, help="training epochs (default: the model's own)")
    p.add_argument("--max-steps", type=positive_int, help="cap on training steps (a quicker demo)")
    p.add_argument("--record-limit", type=positive_int, help="record only the first N examples of each split")
    p.add_argument(
        "--score-limit",
        type=positive_int,
        default=c.score_limit,
        help=f"inputs scored per set by the coverage detectors (default {c.score_limit})",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from au.demo.demo_job import run_demo

    config = DemoConfig(
        seed=args.seed,
        keep=args.keep,
        epochs=args.epochs,
        max_steps=args.max_steps,
        record_limit=args.record_limit,
        score_limit=args.score_limit,
    )
    print(f"report: {run_demo(config, args.out)}")
    return 0
