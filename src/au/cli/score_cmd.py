"""``au score``: fit the coverage detectors on a run's training data; score in- and out-of-distribution sets."""

from __future__ import annotations

import argparse
from pathlib import Path

from au.cli import text_table
from au.cli.options import add_engine, check_engine, names, nonneg_int, positive_int
from au.detectors.registry import NAMES
from au.errors import AUError
from au.score.config import DEFAULT_OOD, ScoreConfig
from au.spaces.names import NAMES as SPACE_NAMES


def register(sub: argparse._SubParsersAction, help_text: str) -> None:
    p = sub.add_parser(
        "score",
        help=help_text,
        description=f"Fit each detector ({', '.join(NAMES)}) on the in-distribution training split, score its "
        "test split and every OOD set, and write scores.parquet (one row per input, one column per detector, "
        "higher = more in-distribution) and manifest.json (AUROC, AUPR-in, AUPR-out, FPR at 95%% TPR, detection "
        "accuracy; misclassification AUROC).",
    )
    c = ScoreConfig
    p.add_argument("--run", required=True, type=Path, help="run directory of 'au train'")
    p.add_argument("--in", dest="in_data", help="in-distribution dataset spec (default: the run's own)")
    p.add_argument(
        "--ood",
        type=names,
        help=f"comma-separated OOD dataset specs (default {','.join(DEFAULT_OOD)})",
    )
    p.add_argument(
        "--detectors",
        default="all",
        help=f"'all' (with --engine spark: all that scale out) or comma-separated: {','.join(NAMES)}",
    )
    p.add_argument("--layer", help="feature layer of the feature detectors (default: the penultimate layer)")
    p.add_argument(
        "--space",
        choices=SPACE_NAMES,
        help="a feature space other than the network's for the feature detectors: raw pixels, HOG, or bags of ORB "
        "or BRISK descriptors (the model still gives the predictions)",
    )
    p.add_argument(
        "--acts", type=Path, help="a finished recording of the training split to fit on (au record)"
    )
    p.add_argument("--limit", type=positive_int, help="score at most N random inputs of each set")
    p.add_argument("--fit-limit", type=positive_int, help="fit on at most N training examples")
    p.add_argument(
        "--val-size",
        type=nonneg_int,
        default=c.val_size,
        help=f"in-distribution validation examples, 0 for none (default {c.val_size})",
    )
    p.add_argument(
        "--val-ood",
        help="OOD validation dataset spec, for the detectors that tune on one (odin, the ensemble)",
    )
    p.add_argument("--seed", type=nonneg_int, default=c.seed, help=f"default {c.seed}")
    p.add_argument("--out", required=True, type=Path, help="scores directory")
    add_engine(p, "fitting and scoring")
    p.add_argument(
        "--test-acts",
        type=Path,
        help="with --engine spark: the recording of the in-distribution set to score",
    )
    p.add_argument(
        "--ood-acts",
        type=names,
        help="with --engine spark: comma-separated recordings of the OOD sets to score",
    )
    p.set_defaults(handler=run)


def _ood_spec(text: str, input_shape: tuple[int, int, int]) -> str:
    """Noise sets take the model's image shape unless the spec sets one."""
    from au.data.sources.noise import DEFAULT_SHAPE
    from au.data.spec import parse_spec

    spec = parse_spec(text, ("shape",))
    c, h, w = input_shape
    if spec.name.startswith("noise-") and spec.option("shape") is None and (h, w, c) != DEFAULT_SHAPE:
        return f"{text}:shape={h}x{w}x{c}"
    return text


def run(args: argparse.Namespace) -> int:
    from au import data
    from au.score.score_job import score_run
    from au.train.rundir import load_run

    master = check_engine(
        args,
        {"--test-acts": args.test_acts, "--ood-acts": args.ood_acts},
        {
            "--in": args.in_data,
            "--ood": args.ood,
            "--val-ood": args.val_ood,
            "--limit": args.limit,
            "--space": args.space,
        },
    )
    if master is not None and (args.acts is None or args.test_acts is None):
        args.parser.error(
            "--engine spark scores recordings: give --acts TRAIN_RECORDING and --test-acts RECORDING"
        )
    config = ScoreConfig(
        detectors=NAMES if args.detectors == "all" else names(args.detectors),
        layer=args.layer,
        space=args.space,
        limit=args.limit,
        fit_limit=args.fit_limit,
        val_size=args.val_size,
        seed=args.seed,
    )
    trained = load_run(args.run)
    if master is not None:
        return _run_spark(args, config, trained, master)
    if args.ood is not None and not args.ood:
        raise AUError("--ood lists no dataset; give at least one OOD dataset spec")
    args.ood = DEFAULT_OOD if args.ood is None else args.ood
    shape = tuple(getattr(trained.model, "input_shape", ()))
    ood_specs = [_ood_spec(s, shape) if shape else s for s in args.ood]
    train, test = data.load_train_test(args.in_data or trained.data_spec)
    ood = [data.load(s, data.evaluation_split(s)) for s in ood_specs]
    val_ood = data.load(args.val_ood, data.evaluation_split(args.val_ood)) if args.val_ood else None
    manifest = score_run(
        trained.model,
        train,
        test,
        ood,
        args.out,
        config,
        val_ood=val_ood,
        acts=args.acts,
        model_name=trained.manifest["model"],
        weights_sha256=trained.manifest["weights"]["sha256"],
        run_dir=str(args.run),
    )
    print(f"{args.out}  (layer {manifest['layer']}, {manifest['in_distribution']['n_fit']:,} fitted)")
    print_table(manifest)
    return 0


def _run_spark(args: argparse.Namespace, config: ScoreConfig, trained, master: str) -> int:
    from dataclasses import replace

    from au.engines.spark.score import scalable_detectors, score_spark

    if args.detectors == "all":  # every detector that scales out; the others are refused by name
        config = replace(config, detectors=scalable_detectors())

    sets = [(args.test_acts, False), *[(Path(p), True) for p in args.ood_acts or ()]]
    manifest = score_spark(
        args.acts,
        sets,
        args.out,
        config,
        master=master,
        weights_sha256=trained.manifest["weights"]["sha256"],
        model_name=trained.manifest["model"],
        run_dir=str(args.run),
    )
    print(f"{args.out}  (layer {manifest['layer']}, {manifest['in_distribution']['n_fit']:,} fitted, Spark)")
    print_table(manifest)
    return 0


def print_table(manifest: dict) -> None:
    from au.score.score_job import metrics_rows

    header = ["detector", "OOD set", "AUROC", "AUPR-in", "AUPR-out", "FPR@95", "det.acc"]
    rows = [[r[0], r[1], *(f"{v:.4f}" for v in r[2:])] for r in metrics_rows(manifest)]
    text_table.print_table(header, rows, left=(0, 1))
    print("\nmisclassification AUROC (correct vs wrong, in-distribution test):")
    for name, m in manifest["detectors"].items():
        value = m["misclassification_auroc"]
        print(f"  {name:<22} {'n/a (no errors)' if value is None else f'{value:.4f}'}")
