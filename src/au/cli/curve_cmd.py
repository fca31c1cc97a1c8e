"""``au curve``: fit learning curves to a finished sweep; write fits.json and plots."""

from __future__ import annotations

import argparse
from pathlib import Path

from au.cli.options import fraction_list, open_fraction, positive_int
from au.curves import FITS_FILE, CurveOptions, analyse_sweep, sentences
from au.curves.sweep_report import require_sweep


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "curve",
        help="fit PAC and power-law learning curves to an ablation sweep",
        description="Fit acc(m) = 1 - sqrt(c/m) (the PAC finite-class form) and err(m) = a m^-b + e_inf (the power "
        "law of Hestness et al. 2017) to the trials of SWEEP_DIR, with bootstrap intervals over trials, a "
        "held-out check (fit on small fractions, predict the large ones) and the training examples each target "
        "accuracy needs. Writes fits.json and PNG plots into SWEEP_DIR (or --out).",
    )
    p.add_argument("sweep", type=Path, metavar="SWEEP_DIR", help="the --out of 'au ablate'")
    p.add_argument("--out", type=Path, help="where to write fits.json and plots (default: SWEEP_DIR)")
    p.add_argument(
        "--delta", type=open_fraction, default=0.05, help="confidence parameter for ln|H| (default 0.05)"
    )
    p.add_argument(
        "--targets", type=fraction_list, default=(0.99, 0.995), help="target accuracies (default 0.99,0.995)"
    )
    p.add_argument(
        "--holdout-max",
        type=open_fraction,
        default=0.2,
        help="fit on fractions <= this for the held-out check",
    )
    p.add_argument("--bootstrap", type=positive_int, default=1000, help="bootstrap resamples (default 1000)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    options = CurveOptions(
        delta=args.delta, targets=tuple(args.targets), holdout_max=args.holdout_max, bootstrap=args.bootstrap
    )
    result = analyse_sweep(require_sweep(args.sweep), options, args.out)
    print(f"{(args.out or args.sweep) / FITS_FILE}")
    for line in sentences(result.fits):
        print(f"  {line}")
    return 0
