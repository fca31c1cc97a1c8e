"""The empirical check of a guarantee: certify on a random calibration split, measure on the rest, repeat.

A certificate promises that with probability at least ``1 - delta`` over the draw of the
calibration data, the selective risk at its threshold is at most ``epsilon``. :func:`split_check`
draws ``n_splits`` random calibration/test partitions of the scored inputs, certifies on each
calibration part (SGR, or Learn then Test) and measures coverage and selective risk on its test
part; the *violation rate* is the share of splits whose realised test risk exceeds ``epsilon``,
and should be at most ``delta``. It is reported with its exact binomial confidence interval over
the splits. The realised test risk is itself an estimate from a finite test part, so the check is
pessimistic near the bound on small test parts: measured against a large held-out population
(a small calibration fraction, the rest as test) the rate approaches the true one.

A *fitting part* of each calibration part (:func:`fit_parts`) never certifies: Learn then Test
orders its thresholds there, and a combined score is fitted there. Scores may differ per split
(a combined score refitted on each split's fitting part): pass them as an (n_splits, n) array.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from au.checks import check_level
from au.errors import AUError
from au.guarantees.bounds import clopper_pearson_interval
from au.guarantees.ltt import ltt, ltt_sequence
from au.guarantees.selective import Certificate, Ranked, check_scores, sgr

METHODS = ("sgr", "ltt")
"""Certification methods: SGR's binary search (arXiv 1705.08500) and Learn then Test (arXiv 2110.01052)."""


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


def fit_parts(splits: np.ndarray, fit_fraction: float, seed: int = 0) -> np.ndarray:
    """Fitting masks (n_splits, n): a seeded random ``fit_fraction`` of each split's calibration part.

    The fitting part never certifies (Learn then Test's ordering, a combined score's fit); the rest
    of the calibration part does.
    """
    fit_fraction = check_level(fit_fraction, "fit_fraction")
    splits = np.asarray(splits, dtype=bool)
    rng = np.random.default_rng([seed, 1])  # a stream of its own: the calibration draws stay as they were
    fit = np.zeros_like(splits)
    for i, cal in enumerate(splits):
        members = np.flatnonzero(cal)
        k = int(round(fit_fraction * len(members)))
        if k < 1 or k >= len(members):
            raise AUError(
                f"a fitting fraction of {fit_fraction:g} of {len(members)} calibration inputs leaves an empty "
                "fitting or certifying part; use more inputs or another fraction"
            )
        fit[i, rng.permutation(members)[:k]] = True
    return fit


@dataclass(frozen=True)
class SplitCheck:
    """One method run on every split at one ``epsilon``: arrays (n_splits,), and the first split's certificate."""

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

    def violation_interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """Exact two-sided confidence interval of the violation rate over the splits."""
        return clopper_pearson_interval(int(self.violations.sum()), len(self.violations), confidence)


def split_check(
    scores,
    errors,
    epsilons,
    delta: float,
    splits: np.ndarray,
    *,
    method: str = "sgr",
    fit: np.ndarray | None = None,
    search_correction: bool = True,
) -> list[SplitCheck]:
    """Certify each of ``epsilons`` on the calibration part of every split; measure on its test part.

    Parameters
    ----------
    scores : array (n,) or (n_splits, n)
        Coverage scores, higher = accept first; one row per split when they differ per split.
    errors : array (n,) of bool
        True where accepting the input is an error.
    epsilons : sequence of float
        Target selective risks.
    delta : float
        Allowed failure probability.
    splits : array (n_splits, n) of bool
        Calibration masks, e.g. from :func:`random_splits`.
    method : {"sgr", "ltt"}
        SGR certifies on the calibration part less ``fit``; Learn then Test orders its thresholds
        on ``fit`` and certifies on the rest of the calibration part. ``"sgr"`` by default here
        because it needs no ``fit``; ``au gold`` passes its ``--method``, Learn then Test by default.
    fit : array (n_splits, n) of bool, optional
        Fitting parts within the calibration parts (:func:`fit_parts`); required by ``"ltt"``.
    search_correction : bool
        Passed to :func:`~au.guarantees.selective.sgr`; False only to measure what the correction buys.
    """
    splits = np.asarray(splits, dtype=bool)
    s_all, e = _check_inputs(scores, errors, splits, method, fit)
    delta = check_level(delta, "delta")
    epsilons = [check_level(x, "epsilon") for x in epsilons]
    rows: dict[float, list[tuple]] = {eps: [] for eps in epsilons}
    firsts: dict[float, Certificate] = {}
    for i, cal in enumerate(splits):
        s = s_all[i]
        certify = cal & ~fit[i] if fit is not None else cal
        ranked = Ranked(s[certify], e[certify])
        test_s, test_e = s[~cal], e[~cal]
        for eps in epsilons:
            if method == "ltt":
                sequence = ltt_sequence(s[fit[i]], e[fit[i]], eps, ranked.n)
                cert = ltt(None, None, eps, delta, sequence, ranked=ranked)
            else:
                cert = sgr(None, None, eps, delta, ranked=ranked, search_correction=search_correction)
            accept = test_s >= cert.threshold
            a = int(accept.sum())
            risk = float(test_e[accept].sum()) / a if a else 0.0
            rows[eps].append(
                (cert.threshold, cert.risk_bound, cert.certified, cert.coverage, a / len(test_s), risk)
            )
            if i == 0:
                firsts[eps] = cert
    return [_check_of(eps, delta, rows[eps], firsts[eps]) for eps in epsilons]


def _check_inputs(scores, errors, splits: np.ndarray, method: str, fit) -> tuple[np.ndarray, np.ndarray]:
    """(scores as (n_splits, n), errors (n,)) after checking every shape, the method and the fitting parts."""
    if method not in METHODS:
        raise AUError(f"unknown certification method {method!r}; choose one of {', '.join(METHODS)}")
    raw = np.asarray(scores, dtype=np.float64)
    s, e = check_scores(raw[0] if raw.ndim == 2 else raw, errors)
    if splits.ndim != 2 or splits.shape[1] != len(s):
        raise AUError(f"splits must have shape (n_splits, {len(s)}), got {splits.shape}")
    if raw.ndim == 2 and raw.shape != splits.shape:
        raise AUError(f"per-split scores must have shape {splits.shape}, got {raw.shape}")
    for row in raw[1:] if raw.ndim == 2 and not np.isfinite(raw).all() else ():
        check_scores(row, e)  # names the problem
    per_split = raw if raw.ndim == 2 else np.broadcast_to(s, splits.shape)
    if method == "ltt" and fit is None:
        raise AUError("Learn then Test orders its thresholds on a fitting part: pass fit= (see fit_parts)")
    if fit is not None and (np.shape(fit) != splits.shape or (np.asarray(fit) & ~splits).any()):
        raise AUError("the fitting parts must lie within the calibration parts, one mask per split")
    return per_split, e


def _check_of(eps: float, delta: float, rows: list[tuple], first: Certificate) -> SplitCheck:
    cols = list(zip(*rows, strict=True))
    return SplitCheck(
        epsilon=eps,
        delta=delta,
        threshold=np.array(cols[0], dtype=np.float64),
        risk_bound=np.array(cols[1], dtype=np.float64),
        certified=np.array(cols[2], dtype=bool),
        cal_coverage=np.array(cols[3], dtype=np.float64),
        coverage=np.array(cols[4], dtype=np.float64),
        test_risk=np.array(cols[5], dtype=np.float64),
        first=first,
    )
