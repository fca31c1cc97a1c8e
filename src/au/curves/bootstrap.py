"""Bootstrap resampling of learning-curve points, for confidence intervals and bands.

With at least two trials at every training-set size, each resample draws, at every size, as many
trials as there are, with replacement (the sizes stay fixed, the trial-to-trial spread is what is
resampled). With a single trial somewhere, it resamples whole points instead (the pairs bootstrap).
"""

from __future__ import annotations

import numpy as np


def resample_indices(groups: np.ndarray, samples: int, seed: int) -> tuple[list[np.ndarray], str]:
    """``samples`` index arrays into the points, and the method used.

    Parameters
    ----------
    groups : array (n,)
        The group (training-set size or fraction) of each point.
    """
    rng = np.random.default_rng(seed)
    labels, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    if counts.min() >= 2:
        members = [np.flatnonzero(inverse == g) for g in range(len(labels))]
        draws = [
            np.concatenate([rng.choice(idx, size=len(idx), replace=True) for idx in members])
            for _ in range(samples)
        ]
        return draws, "trials resampled within each training-set size"
    n = len(groups)
    return [rng.integers(0, n, size=n) for _ in range(samples)], "points resampled (pairs bootstrap)"


def interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Central percentile interval of ``values``; +inf where more than the upper tail is infinite."""
    values = np.asarray(values, dtype=float)
    if not len(values):
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2.0
    method = "linear" if np.isfinite(values).all() else "inverted_cdf"  # no interpolation towards inf
    lo, hi = np.quantile(values, [tail, 1.0 - tail], method=method)
    return float(lo), float(hi)
