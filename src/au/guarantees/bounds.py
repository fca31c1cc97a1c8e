"""Exact binomial confidence bounds (Clopper & Pearson 1934) for an error rate.

With ``e`` errors among ``n`` independent draws, the one-sided upper bound at confidence
``1 - delta`` is the largest rate ``p`` still compatible with seeing at most ``e`` errors::

    P(Binomial(n, p) <= e) = delta   <=>   p = Beta.ppf(1 - delta; e + 1, n - e)

(1 when ``e == n``; 1 when ``n == 0``: nothing observed, nothing certified). This is the ``B*``
of the SGR algorithm (Geifman & El-Yaniv 2017, arXiv 1705.08500).
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaincinv

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
