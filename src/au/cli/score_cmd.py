"""``au score``: fit the coverage detectors on a run's training data; score in- and out-of-distribution sets."""

from __future__ import annotations

import argparse
from pathlib import Path

from au import data
from au.cli import text_table
from au.cli.options import positive_int
from au.data.sources.noise import DEFAULT_SHAPE
from au.data.spec import parse_spec
from au.detectors import DETECTORS
from au.errors import AUError
from au.ood.scoring import DEFAULT_OOD, METRICS, SCORES, ScoreConfig, metrics_rows, score_run
from au.runs import load_run


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score",
        help="fit coverage detectors and evaluate them on in- and out-of-distribution data",
        description="Fit each detector (msp, odin, energy, mahalanobis, mahalanobis_ensemble, knn, parzen_lsh, "
        "trust) on the in-distribution training split, score its test split and every OOD set, and write "
        "scores.parquet (one row per input, one column per detector, higher = more in-distribution) and "
        "metrics.json (AUROC, AUPR-in, AUPR-out, FPR at 95%% TPR, detection accuracy; misclassification AUROC).",
    )
    p.add_argument("--run", required=True, type=Path, help="run directory of 'au train'")
    p.add_argument("--in", dest="in_data", help="in-distribution dataset spec (default: the run's own)")
    p.add_argument(
        "--ood",
        default=",".join(DEFAULT_OOD),
        help=f"comma-separated OOD dataset specs (default {','.join(DEFAULT_OOD)})",
    )
    p.add_argument("--detectors", default="all", help=f"'all' or comma-separated: {','.join(DETECTORS)}")
    p.add_argument("--layer", help="feature layer of the feature detectors (default: the penultimate layer)")
    p.add_argument(
        "--acts", type=Path, help="a finished recording of the training split to fit on (au record)"
    )
    p.add_argument("--limit", type=positive_int, help="score at most N random inputs of each set")
    p.add_argument("--fit-limit", type=positive_int, help="fit on at most N training examples")
    p.add_argument(
        "--val-size", type=positive_int, default=1000, help="in-distribution validation examples (1000)"
    )
    p.add_argument(
        "--val-ood",
        help="OOD validation dataset spec: ODIN tunes epsilon on it, the ensemble's combiner uses it",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, type=Path, help="scores directory")
    p.set_defaults(handler=run)


def _ood_spec(text: str, input_shape: tuple[int, int, int]) -> str:
    """Noise sets take the model's image shape unless the spec sets one."""
    spec = parse_spec(text, ("shape",))
    c, h, w = input_shape
    if spec.name.startswith("noise-") and spec.option("shape") is None and (h, w, c) != DEFAULT_SHAPE:
        return f"{text}:shape={h}x{w}x{c}"
    return text


def run(args: argparse.Namespace) -> int:
    names = (
        tuple(DETECTORS)
        if args.detectors == "all"
        else tuple(d.strip() for d in args.detectors.split(",") if d.strip())
    )
    config = ScoreConfig(
        detectors=names,
        layer=args.layer,
        limit=args.limit,
        fit_limit=args.fit_limit,
        val_size=args.val_size,
        seed=args.seed,
    )
    trained = load_run(args.run)
    model = trained.model
    shape = tuple(getattr(model, "input_shape", ()))
    ood_specs = [
        _ood_spec(s.strip(), shape) if shape else s.strip() for s in args.ood.split(",") if s.strip()
    ]
    if not ood_specs:
        raise AUError("--ood lists no dataset; give at least one OOD dataset spec")
    train, test = data.load_train_test(args.in_data or trained.data_spec)
    ood = [data.load(s, data.evaluation_split(s)) for s in ood_specs]
    val_ood = data.load(args.val_ood, data.evaluation_split(args.val_ood)) if args.val_ood else None
    result = score_run(
        model,
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
    print(
        f"{args.out / SCORES}, {args.out / METRICS}  (layer {result['layer']}, {result['in_distribution']['n_fit']:,} fitted)"
    )
    print_table(result)
    return 0


def print_table(result: dict) -> None:
    header = ["detector", "OOD set", "AUROC", "AUPR-in", "AUPR-out", "FPR@95", "det.acc"]
    rows = [[r[0], r[1], *(f"{v:.4f}" for v in r[2:])] for r in metrics_rows(result)]
    text_table.print_table(header, rows, left=(0, 1))
    print("\nmisclassification AUROC (correct vs wrong, in-distribution test):")
    for name, m in result["detectors"].items():
        value = m["misclassification_auroc"]
        print(f"  {name:<22} {'n/a (no errors)' if value is None else f'{value:.4f}'}")
