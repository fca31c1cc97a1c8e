"""The PAC finite-hypothesis form of a learning curve: acc(m) = 1 - sqrt(c / m).

For a finite hypothesis class H and a learner with zero training error, with probability at least
1 - delta the test error satisfies err <= sqrt((ln|H| + ln(1/delta)) / (2m)) (Hoeffding and a union
bound over H; Shalev-Shwartz & Ben-David 2014, Cor. 4.6, in the agnostic form). Reading the bound
as an equality gives err(m) = sqrt(c / m) with c = (ln|H| + ln(1/delta)) / 2, so a fitted c implies
an *effective* ln|H| = 2c - ln(1/delta): the size of a finite class that would explain the curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PACFit:
    """err(m) = sqrt(c / m), fitted by least squares on log error (each point weighs alike)."""

    c: float

    def error(self, m: np.ndarray) -> np.ndarray:
        return np.sqrt(self.c / np.asarray(m, dtype=float))

    def accuracy(self, m: np.ndarray) -> np.ndarray:
        return 1.0 - self.error(m)

    def ln_h(self, delta: float) -> float:
        """Effective ln|H| implied by c at confidence 1 - delta."""
        return 2.0 * self.c - math.log(1.0 / delta)

    def needed(self, target_accuracy: float) -> float:
        """Training examples for ``target_accuracy``: m = c / (1 - acc)^2 (always reachable)."""
        return self.c / (1.0 - target_accuracy) ** 2


def fit_pac(m: np.ndarray, err: np.ndarray) -> PACFit:
    """Fit err = sqrt(c / m): in log space, log err = (log c - log m) / 2, so log c = mean(2 log err + log m).

    Parameters
    ----------
    m : array (n,)
        Training examples of each point.
    err : array (n,)
        Test error of each point, > 0 (floor zero errors before calling).
    """
    m, err = np.asarray(m, dtype=float), np.asarray(err, dtype=float)
    return PACFit(c=float(np.exp(np.mean(2.0 * np.log(err) + np.log(m)))))
