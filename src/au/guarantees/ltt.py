"""Learn then Test with fixed-sequence testing: a risk certificate without a search's union bound.

Learn then Test (Angelopoulos, Bates, Candès, Jordan & Lei 2021, arXiv 2110.01052) turns risk
control into multiple testing: for each candidate threshold ``t`` the null hypothesis is "the
selective risk of accepting ``score >= t`` exceeds ``epsilon``", and a threshold is certified when
its null is rejected. Fixed-sequence testing, one of the paper's family-wise procedures, tests the nulls one at a time
in an order fixed *before* the certifying data is seen, each at the full ``delta``, and stops at
the first null it cannot reject; the family-wise error is then at most ``delta`` with no union
bound, so every certified threshold is valid at once and the one of largest coverage is returned.

The order comes from a separate *ordering* part of the calibration data, never used to certify:

* :func:`ltt_sequence` reads the ordering part's risk-coverage points and starts at the threshold
  the data there finds most certifiable (smallest exact binomial p-value, its counts scaled to the
  certifying part's size), then continues to every lower threshold, in order - towards more
  coverage. Unlike SGR's binary search, which starts at
  half coverage and only moves down, the start can be anywhere: a score that ranks errors first
  but is safe when accepting everything starts near full coverage.
* :func:`ltt` tests that sequence on the certifying part with the exact binomial p-value
  (:func:`au.guarantees.bounds.binomial_p_value`).

Inputs tied on the score are accepted or rejected together, as in SGR.
"""

from __future__ import annotations

import math

import numpy as np

from au.checks import check_level
from au.guarantees.bounds import binomial_p_value, clopper_pearson_upper
from au.guarantees.selective import Certificate, Ranked

ACCEPT_ALL = float(np.finfo(np.float64).min)
"""The last threshold of every sequence: it accepts every (finite) score; finite, so JSON can hold it."""


def tie_groups(ranked: Ranked) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(threshold, accepted, errors) at the end of each tie group, from the highest threshold down."""
    last = np.flatnonzero(np.diff(ranked.sorted, append=-np.inf) != 0)
    return ranked.sorted[last], last + 1, ranked.cum_errors[last]


def scaled_p_values(accepted, errors, n: int, n_certify: int, epsilon: float) -> np.ndarray:
    """Exact binomial p-values of "risk > epsilon" for counts seen on ``n`` inputs, scaled to ``n_certify``.

    ``accepted`` and ``errors`` (t,) are counts at each threshold; scaled and rounded, they are
    what ``n_certify`` certifying inputs would show if they behaved as these ``n`` did.
    """
    scale = n_certify / n
    scaled = np.round(np.asarray(accepted) * scale)
    return binomial_p_value(np.minimum(np.round(np.asarray(errors) * scale), scaled), scaled, epsilon)


def ltt_sequence(order_scores, order_errors, epsilon: float, n_certify: int) -> np.ndarray:
    """Candidate thresholds (descending) in the order :func:`ltt` tests them, from the ordering data alone.

    The candidates are the ordering part's distinct scores. The sequence starts at the one that
    looks most certifiable on ``n_certify`` inputs: the ordering part's accepted and error counts
    at each candidate, scaled to ``n_certify`` inputs, give an exact binomial p-value for "risk >
    epsilon", and the smallest starts (the smaller coverage on ties). Scaling matters: the raw
    ordering part is smaller, and its own smallest p-value sits at too little coverage and on lucky
    draws. The sequence then continues through every lower threshold, and ends with
    :data:`ACCEPT_ALL` (the lowest finite float), accepting every input (which the ordering part's
    lowest score would not). Returns float64 (m,).
    """
    epsilon = check_level(epsilon, "epsilon")
    thresholds, accepted, errors = tie_groups(Ranked(order_scores, order_errors))
    p = scaled_p_values(accepted, errors, len(order_scores), n_certify, epsilon)
    return np.append(thresholds[int(np.argmin(p)) :], ACCEPT_ALL)


def ltt(scores, errors, epsilon: float, delta: float, sequence, ranked: Ranked | None = None) -> Certificate:
    """Learn then Test, fixed-sequence (Angelopoulos et al. 2021, arXiv 2110.01052) on the certifying data.

    Parameters
    ----------
    scores, errors : array (n,)
        The certifying inputs' coverage scores (higher = accept first) and whether each is an error
        if accepted. None when ``ranked`` is given.
    epsilon, delta : float
        Target selective risk and allowed failure probability, in (0, 1).
    sequence : array (m,)
        Thresholds in testing order (from :func:`ltt_sequence` on data disjoint from these inputs).
        It must not depend on the certifying data, or the guarantee is void.
    ranked : Ranked, optional
        The certifying inputs already sorted (several epsilons on one part).

    Returns
    -------
    Certificate
        The certified threshold of largest coverage; ``tests`` is how many thresholds were tested
        (each at the full ``delta``). ``certified=False``, coverage 0, when the first one fails.
    """
    epsilon = check_level(epsilon, "epsilon")
    delta = check_level(delta, "delta")
    ranked = ranked if ranked is not None else Ranked(scores, errors)
    n = ranked.n
    t = np.asarray(sequence, dtype=np.float64)
    accepted = np.searchsorted(ranked._ascending, -t, side="right")  # inputs with a score >= t
    errs = np.where(accepted > 0, ranked.cum_errors[np.maximum(accepted, 1) - 1], 0)
    passed = binomial_p_value(errs, accepted, epsilon) <= delta if len(t) else np.zeros(0, dtype=bool)
    failed = np.flatnonzero(~passed)
    k = int(failed[0]) if len(failed) else len(t)  # the sequence stops at its first failure
    tests = min(k + 1, len(t))
    if k == 0:
        return Certificate(epsilon, delta, math.inf, 1.0, 0.0, 0.0, n, 0, max(tests, 1), False)
    best = int(np.argmax(accepted[:k]))  # the lowest certified threshold: the largest coverage
    a, e = int(accepted[best]), int(errs[best])
    return Certificate(
        epsilon=epsilon,
        delta=delta,
        threshold=float(t[best]),
        risk_bound=float(clopper_pearson_upper(e, a, delta)),
        coverage=a / n,
        risk=e / a,
        n=n,
        accepted=a,
        tests=tests,
        certified=True,
    )
