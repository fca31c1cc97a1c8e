"""``au gold``: certify each coverage score's selective risk, check it on random splits, rank the scores."""

from __future__ import annotations

import argparse
from pathlib import Path

from au.cli import text_table
from au.cli.options import names, nonneg_int, open_fraction, open_fraction_list, positive_int
from au.detectors.registry import QUICK
from au.gold.config import GoldConfig, TrainingSizeOptions


def register(sub: argparse._SubParsersAction, help_text: str) -> None:
    p = sub.add_parser(
        "gold",
        help=help_text,
        description="For each detector of the scores directories and each target risk epsilon, find the threshold "
        "of largest coverage whose selective risk is at most epsilon with probability 1 - delta (SGR with "
        "Clopper-Pearson bounds, Geifman & El-Yaniv 2017), check it on random calibration/test splits, and rank "
        "the detectors by coverage. Writes leaderboard.json, splits.parquet, plots and report.html.",
    )
    c = GoldConfig
    p.add_argument(
        "--scores",
        required=True,
        type=names,
        help="comma-separated 'au score' directories of one model (several = layers)",
    )
    p.add_argument(
        "--epsilon",
        type=open_fraction_list,
        default=c.epsilons,
        help=f"target selective risks in (0, 1) (default {','.join(f'{e:g}' for e in c.epsilons)})",
    )
    p.add_argument(
        "--delta",
        type=open_fraction,
        default=c.delta,
        help=f"allowed failure probability (default {c.delta:g})",
    )
    p.add_argument(
        "--splits",
        type=positive_int,
        default=c.n_splits,
        help=f"random calibration/test splits (default {c.n_splits})",
    )
    p.add_argument(
        "--cal-fraction",
        type=open_fraction,
        default=c.cal_fraction,
        help=f"share of inputs that calibrate (default {c.cal_fraction:g})",
    )
    p.add_argument(
        "--mixed",
        type=names,
        default=c.mixed,
        help="also certify a stream of in-distribution plus OOD inputs: 'all' or comma-separated OOD set names",
    )
    p.add_argument("--seed", type=nonneg_int, default=c.seed, help=f"default {c.seed}")
    p.add_argument(
        "--bins", type=positive_int, default=c.bins, help=f"reliability-diagram bins (default {c.bins})"
    )
    p.add_argument("--ablation", type=Path, help="an 'au ablate' directory: coverage vs training examples")
    p.add_argument(
        "--ablation-detectors",
        type=names,
        default=QUICK,
        help=f"detectors fitted for each trial model (default {','.join(QUICK)})",
    )
    p.add_argument("--ablation-limit", type=positive_int, help="score at most N test inputs per trial model")
    p.add_argument("--out", required=True, type=Path, help="gold directory")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from au.gold.gold_job import gold_run

    config = GoldConfig(
        epsilons=args.epsilon,
        delta=args.delta,
        n_splits=args.splits,
        cal_fraction=args.cal_fraction,
        seed=args.seed,
        mixed=args.mixed,
        bins=args.bins,
    )
    options = TrainingSizeOptions(detectors=args.ablation_detectors, limit=args.ablation_limit)
    result = gold_run(
        [Path(p) for p in args.scores], args.out, config, ablation=args.ablation, ablation_options=options
    )
    print(f"{args.out}  (delta {config.delta:g}, {config.n_splits} splits)")
    print_table(result)
    return 0


def print_table(result: dict) -> None:
    from au.gold.report import COLUMNS, leaderboard_rows

    header = list(COLUMNS.values())
    rows = [
        [r[0], f"{r[1]:g}", str(r[2]), r[3], *("-" if v is None else f"{v:.4g}" for v in r[4:])]
        for r in leaderboard_rows(result)
    ]
    text_table.print_table(header, rows, left=(0, 3))
    for key, entry in result["gold"].items():
        print(f"gold at {key}: {entry}")
