"""Mahalanobis distance to class-conditional Gaussians with one tied covariance (Lee et al. 2018, arXiv 1807.03888)."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.covariance import ledoit_wolf

from au.detectors.base import Consumes, Detector
from au.errors import AUError


class Mahalanobis(Detector):
    """score(z) = max_c -(z - mu_c)^T Sigma^-1 (z - mu_c), on one layer's (spatially pooled) features.

    ``mu_c`` are the class means of the training features and ``Sigma`` their tied covariance
    ``1/N sum_c sum_{i in c} (z_i - mu_c)(z_i - mu_c)^T``, as in the paper. By default this is the
    paper's feature-space score on the penultimate layer, without input pre-processing (for that, and
    for several layers, see :class:`MahalanobisEnsemble`).

    When the covariance is singular or nearly so - fewer training examples than dimensions, or
    neurons that never vary - it is shrunk towards a scaled identity by Ledoit-Wolf; ``shrinkage_``
    says by how much (0 when no shrinkage was needed) and a warning says so.

    Fitted attributes: ``means_`` (C, d), ``precision_`` (d, d), ``shrinkage_``, ``classes_``.
    """

    name = "mahalanobis"
    consumes = Consumes("features", labels=True)
    score_unit = "minus squared Mahalanobis distance"
    _constraints = {"max_condition": (lambda v: v > 1, "a number > 1")}
    _reported = ("shrinkage_",)
    scale_out = "statistics"

    def __init__(self, max_condition: float = 1e10) -> None:
        self.max_condition = max_condition

    def _fit(self, x: np.ndarray, y: np.ndarray, x_val=None, x_val_ood=None) -> None:
        x = x.astype(np.float64)
        self.classes_ = np.unique(y)
        self.means_ = np.stack([x[y == c].mean(axis=0) for c in self.classes_])  # (C, d)
        centred = x - self.means_[np.searchsorted(self.classes_, y)]  # (N, d)
        cov = centred.T @ centred / len(x)
        eig = np.linalg.eigvalsh(cov)
        singular = len(x) <= x.shape[1] or eig[0] <= eig[-1] / self.max_condition
        self.shrinkage_ = 0.0
        if singular:
            cov, self.shrinkage_ = ledoit_wolf(centred, assume_centered=True)
            warnings.warn(
                f"Mahalanobis: the tied covariance of {len(x)} examples in {x.shape[1]} dimensions is singular; "
                f"shrunk by Ledoit-Wolf (shrinkage {self.shrinkage_:.3g})",
                stacklevel=3,
            )
        self.precision_ = np.linalg.inv(cov)

    def chunk_statistics(self, X, y, step: int, rows) -> dict[str, np.ndarray]:
        """Pass 0: each class's row count and feature sum; pass 1: the Gram matrix of class-centred rows."""
        x = self._check_input(X, fitting=True).astype(np.float64)
        y = self._check_labels(y, len(x))
        if step == 0:
            return {
                **{f"count:{c}": np.array([np.sum(y == c)]) for c in np.unique(y)},
                **{f"sum:{c}": x[y == c].sum(axis=0) for c in np.unique(y)},
            }
        centred = x - self.means_[np.searchsorted(self.classes_, y)]
        return {"gram": centred.T @ centred, "rows": np.array([len(x)])}

    def fit_statistics(self, step: int, totals: dict[str, np.ndarray], n_features: int) -> bool:
        """The class means after pass 0; the tied covariance and its inverse after pass 1.

        A singular covariance needs the rows themselves for Ledoit-Wolf shrinkage: refused here.
        """
        self._check_params()
        self.n_features_in_ = int(n_features)
        if step == 0:
            self.classes_ = np.array(sorted(int(k.split(":")[1]) for k in totals if k.startswith("count:")))
            self.means_ = np.stack([totals[f"sum:{c}"] / totals[f"count:{c}"][0] for c in self.classes_])
            return False
        n = int(totals["rows"][0])
        cov = totals["gram"] / n
        eig = np.linalg.eigvalsh(cov)
        if n <= n_features or eig[0] <= eig[-1] / self.max_condition:
            raise AUError(
                f"Mahalanobis: the tied covariance of {n} examples in {n_features} dimensions is singular; "
                "its Ledoit-Wolf shrinkage needs the rows in one process: fit it with the local engine"
            )
        self.shrinkage_ = 0.0
        self.precision_ = np.linalg.inv(cov)
        return True

    def distances(self, features) -> np.ndarray:
        """Squared Mahalanobis distance of each row to each class mean, shape (n, C)."""
        self._check_fitted()
        return self._distances(self._check_input(features))

    def _distances(self, x: np.ndarray) -> np.ndarray:
        z = x.astype(np.float64)
        out = np.empty((len(z), len(self.means_)))
        for c, mu in enumerate(self.means_):
            d = z - mu
            out[:, c] = ((d @ self.precision_) * d).sum(axis=1)  # d^T P d per row, as one matmul
        return out

    def _score(self, x: np.ndarray, pred=None) -> np.ndarray:
        return -self._distances(x).min(axis=1)
