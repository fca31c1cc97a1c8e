"""Selective classification: risk-coverage curves, their area, and the SGR risk certificate.

A coverage score ``s`` (higher = better covered by the training data) and a threshold ``t`` make a
selective classifier: it answers on inputs with ``s >= t`` and abstains on the rest. Its
*coverage* is the share of inputs it answers, its *selective risk* the error rate on those.

* :func:`risk_coverage` and :func:`aurc`: the risk-coverage curve and the area under it
  (Geifman & El-Yaniv 2017, arXiv 1705.08500; AURC and E-AURC as in Geifman et al. 2019,
  arXiv 1805.08206).
* :func:`sgr`: the Selection with Guaranteed Risk algorithm of Geifman & El-Yaniv 2017 (arXiv
  1705.08500): the threshold of largest calibration coverage whose selective risk is at most
  ``epsilon`` with probability at least ``1 - delta``.

Inputs tied on the score are accepted or rejected together: a threshold never splits a tie.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from au.checks import check_level
from au.errors import AUError
from au.guarantees.bounds import clopper_pearson_upper


def check_scores(scores, errors, what: str = "scores") -> tuple[np.ndarray, np.ndarray]:
    """(scores float64 (n,), errors bool (n,)) after checking shapes and finiteness."""
    s = np.asarray(scores, dtype=np.float64)
    e = np.asarray(errors)
    if s.ndim != 1 or e.shape != s.shape:
        raise AUError(f"{what} and errors must be 1-D of equal length, got shapes {s.shape} and {e.shape}")
    if len(s) == 0:
        raise AUError(f"{what} are empty: there is nothing to calibrate or evaluate on")
    bad = int((~np.isfinite(s)).sum())
    if bad:
        raise AUError(
            f"{what} hold {bad} NaN or infinite value(s); a coverage score must be finite for every input "
            "(re-score, or drop those inputs)"
        )
    if e.dtype != bool:
        if not np.isin(e, (0, 1)).all():
            raise AUError("errors must be booleans (or 0/1): True where the prediction counts as wrong")
        e = e.astype(bool)
    return s, e


class Ranked:
    """Inputs sorted by score, best first, with cumulative errors: the shared work of every threshold.

    ``accepted(c)`` is how many inputs a threshold at the ``c``-th best score accepts (ties
    included), ``errors_within(a)`` how many errors the best ``a`` hold.
    """

    def __init__(self, scores, errors) -> None:
        s, e = check_scores(scores, errors)
        order = np.argsort(-s, kind="stable")
        self.sorted = s[order]  # (n,) descending
        self._ascending = -self.sorted  # (n,) for searchsorted, negated once
        self.cum_errors = np.cumsum(e[order])  # (n,)
        self.n = len(s)

    def accepted(self, c):
        """Inputs with a score >= the c-th best (1-based) score."""
        return np.searchsorted(self._ascending, self._ascending[np.asarray(c) - 1], side="right")

    def errors_within(self, a):
        return self.cum_errors[np.asarray(a) - 1]


@dataclass(frozen=True)
class Certificate:
    """What :func:`sgr` certifies on calibration data.

    ``threshold``: accept inputs whose score is >= it (``inf`` when nothing could be certified);
    ``risk_bound``: the upper bound on the selective risk that holds with probability >= 1 - delta
    (1.0 when nothing is certified); ``coverage`` / ``risk``: share accepted and error rate among
    them on the calibration inputs; ``tests``: k, the most thresholds the search may test (delta is
    split over them).
    """

    epsilon: float
    delta: float
    threshold: float
    risk_bound: float
    coverage: float
    risk: float
    n: int
    accepted: int
    tests: int
    certified: bool

    def as_dict(self) -> dict:
        return asdict(self)


def sgr(
    scores,
    errors,
    epsilon: float,
    delta: float,
    ranked: Ranked | None = None,
    *,
    search_correction: bool = True,
) -> Certificate:
    """Selection with Guaranteed Risk (Geifman & El-Yaniv 2017, arXiv 1705.08500, Algorithm 1).

    A binary search over thresholds at the calibration scores: each tested threshold accepts the
    best ``a`` inputs, of which ``e`` are errors, and its selective risk is bounded by the exact
    binomial (Clopper-Pearson) upper bound at level ``delta / k``, where ``k = ceil(log2(n + 1))``
    bounds the number of thresholds the search can test. By the union bound, with probability at
    least ``1 - delta`` every tested threshold's true selective risk is below its bound, so the one
    returned - the tested threshold of largest coverage whose bound is <= ``epsilon`` - is too.

    Parameters
    ----------
    scores : array (n,)
        Calibration inputs' coverage scores; higher = accept first.
    errors : array (n,) of bool
        True where the input counts as an error if accepted (a wrong prediction; an OOD input).
    epsilon, delta : float
        Target selective risk and allowed failure probability, both in (0, 1).
    ranked : Ranked, optional
        ``scores`` and ``errors`` already sorted (several epsilons on one calibration set).
    search_correction : bool
        Split ``delta`` over the tested thresholds (the default, and what the guarantee needs);
        False tests each at ``delta`` - only for measuring what the correction costs.

    Returns
    -------
    Certificate
        ``certified=False`` and coverage 0 when even the most confident threshold tested cannot be
        certified - typically because the calibration split is too small: with zero errors among
        ``a`` accepted inputs the bound is ``1 - (delta/k)^(1/a)``, so ``a`` must exceed about
        ``ln(k/delta) / epsilon`` inputs.
    """
    epsilon = check_level(epsilon, "epsilon")
    delta = check_level(delta, "delta")
    ranked = ranked if ranked is not None else Ranked(scores, errors)
    n = ranked.n
    k = max(1, math.ceil(math.log2(n + 1)))
    level = delta / k if search_correction else delta
    lo, hi = 0, n + 1  # lo: certified (or none), hi: failed (or beyond the end)
    best: tuple[int, int, float] | None = None  # (c, accepted, bound)
    tests = 0
    while hi - lo > 1 and tests < k:
        c = (lo + hi) // 2
        a = int(ranked.accepted(c))
        bound = float(clopper_pearson_upper(int(ranked.errors_within(a)), a, level))
        tests += 1
        if bound <= epsilon:
            lo = c
            if best is None or a > best[1]:
                best = (c, a, bound)
        else:
            hi = c
    if best is None:
        return Certificate(epsilon, delta, math.inf, 1.0, 0.0, 0.0, n, 0, k, False)
    c, a, bound = best
    return Certificate(
        epsilon=epsilon,
        delta=delta,
        threshold=float(ranked.sorted[c - 1]),
        risk_bound=bound,
        coverage=a / n,
        risk=float(ranked.errors_within(a)) / a,
        n=n,
        accepted=a,
        tests=k,
        certified=True,
    )


def best_possible_bound(n: int, delta: float) -> float:
    """The smallest bound SGR can reach with ``n`` calibration inputs: all accepted, none wrong.

    ``1 - (delta/k)^(1/n)`` with ``k = ceil(log2(n + 1))``. When it exceeds ``epsilon`` the
    calibration split is too small to certify any threshold, whatever the score.
    """
    delta = check_level(delta, "delta")
    if n < 1:
        return 1.0
    return float(clopper_pearson_upper(0, n, delta / max(1, math.ceil(math.log2(n + 1)))))


def risk_coverage(scores, errors) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The risk-coverage curve: (coverage, selective risk, threshold), one point per distinct score.

    Points run from the highest threshold (least coverage) to the lowest (coverage 1). Arrays (t,).
    """
    ranked = Ranked(scores, errors)
    last = np.flatnonzero(np.diff(ranked.sorted, append=-np.inf) != 0)  # last index of each tie group
    accepted = last + 1
    return accepted / ranked.n, ranked.cum_errors[last] / accepted, ranked.sorted[last]


def aurc(scores, errors) -> float:
    """Area under the risk-coverage curve: the mean over k = 1..n of the risk of the best k inputs.

    A tie group shares the risk at its end (a score cannot order the inputs it ties). Lower is
    better; the error rate itself is the AURC of a score that knows nothing.
    """
    coverage, risk, _ = risk_coverage(scores, errors)
    return float(np.dot(risk, np.diff(coverage, prepend=0.0)))  # each group's risk x its share of inputs


def optimal_aurc(errors) -> float:
    """AURC of the ideal score, which ranks every error last (the E-AURC baseline, arXiv 1805.08206)."""
    e = np.asarray(errors, dtype=bool)
    n, bad = len(e), int(e.sum())
    k = np.arange(1, n + 1)
    return float(np.mean(np.maximum(k - (n - bad), 0) / k))


def excess_aurc(scores, errors) -> float:
    """E-AURC: AURC minus that of the ideal ranking (Geifman et al. 2019, arXiv 1805.08206)."""
    return aurc(scores, errors) - optimal_aurc(np.asarray(errors, dtype=bool))
