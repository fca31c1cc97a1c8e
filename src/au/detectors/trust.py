"""Trust score (Jiang et al. 2018, arXiv 1805.11783)."""

from __future__ import annotations

import numpy as np

from au.detectors.base import Consumes, Detector
from au.errors import AUError


class TrustScore(Detector):
    """score(z, pred) = d(z, nearest other class) / d(z, predicted class).

    ``d(z, c)`` is the distance from ``z`` to the nearest training feature of class ``c`` after the
    paper's alpha-filtering: from each class, the ``alpha`` fraction of points with the largest
    distance to their ``k``-th nearest same-class neighbour (the low-density points) is removed.
    Higher means the classifier's prediction is closer to its own class than to any other: more
    trustworthy, more in-distribution. ``score_samples`` needs the predictions.

    Parameters
    ----------
    k : int
        Neighbour used for the density filter (paper: 10).
    alpha : float in [0, 1)
        Fraction of each class filtered out (paper's default 0: no filtering).

    Fitted attributes: ``classes_``, ``class_points_`` (one (n_c, d) array per class).
    """

    name = "trust"
    consumes = Consumes("features", labels=True, predictions=True)
    score_unit = "distance ratio"
    _constraints = {
        "k": (lambda v: isinstance(v, int) and v >= 1, "an integer >= 1"),
        "alpha": (lambda v: 0.0 <= v < 1.0, "a number in [0, 1)"),
    }

    def __init__(self, k: int = 10, alpha: float = 0.0) -> None:
        self.k = k
        self.alpha = alpha

    def _fit(self, x: np.ndarray, y: np.ndarray, x_val=None, x_val_ood=None) -> None:
        import faiss

        self.classes_ = np.unique(y)
        self.class_points_ = []
        for c in self.classes_:
            pts = np.ascontiguousarray(x[y == c], dtype=np.float32)
            if self.alpha > 0 and len(pts) > self.k:
                index = faiss.IndexFlatL2(pts.shape[1])
                index.add(pts)
                radius, _ = index.search(pts, self.k + 1)  # the first neighbour is the point itself
                keep = radius[:, -1] <= np.quantile(radius[:, -1], 1.0 - self.alpha)
                pts = pts[keep]
            self.class_points_.append(pts)

    def class_distances(self, x: np.ndarray) -> np.ndarray:
        """Distance of each row to the nearest (filtered) training point of each class, shape (n, C)."""
        import faiss

        q = np.ascontiguousarray(x, dtype=np.float32)
        out = np.empty((len(q), len(self.classes_)))
        for j, pts in enumerate(self.class_points_):
            index = faiss.IndexFlatL2(pts.shape[1])
            index.add(pts)
            squared, _ = index.search(q, 1)
            out[:, j] = np.sqrt(np.maximum(squared[:, 0], 0.0))
        return out

    def _score(self, x: np.ndarray, pred: np.ndarray) -> np.ndarray:
        """Trust of each row given the classifier's predictions ``pred`` (n,)."""
        d = self.class_distances(x)
        col = np.searchsorted(self.classes_, pred)
        if (col >= len(self.classes_)).any() or (
            self.classes_[np.minimum(col, len(self.classes_) - 1)] != pred
        ).any():
            raise AUError("TrustScore: a prediction names a class the detector was not fitted on")
        rows = np.arange(len(x))
        own = d[rows, col]
        d[rows, col] = np.inf
        other = d.min(axis=1)
        return other / np.maximum(own, 1e-12)
