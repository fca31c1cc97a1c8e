"""The power-law learning curve err(m) = a * m^(-b) + e_inf (Hestness et al. 2017, arXiv 1712.00409).

``b`` is the curve's steepness on log-log axes, ``e_inf`` the irreducible error that no amount of
data removes. The fit minimises squared differences of log error (SciPy's bounded
``least_squares``), so a point at 1% error counts as much as one at 30%, as on the usual log-log
plot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares


@dataclass(frozen=True)
class PowerLawFit:
    a: float
    b: float
    e_inf: float

    def error(self, m: np.ndarray) -> np.ndarray:
        return self.a * np.asarray(m, dtype=float) ** (-self.b) + self.e_inf

    def accuracy(self, m: np.ndarray) -> np.ndarray:
        return 1.0 - self.error(m)

    def needed(self, target_accuracy: float) -> float:
        """Training examples for ``target_accuracy``; ``inf`` when the target is at or beyond 1 - e_inf.

        Computed in logs: a flat fit (small ``b``) can put the answer beyond what a float holds, and
        that too is ``inf`` - no amount of data a float can count reaches the target.
        """
        gap = (1.0 - target_accuracy) - self.e_inf
        if gap <= 0:
            return float("inf")
        log_m = (math.log(self.a) - math.log(gap)) / self.b
        return math.exp(log_m) if log_m < math.log(np.finfo(np.float64).max) else float("inf")


def _residuals(theta: np.ndarray, log_m: np.ndarray, log_err: np.ndarray) -> np.ndarray:
    log_a, b, e_inf = theta
    return np.log(np.exp(log_a - b * log_m) + e_inf) - log_err


def fit_power_law(m: np.ndarray, err: np.ndarray, start: PowerLawFit | None = None) -> PowerLawFit:
    """Fit err = a m^-b + e_inf with a > 0, 0 < b <= 3 and 0 <= e_inf < min(err).

    Parameters
    ----------
    m, err : arrays (n,)
        Training examples and test error (> 0) of each point; at least 3 distinct m.
    start : PowerLawFit, optional
        Initial guess (a warm start for bootstrap refits); otherwise several starts are tried.
    """
    m, err = np.asarray(m, dtype=float), np.asarray(err, dtype=float)
    if len(np.unique(m)) < 3:
        raise ValueError("a power law with an asymptote needs points at 3 or more training-set sizes")
    log_m, log_err = np.log(m), np.log(err)
    upper_e = max(float(err.min()) * 0.999, 1e-12)
    lower = np.array([-50.0, 1e-4, 0.0])
    upper = np.array([50.0, 3.0, upper_e])
    if start is not None:
        starts = [np.array([np.log(start.a), start.b, min(start.e_inf, upper_e * 0.99)])]
    else:
        slope = -np.polyfit(log_m, log_err, 1)[0]
        starts = []
        for b0 in (max(min(slope, 2.0), 0.05), 0.3, 0.7, 1.2):
            for frac in (0.0, 0.5, 0.9):
                e0 = frac * upper_e
                # choose a so that the curve passes through the smallest-m point
                i = int(np.argmin(m))
                a0 = max(err[i] - e0, 1e-9) * m[i] ** b0
                starts.append(np.array([np.log(a0), b0, e0]))
    best = None
    for theta0 in starts:
        theta0 = np.clip(theta0, lower + 1e-9, upper - 1e-12)
        result = least_squares(_residuals, theta0, bounds=(lower, upper), args=(log_m, log_err), method="trf")
        if best is None or result.cost < best.cost:
            best = result
    log_a, b, e_inf = best.x
    return PowerLawFit(a=float(np.exp(log_a)), b=float(b), e_inf=float(e_inf))
