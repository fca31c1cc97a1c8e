"""``au gold``: certify each coverage score's selective risk, check it on random splits, rank the scores."""

from __future__ import annotations

import argparse
from pathlib import Path

from au.cli import text_table
from au.cli.options import open_fraction, positive_int
from au.errors import AUError
from au.guarantees import GoldConfig, TrainingSizeOptions, gold_run
from au.guarantees.leaderboard import LEADERBOARD
from au.guarantees.report import COLUMNS, leaderboard_rows
from au.guarantees.training_size import DEFAULT_DETECTORS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gold",
        help="certified coverage of every coverage score: the gold leaderboard",
        description="For each detector of the scores directories and each target risk epsilon, find the threshold "
        "of largest coverage whose selective risk is at most epsilon with probability 1 - delta (SGR with "
        "Clopper-Pearson bounds, Geifman & El-Yaniv 2017), check it on random calibration/test splits, and rank "
        "the detectors by coverage. Writes leaderboard.json, splits.parquet, plots and report.html.",
    )
    p.add_argument(
        "--scores",
        required=True,
        help="comma-separated 'au score' directories of one model (several = layers)",
    )
    p.add_argument(
        "--epsilon", default="0.01,0.02,0.05", help="target selective risks in (0, 1) (0.01,0.02,0.05)"
    )
    p.add_argument("--delta", default="0.05", help="allowed failure probability in (0, 1) (0.05)")
    p.add_argument("--splits", type=positive_int, default=200, help="random calibration/test splits (200)")
    p.add_argument(
        "--cal-fraction", type=open_fraction, default=0.5, help="share of inputs that calibrate (0.5)"
    )
    p.add_argument(
        "--mixed",
        default="",
        help="also certify a stream of in-distribution plus OOD inputs: 'all' or comma-separated OOD set names",
    )
    p.add_argument("--ablation", type=Path, help="an 'au ablate' directory: coverage vs training examples")
    p.add_argument(
        "--ablation-detectors",
        default=",".join(DEFAULT_DETECTORS),
        help=f"detectors fitted for each trial model ({','.join(DEFAULT_DETECTORS)})",
    )
    p.add_argument(
        "--ablation-limit", type=positive_int, help="score at most N random test inputs per trial model"
    )
    p.add_argument("--bins", type=positive_int, default=15, help="reliability-diagram bins (15)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, type=Path, help="gold directory")
    p.set_defaults(handler=run)


def _numbers(text: str, option: str) -> tuple[float, ...]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        return tuple(float(p) for p in parts)
    except ValueError:
        raise AUError(
            f"{option} {text!r}: expected comma-separated numbers in (0, 1), e.g. 0.01,0.02"
        ) from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def run(args: argparse.Namespace) -> int:
    delta = _numbers(args.delta, "--delta")
    if len(delta) != 1:
        raise AUError(f"--delta {args.delta!r}: expected one number in (0, 1), e.g. 0.05")
    config = GoldConfig(
        epsilons=_numbers(args.epsilon, "--epsilon"),
        delta=delta[0],
        n_splits=args.splits,
        cal_fraction=args.cal_fraction,
        seed=args.seed,
        mixed=_names(args.mixed),
        bins=args.bins,
    )
    options = TrainingSizeOptions(detectors=_names(args.ablation_detectors), limit=args.ablation_limit)
    result = gold_run(
        [Path(p) for p in _names(args.scores)],
        args.out,
        config,
        ablation=args.ablation,
        ablation_options=options,
    )
    print(f"{args.out / LEADERBOARD}  (delta {config.delta:g}, {config.n_splits} splits)")
    print_table(result)
    return 0


def print_table(result: dict) -> None:
    header = list(COLUMNS.values())
    rows = [
        [r[0], f"{r[1]:g}", str(r[2]), r[3], *("-" if v is None else f"{v:.4g}" for v in r[4:])]
        for r in leaderboard_rows(result)
    ]
    text_table.print_table(header, rows, left=(0, 3))
    for key, entry in result["gold"].items():
        print(f"gold at {key}: {entry}")
