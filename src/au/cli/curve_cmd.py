"""``au curve``: fit learning curves to a finished sweep; write fits.json and plots."""

from __future__ import annotations

import argparse
from pathlib import Path

from au.cli.options import open_fraction, open_fraction_list, positive_int
from au.curves.config import CurveOptions


def register(sub: argparse._SubParsersAction, help_text: str) -> None:
    p = sub.add_parser(
        "curve",
        help=help_text,
        description="Fit acc(m) = 1 - sqrt(c/m) (the PAC finite-class form) and err(m) = a m^-b + e_inf (the power "
        "law of Hestness et al. 2017) to the trials of SWEEP_DIR, with bootstrap intervals over trials, a "
        "held-out check (fit on small fractions, predict the large ones) and the training examples each target "
        "accuracy needs. Writes fits.json and PNG plots into SWEEP_DIR/curve (or --out).",
    )
    o = CurveOptions
    p.add_argument("sweep", type=Path, metavar="SWEEP_DIR", help="the --out of 'au ablate'")
    p.add_argument("--out", type=Path, help="where to write fits.json and plots (default: SWEEP_DIR/curve)")
    p.add_argument(
        "--delta",
        type=open_fraction,
        default=o.delta,
        help=f"confidence parameter for ln|H| (default {o.delta:g})",
    )
    p.add_argument(
        "--targets",
        type=open_fraction_list,
        default=o.targets,
        help=f"target accuracies in (0, 1) (default {','.join(f'{t:g}' for t in o.targets)})",
    )
    p.add_argument(
        "--holdout-max",
        type=open_fraction,
        default=o.holdout_max,
        help=f"fit on fractions <= this for the held-out check (default {o.holdout_max:g})",
    )
    p.add_argument(
        "--bootstrap",
        type=positive_int,
        default=o.bootstrap,
        help=f"bootstrap resamples (default {o.bootstrap})",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from au.curves.curve_job import FITS_FILE, analyse_sweep
    from au.curves.findings import sentences

    options = CurveOptions(
        delta=args.delta, targets=tuple(args.targets), holdout_max=args.holdout_max, bootstrap=args.bootstrap
    )
    result = analyse_sweep(args.sweep, options, args.out)
    print(result.path / FITS_FILE)
    for line in sentences(result.fits):
        print(f"  {line}")
    return 0
