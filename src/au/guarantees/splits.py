"""The empirical check of a guarantee: certify on a random calibration split, measure on the rest, repeat.

A certificate promises that with probability at least ``1 - delta`` over the draw of the
calibration data, the selective risk at its threshold is at most ``epsilon``. :func:`split_check`
draws ``n_splits`` random calibration/test partitions of the scored inputs, runs SGR on each
calibration part and measures coverage and selective risk on its test part; the *violation rate*
is the share of splits whose realised test risk exceeds ``epsilon``, and should be at most
``delta``. (The realised test risk is itself an estimate from a finite test part, so the check is
slightly pessimistic near the bound.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from au.checks import check_level
from au.errors import AUError
from au.guarantees.selective import Certificate, Ranked, check_scores, sgr


def random_splits(n: int, n_splits: int, cal_fraction: float = 0.5, seed: int = 0) -> np.ndarray:
    """Calibration masks (n_splits, n), True = calibration; each split is a fresh seeded permutation."""
    cal_fraction = check_level(cal_fraction, "cal_fraction")
    if n_splits < 1:
        raise AUError(f"the number of splits must be at least 1, got {n_splits}")
    n_cal = int(round(cal_fraction * n))
    if n_cal < 1 or n_cal >= n:
        raise AUError(
            f"a calibration fraction of {cal_fraction:g} of {n} inputs leaves an empty calibration or test part"
        )
    rng = np.random.default_rng(seed)
    masks = np.zeros((n_splits, n), dtype=bool)
    for i in range(n_splits):
        masks[i, rng.permutation(n)[:n_cal]] = True
    return masks


@dataclass(frozen=True)
class SplitCheck:
    """SGR run on every split at one ``epsilon``: arrays (n_splits,), and the first split's certificate."""

    epsilon: float
    delta: float
    threshold: np.ndarray
    risk_bound: np.ndarray
    certified: np.ndarray
    cal_coverage: np.ndarray
    coverage: np.ndarray  # on the test part
    test_risk: np.ndarray  # on the test part (0 where nothing is accepted)
    first: Certificate

    @property
    def violations(self) -> np.ndarray:
        return self.test_risk > self.epsilon

    @property
    def violation_rate(self) -> float:
        return float(self.violations.mean())


def split_check(
    scores, errors, epsilons, delta: float, splits: np.ndarray, *, search_correction: bool = True
) -> list[SplitCheck]:
    """Certify each of ``epsilons`` on the calibration part of every split; measure on its test part.

    Parameters
    ----------
    scores : array (n,)
        Coverage scores, higher = accept first.
    errors : array (n,) of bool
        True where accepting the input is an error.
    epsilons : sequence of float
        Target selective risks.
    delta : float
        Allowed failure probability.
    splits : array (n_splits, n) of bool
        Calibration masks, e.g. from :func:`random_splits`.
    search_correction : bool
        Passed to :func:`~au.guarantees.selective.sgr`; False only to measure what the correction buys.
    """
    s, e = check_scores(scores, errors)
    delta = check_level(delta, "delta")
    splits = np.asarray(splits, dtype=bool)
    if splits.ndim != 2 or splits.shape[1] != len(s):
        raise AUError(f"splits must have shape (n_splits, {len(s)}), got {splits.shape}")
    epsilons = [check_level(x, "epsilon") for x in epsilons]
    rows: dict[float, list[tuple]] = {eps: [] for eps in epsilons}
    firsts: dict[float, Certificate] = {}
    for i, cal in enumerate(splits):
        ranked = Ranked(s[cal], e[cal])
        test_s, test_e = s[~cal], e[~cal]
        for eps in epsilons:
            cert = sgr(None, None, eps, delta, ranked=ranked, search_correction=search_correction)
            accept = test_s >= cert.threshold
            a = int(accept.sum())
            risk = float(test_e[accept].sum()) / a if a else 0.0
            rows[eps].append(
                (cert.threshold, cert.risk_bound, cert.certified, cert.coverage, a / len(test_s), risk)
            )
            if i == 0:
                firsts[eps] = cert
    out = []
    for eps in epsilons:
        cols = list(zip(*rows[eps], strict=True))
        out.append(
            SplitCheck(
                epsilon=eps,
                delta=delta,
                threshold=np.array(cols[0], dtype=np.float64),
                risk_bound=np.array(cols[1], dtype=np.float64),
                certified=np.array(cols[2], dtype=bool),
                cal_coverage=np.array(cols[3], dtype=np.float64),
                coverage=np.array(cols[4], dtype=np.float64),
                test_risk=np.array(cols[5], dtype=np.float64),
                first=firsts[eps],
            )
        )
    return out
