"""``au perturb``: perturb one layer's activations and measure accuracy, changed predictions and coverage scores."""

from __future__ import annotations

import argparse
from pathlib import Path

from au.cli.options import finite_number, names, nonneg_float_list, nonneg_int, nonneg_int_list, positive_int
from au.explain.config import PerturbConfig


def _scale(text: str) -> tuple[tuple[int, ...], float]:
    """``UNITS:FACTOR``, e.g. ``3,7:0.5``."""
    units, sep, factor = text.rpartition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r}: write UNITS:FACTOR, e.g. 3,7:0.5")
    return nonneg_int_list(units), finite_number(factor)


def register(sub: argparse._SubParsersAction, help_text: str) -> None:
    p = sub.add_parser(
        "perturb",
        help=help_text,
        description="Add Gaussian noise of sigma x each unit's training standard deviation to one layer's "
        "activations (and optionally zero or scale chosen units), propagate it through the network, and measure on "
        "the test split: accuracy, the share of predictions that change, each detector's score shift and its AUROC of "
        "perturbed against clean inputs. Writes perturb.parquet (one row per setting) and sigma_sweep.png.",
    )
    c = PerturbConfig
    p.add_argument("--run", required=True, type=Path, help="run directory of 'au train'")
    p.add_argument("--data", help="dataset spec (default: the run's own)")
    p.add_argument("--layer", required=True, help="the layer whose activations are perturbed")
    p.add_argument(
        "--sigmas",
        type=nonneg_float_list,
        default=c.sigmas,
        help="comma-separated noise levels (default 0,0.25,0.5,1,2,4)",
    )
    p.add_argument(
        "--zero", type=nonneg_int_list, help="also: units (channels of a conv layer) set to zero, e.g. 3,17"
    )
    p.add_argument(
        "--scale", type=_scale, help="also: units multiplied by a factor, UNITS:FACTOR, e.g. 3,17:0.5"
    )
    p.add_argument(
        "--top-units",
        type=positive_int,
        help="also: the K units of highest mean training activation set to zero",
    )
    p.add_argument(
        "--detectors", type=names, help="detectors reading features or logits (default: the quick ones)"
    )
    p.add_argument("--detector-layer", help="feature layer of the detectors (default: the penultimate layer)")
    p.add_argument(
        "--fit-limit",
        type=positive_int,
        default=c.fit_limit,
        help=f"training examples (default {c.fit_limit})",
    )
    p.add_argument("--limit", type=positive_int, help="test inputs (default: all)")
    p.add_argument("--seed", type=nonneg_int, default=c.seed, help=f"default {c.seed}")
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from au import data
    from au.cli import text_table
    from au.explain.perturb_job import perturb_run
    from au.train.rundir import load_run

    config = PerturbConfig(
        layer=args.layer,
        sigmas=args.sigmas,
        zero=args.zero,
        scale=args.scale,
        top_units=args.top_units,
        detectors=args.detectors or None,
        detector_layer=args.detector_layer,
        fit_limit=args.fit_limit,
        limit=args.limit,
        seed=args.seed,
    )
    trained = load_run(args.run)
    train, test = data.load_train_test(args.data or trained.data_spec)
    m = perturb_run(
        trained.model,
        trained.training_data(train),
        test,
        args.out,
        config,
        model_name=trained.manifest["model"],
        weights_sha256=trained.manifest["weights"]["sha256"],
        run_dir=str(args.run),
    )
    header = ["kind", "sigma", "units", "accuracy", "changed", *(f"{d} AUROC" for d in m["detectors"])]
    rows = [
        [
            r["kind"],
            "" if r["sigma"] is None else f"{r['sigma']:g}",
            r["units"][:20],
            f"{r['accuracy']:.4f}",
            f"{r['changed']:.4f}",
            *(f"{r[f'{d}_auroc']:.4f}" for d in m["detectors"]),
        ]
        for r in m["rows"]
    ]
    print(
        f"{args.out}  (layer {m['layer']}, detectors at {m['detector_layer']}, {m['n_test']:,} test inputs)"
    )
    text_table.print_table(header, rows, left=(0, 2))
    return 0
