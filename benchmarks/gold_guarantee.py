"""What the guarantee costs and what it buys: LTT and SGR against two uncorrected threshold choices, side by side.

On one scores directory (``au score``), for every detector and epsilon, the same random
calibration/test splits are given to three ways of choosing a threshold on the calibration part:

* ``ltt``: AU's default certificate - Learn then Test, fixed-sequence testing at the full delta,
  ordered on a fifth of the calibration part (Angelopoulos et al. 2021, arXiv 2110.01052);
* ``sgr``: Clopper-Pearson bound at delta / k over the binary search's k tests
  (Geifman & El-Yaniv 2017, arXiv 1705.08500);
* ``no-correction``: the same search with every test at delta (no union bound);
* ``empirical``: the largest coverage whose calibration risk is <= epsilon (no bound at all).

Printed per (detector, epsilon): mean test coverage and violation rate (share of splits whose test
risk exceeds epsilon) of each, and the milliseconds SGR's split check took per split and epsilon.
The guarantee asks ``violation rate <= delta``; the coverage lost against ``empirical`` is its price.

    python benchmarks/gold_guarantee.py --scores scores/ [--epsilon 0.01,0.02] [--delta 0.05] [--splits 500]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from au.gold.scored import load_scored
from au.guarantees import random_splits, risk_coverage, split_check
from au.guarantees.splits import fit_parts


def empirical_threshold(scores: np.ndarray, errors: np.ndarray, epsilon: float) -> float:
    _, risk, thresholds = risk_coverage(scores, errors)
    ok = np.flatnonzero(risk <= epsilon)
    return float(thresholds[ok[-1]]) if len(ok) else np.inf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scores", type=Path, required=True, help="an 'au score' directory")
    parser.add_argument("--epsilon", default="0.01,0.02")
    parser.add_argument("--delta", type=float, default=0.05)
    parser.add_argument("--splits", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    epsilons = [float(e) for e in args.epsilon.split(",")]
    scored = load_scored([args.scores])
    rows, errors = scored.stream()
    splits = random_splits(len(rows), args.splits, 0.5, args.seed)
    print(
        f"{len(rows):,} in-distribution inputs, error rate {errors.mean():.4f}; {args.splits} splits, delta {args.delta}"
    )
    fit = fit_parts(splits, 0.2, args.seed)
    header = (
        f"{'entry':<22} {'eps':>5}  {'ltt cov':>8} {'viol':>6}  {'sgr cov':>8} {'viol':>6}  {'no-corr cov':>11} "
        f"{'viol':>6}  {'empir. cov':>10} {'viol':>6}  {'ms/split':>8}"
    )
    print(header)
    for key, values in scored.scores.items():
        s = values[rows]
        start = time.perf_counter()
        certified = split_check(s, errors, epsilons, args.delta, splits)
        ms_per_split = 1000 * (time.perf_counter() - start) / (len(splits) * len(epsilons))
        uncorrected = split_check(s, errors, epsilons, args.delta, splits, search_correction=False)
        ltt = split_check(s, errors, epsilons, args.delta, splits, method="ltt", fit=fit)
        for eps, sgr_check, nocorr, ltt_check in zip(epsilons, certified, uncorrected, ltt, strict=True):
            cov, viol = [], []
            for cal in splits:
                accept = s[~cal] >= empirical_threshold(s[cal], errors[cal], eps)
                cov.append(accept.mean())
                viol.append(errors[~cal][accept].mean() > eps if accept.any() else False)
            print(
                f"{key:<22} {eps:>5g}  {ltt_check.coverage.mean():>8.4f} {ltt_check.violation_rate:>6.3f}  "
                f"{sgr_check.coverage.mean():>8.4f} {sgr_check.violation_rate:>6.3f}  "
                f"{nocorr.coverage.mean():>11.4f} {nocorr.violation_rate:>6.3f}  "
                f"{np.mean(cov):>10.4f} {np.mean(viol):>6.3f}  {ms_per_split:>8.2f}"
            )


if __name__ == "__main__":
    main()
