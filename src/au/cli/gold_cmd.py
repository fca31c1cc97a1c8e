"""``au gold``: certify each coverage score's selective risk, check it on random splits, rank the scores."""

from __future__ import annotations

import argparse
from pathlib import Path

from au.cli import text_table
from au.cli.options import names, nonneg_int, open_fraction, open_fraction_list, positive_int, unit_fraction
from au.gold.config import METHODS, GoldConfig, TrainingSizeOptions


def register(sub: argparse._SubParsersAction, help_text: str) -> None:
    p = sub.add_parser(
        "gold",
        help=help_text,
        description="For each detector of the scores directories, and a score combining them (combo), and each "
        "target risk epsilon, find the threshold of largest coverage whose selective risk is at most epsilon with "
        "probability 1 - delta (Learn then Test with fixed-sequence testing, Angelopoulos et al. 2021, or SGR, "
        "Geifman & El-Yaniv 2017; exact binomial tests), check it on random calibration/test splits and against a "
        "large held-out population, and rank the scores by coverage. Writes leaderboard.json, splits.parquet, "
        "plots and report.html.",
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
    _add_certificate_options(p, c)
    p.add_argument("--seed", type=nonneg_int, default=c.seed, help=f"default {c.seed}")
    p.add_argument(
        "--bins", type=positive_int, default=c.bins, help=f"reliability-diagram bins (default {c.bins})"
    )
    p.add_argument("--ablation", type=Path, help="an 'au ablate' directory: coverage vs training examples")
    p.add_argument(
        "--ablation-detectors",
        type=names,
        default=TrainingSizeOptions.detectors,
        help=f"detectors fitted for each trial model (default {','.join(TrainingSizeOptions.detectors)})",
    )
    p.add_argument("--ablation-limit", type=positive_int, help="score at most N test inputs per trial model")
    p.add_argument(
        "--needed-coverage",
        type=open_fraction,
        default=TrainingSizeOptions.target,
        help="with --ablation: the certified coverage whose training-data need is predicted "
        f"(default {TrainingSizeOptions.target:g})",
    )
    p.add_argument(
        "--holdout-max",
        type=open_fraction,
        default=TrainingSizeOptions.held_out_max_fraction,
        help="with --ablation: the needed-data fit's held-out check fits on keep-fractions <= this and predicts "
        "the larger ones; keep it below the sweep's largest fraction "
        f"(default {TrainingSizeOptions.held_out_max_fraction:g})",
    )
    p.add_argument("--out", required=True, type=Path, help="gold directory")
    p.set_defaults(handler=run)


def _add_certificate_options(p: argparse.ArgumentParser, c: type[GoldConfig]) -> None:
    """--method, --fit-fraction, --combo and --population-fraction."""
    p.add_argument(
        "--method",
        choices=METHODS,
        default=c.method,
        help=f"the certificate: Learn then Test, SGR, or both side by side (default {c.method})",
    )
    p.add_argument(
        "--fit-fraction",
        type=open_fraction,
        default=c.fit_fraction,
        help="share of each calibration part that never certifies: LTT's ordering and combo's fit "
        f"(default {c.fit_fraction:g})",
    )
    p.add_argument(
        "--combo",
        type=names,
        default=c.combo,
        help="entries the combined score combines: 'auto' (default: every entry when they come from two or more "
        "detectors, else none), 'all' (every entry; an error with fewer than two detectors), 'none', or "
        "comma-separated entries of two or more detectors such as msp,knn@fc1",
    )
    p.add_argument(
        "--population-fraction",
        type=unit_fraction,
        default=c.population_fraction,
        help=f"on streams of at least {c.population_min:,} inputs, repeat the check certifying on this share and "
        f"measuring on all the rest; 0 = don't (default {c.population_fraction:g})",
    )


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
        method=args.method,
        fit_fraction=args.fit_fraction,
        combo=args.combo,
        population_fraction=args.population_fraction or None,
    )
    options = TrainingSizeOptions(
        detectors=args.ablation_detectors,
        limit=args.ablation_limit,
        target=args.needed_coverage,
        held_out_max_fraction=args.holdout_max,
    )
    result = gold_run(
        [Path(p) for p in args.scores], args.out, config, ablation=args.ablation, ablation_options=options
    )
    print(f"{args.out}  (delta {config.delta:g}, {config.n_splits} splits)")
    print_table(result)
    return 0


def print_table(result: dict) -> None:
    from au.gold.report import COLUMNS, leaderboard_rows

    header = list(COLUMNS.values())
    rows = [[r[0], f"{r[1]:g}", str(r[2]), *(_cell(v) for v in r[3:])] for r in leaderboard_rows(result)]
    text_table.print_table(header, rows, left=(0, 3, 4, len(header) - 1))
    for stream, info in result["streams"].items():
        print(f"{stream} stream: {info['guarantee']['line']}")
    for key, entry in result["gold"].items():
        print(f"gold at {key}: {entry}")


def _cell(value) -> str:
    return "-" if value is None else value if isinstance(value, str) else f"{value:.4g}"
