"""Exact binomial confidence bounds (Clopper & Pearson 1934) for an error rate.

With ``e`` errors among ``n`` independent draws, the one-sided upper bound at confidence
``1 - delta`` is the largest rate ``p`` still compatible with seeing at most ``e`` errors::

    P(Binomial(n, p) <= e) = delta   <=>   p = Beta.ppf(1 - delta; e + 1, n - e)

(1 when ``e == n``; 1 when ``n == 0``: nothing observed, nothing certified). This is the ``B*``
of the SGR algorithm (Geifman & El-Yaniv 2017, arXiv 1705.08500). The same test read the other way
is :func:`binomial_p_value`, the p-value of "the rate exceeds epsilon" that Learn then Test uses:
``p <= delta`` exactly when the upper bound is ``<= epsilon``. :func:`clopper_pearson_interval` is
the two-sided interval, for reporting a measured rate (a violation rate over random splits).
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaincinv
from scipy.stats import binom

from au.checks import check_level
from au.errors import AUError


def clopper_pearson_upper(errors, n, delta: float):
    """One-sided ``1 - delta`` upper confidence bound on an error rate from ``errors`` of ``n``.

    Parameters
    ----------
    errors, n : int or array of int
        Error counts and sample sizes (broadcast together); ``0 <= errors <= n``.
    delta : float
        Allowed probability that the true rate exceeds the bound, in (0, 1).

    Returns
    -------
    float or ndarray
        The bound, in [0, 1]; 1 where ``errors == n`` (including ``n == 0``).
    """
    delta = check_level(delta, "delta")
    e = np.asarray(errors, dtype=np.float64)
    m = np.asarray(n, dtype=np.float64)
    if np.any(e < 0) or np.any(e > m):
        raise AUError("clopper_pearson_upper: error counts must lie between 0 and n")
    full = e >= m
    with np.errstate(invalid="ignore", divide="ignore"):
        bound = betaincinv(e + 1.0, np.where(full, 1.0, m - e), 1.0 - delta)
    bound = np.where(full, 1.0, bound)
    return float(bound) if bound.ndim == 0 else bound


def binomial_p_value(errors, n, epsilon: float):
    """Exact p-value of the null "the error rate exceeds ``epsilon``" after ``errors`` of ``n``.

    ``P(Binomial(n, epsilon) <= errors)``: the chance of seeing this few errors if the rate were
    ``epsilon``. Rejecting the null at level ``delta`` (``p <= delta``) is certifying the rate at
    ``epsilon`` with confidence ``1 - delta``. 1 where ``n == 0``. Broadcasts like
    :func:`clopper_pearson_upper`.
    """
    epsilon = check_level(epsilon, "epsilon")
    e = np.asarray(errors, dtype=np.float64)
    m = np.asarray(n, dtype=np.float64)
    if np.any(e < 0) or np.any(e > m):
        raise AUError("binomial_p_value: error counts must lie between 0 and n")
    p = np.where(m > 0, binom.cdf(e, np.maximum(m, 1), epsilon), 1.0)
    return float(p) if p.ndim == 0 else p


def clopper_pearson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided exact (Clopper-Pearson) confidence interval for a rate seen ``k`` times in ``n`` draws."""
    alpha = 1.0 - check_level(confidence, "confidence")
    if not 0 <= k <= n or n < 1:
        raise AUError(f"clopper_pearson_interval: need 0 <= k <= n and n >= 1, got k={k}, n={n}")
    lo = 0.0 if k == 0 else float(betaincinv(k, n - k + 1.0, alpha / 2))
    hi = 1.0 if k == n else float(betaincinv(k + 1.0, n - k, 1.0 - alpha / 2))
    return lo, hi
