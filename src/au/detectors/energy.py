"""Energy score (Liu et al. 2020, arXiv 2010.03759)."""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from au.detectors.base import Consumes, Detector


class Energy(Detector):
    """score(x) = T * logsumexp(logits(x) / T): the negative free energy, higher for in-distribution inputs.

    Parameters
    ----------
    temperature : float > 0
        T; the paper uses 1.
    """

    name = "energy"
    consumes = Consumes("logits")
    score_unit = "negative free energy"
    scale_out = "rows"
    _constraints = {"temperature": (lambda v: isinstance(v, (int, float)) and v > 0, "a number > 0")}

    def __init__(self, temperature: float = 1.0) -> None:
        self.temperature = temperature

    def _score(self, x: np.ndarray, pred=None) -> np.ndarray:
        t = float(self.temperature)
        return t * logsumexp(x.astype(np.float64) / t, axis=1)
