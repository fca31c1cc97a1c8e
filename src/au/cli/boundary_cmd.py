"""``au boundary``: what the classifier, every detector and the certificate say of a confident run's generated
samples; with --baseline, the standard against the confident classifier on the same OOD sets."""

from __future__ import annotations

import argparse
from pathlib import Path

from au.cli.options import positive_int
from au.generate.boundary_config import BoundaryConfig


def register(sub: argparse._SubParsersAction, help_text: str) -> None:
    p = sub.add_parser(
        "boundary",
        help=help_text,
        description="Read an 'au score' directory of a confident classifier (au train --confident) that scored its "
        "generated samples (--ood generated:RUN) and write, per sample, its class probabilities and every "
        "detector's score (boundary.parquet); with --gold, which certified selective classifiers would accept it "
        "(acceptance.parquet); guided-backprop maps of the first samples (captum); with --baseline, the scores of a "
        "standard classifier on the same OOD sets, compared by AUROC and TNR at 95%% TPR (comparison.parquet); "
        "and report.html.",
    )
    p.add_argument(
        "--scores", required=True, type=Path, help="'au score' directory of the confident classifier"
    )
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--gold", type=Path, help="'au gold' directory certified from --scores")
    p.add_argument(
        "--baseline", type=Path, help="'au score' directory of a standard classifier, same OOD sets"
    )
    p.add_argument(
        "--decode", type=Path, help="'au decode' directory whose decoded density samples join the report"
    )
    p.add_argument(
        "--generated",
        help="the scored set of generated samples (default: the one generated:RUN set of --scores)",
    )
    p.add_argument(
        "--maps",
        type=positive_int,
        default=BoundaryConfig.maps,
        help=f"samples shown with guided-backprop maps (default {BoundaryConfig.maps})",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from au.generate.boundary_job import boundary_run

    config = BoundaryConfig(generated=args.generated, maps=args.maps)
    manifest = boundary_run(
        args.scores, args.out, config, gold=args.gold, baseline=args.baseline, decode=args.decode
    )
    s = manifest["summary"]
    print(
        f"{args.out}: {s['samples']:,} samples of {manifest['generated']}, mean maximum softmax {s['mean_msp']:.3f}"
    )
    if "largest_accepted_share" in s:
        print(
            f"  largest share accepted by a certified selective classifier: {s['largest_accepted_share']:.3f}"
        )
    if "test_accuracy_standard" in s:
        print(
            f"  test accuracy: standard {s['test_accuracy_standard']:.4f}, confident {s['test_accuracy_confident']:.4f}"
        )
    return 0
