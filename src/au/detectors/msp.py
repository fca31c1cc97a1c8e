"""Maximum softmax probability (Hendrycks & Gimpel 2017, arXiv 1610.02136)."""

from __future__ import annotations

import numpy as np
from scipy.special import softmax

from au.detectors.base import Consumes, Detector


class MSP(Detector):
    """score(x) = max_k softmax(logits(x))_k, in [1/K, 1].

    Reads the logits (n, K); nothing to fit beyond the class count.
    """

    name = "msp"
    consumes = Consumes("logits")
    score_unit = "probability"
    scale_out = "rows"

    def _score(self, x: np.ndarray, pred=None) -> np.ndarray:
        return softmax(x.astype(np.float64), axis=1).max(axis=1)
