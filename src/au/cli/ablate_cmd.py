"""``au ablate``: a data-ablation sweep, one model per (fraction, trial), into a resumable directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from au.ablation.config import DEFAULT_FRACTIONS, SWEEP_TRAINING, SweepConfig
from au.cli.options import (
    add_augment,
    add_engine,
    check_engine,
    fraction_list,
    nonneg_int,
    positive_float,
    positive_int,
)
from au.errors import AUError


def register(sub: argparse._SubParsersAction, help_text: str) -> None:
    p = sub.add_parser(
        "ablate",
        help=help_text,
        description="Train one model per (fraction, trial) on stratified, seeded, nested subsets of the training "
        "split, with early stopping on each trial's own validation carve-out, test each on the whole test split, "
        "and write one row per trial to OUT/trials.parquet. Re-running the same command resumes; a different "
        "sweep into the same directory is refused. With --ablate-class K, class K alone is shrunk to each of "
        "--class-fractions while every other class stays whole.",
    )
    p.add_argument("--model", required=True, help="registered model (see 'au models')")
    p.add_argument("--data", required=True, help="dataset spec (see 'au datasets')")
    p.add_argument("--out", required=True, type=Path, help="sweep directory")
    p.add_argument(
        "--fractions",
        type=fraction_list,
        default=DEFAULT_FRACTIONS,
        help="comma-separated keep-fractions in (0, 1] (default: "
        + ",".join(f"{f:g}" for f in DEFAULT_FRACTIONS)
        + ")",
    )
    p.add_argument(
        "--trials",
        type=positive_int,
        default=SweepConfig.trials,
        help=f"trials per fraction; trial t uses seed+t (default {SweepConfig.trials})",
    )
    p.add_argument("--seed", type=nonneg_int, default=SweepConfig.seed, help=f"default {SweepConfig.seed}")
    p.add_argument("--ablate-class", type=nonneg_int, metavar="K", help="shrink class K alone")
    p.add_argument(
        "--class-fractions", type=fraction_list, help="keep-fractions of class K (with --ablate-class)"
    )
    t = SWEEP_TRAINING
    p.add_argument("--max-steps", type=positive_int, help=f"step budget per trial (default {t.max_steps})")
    p.add_argument("--epochs", type=positive_int, help=f"epoch cap per trial (default {t.epochs})")
    p.add_argument(
        "--patience", type=positive_int, help=f"early-stopping patience in evaluations (default {t.patience})"
    )
    p.add_argument("--batch-size", type=positive_int, help=f"default {t.batch_size}")
    p.add_argument("--lr", type=positive_float, help=f"Adam's learning rate, constant (default {t.lr:g})")
    add_augment(p)
    p.add_argument("--workers", type=positive_int, help="trials run at once, one process each (default 1)")
    p.add_argument(
        "--threads-per-trial", type=positive_int, help="torch threads per trial (default: cores / workers)"
    )
    add_engine(p, "the trials")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from au.ablation.ablate_job import run_sweep
    from au.models import model_spec

    master = check_engine(
        args, {}, {"--workers": args.workers, "--threads-per-trial": args.threads_per_trial}
    )
    if args.ablate_class is None and args.class_fractions is not None:
        raise AUError("--class-fractions needs --ablate-class K")
    if args.ablate_class is not None and args.class_fractions is None:
        raise AUError("--ablate-class needs --class-fractions, e.g. --class-fractions 0.01,0.1,0.5,1")
    spec = model_spec(args.model)  # an unknown name fails before any data is loaded
    training = SWEEP_TRAINING.updated(
        augment=args.augment or spec.train_defaults.get("augment"),
        max_steps=args.max_steps,
        epochs=args.epochs,
        patience=args.patience,
        batch_size=args.batch_size,
        lr=args.lr,
    )
    sweep = SweepConfig(
        model=args.model,
        data=args.data,
        fractions=args.fractions,
        trials=args.trials,
        seed=args.seed,
        ablate_class=args.ablate_class,
        class_fractions=args.class_fractions or (),
        training=training,
    )
    runner = None
    if master is not None:
        from au.engines.spark.ablate import spark_runner

        runner = spark_runner(master)
    table = run_sweep(
        sweep, args.out, workers=args.workers or 1, threads=args.threads_per_trial, runner=runner
    )
    acc = table.column("test_accuracy").to_pylist()
    print(
        f"{args.out / 'trials.parquet'}: {table.num_rows} trials, test accuracy {min(acc):.4f} .. {max(acc):.4f}"
    )
    return 0
