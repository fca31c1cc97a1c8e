"""Deep nearest neighbours (Sun et al. 2022, arXiv 2204.06507), searched with faiss."""

from __future__ import annotations

import numpy as np

from au.detectors.base import Consumes, Detector
from au.errors import AUError


def normalise_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), float32 C-contiguous for faiss."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, 1e-12))


class KNN(Detector):
    """score(z) = -|| z/|z| - z_(k) ||, minus the distance to the k-th nearest L2-normalised training feature.

    Exact search (``faiss.IndexFlatL2``) over the training features of the penultimate layer.

    Parameters
    ----------
    k : int
        Which neighbour; the paper uses 50 on CIFAR-10.
    normalize : bool
        L2-normalise features (the paper's choice); ``False`` uses raw distances.

    Fitted attributes: ``index_`` (the faiss index), ``n_samples_fit_``.
    """

    name = "knn"
    consumes = Consumes("features")
    score_unit = "minus distance to the k-th neighbour"
    scale_out = "neighbours"
    _constraints = {
        "k": (lambda v: isinstance(v, int) and v >= 1, "an integer >= 1"),
        "normalize": (lambda v: isinstance(v, bool), "True or False"),
    }

    def __init__(self, k: int = 50, normalize: bool = True) -> None:
        self.k = k
        self.normalize = normalize

    def _prepare(self, x: np.ndarray) -> np.ndarray:
        return normalise_rows(x) if self.normalize else np.ascontiguousarray(x, dtype=np.float32)

    def _fit(self, x: np.ndarray, y=None, x_val=None, x_val_ood=None) -> None:
        import faiss

        if len(x) < self.k:
            raise AUError(f"KNN: k={self.k} but only {len(x)} training examples; lower k")
        self.index_ = faiss.IndexFlatL2(x.shape[1])
        self.index_.add(self._prepare(x))
        self.n_samples_fit_ = len(x)

    def _score(self, x: np.ndarray, pred=None) -> np.ndarray:
        squared, _ = self.index_.search(self._prepare(x), self.k)  # (n, k) squared L2, ascending
        return -np.sqrt(np.maximum(squared[:, -1], 0.0))

    def reference_partial(self, reference, X, rows) -> np.ndarray:
        """Squared distances to the ``k`` nearest rows of this block of training rows, ascending, (n, k).

        A block with fewer than ``k`` rows pads with infinity.
        """
        import faiss

        ref = self._prepare(self._check_input(reference, "reference"))
        index = faiss.IndexFlatL2(ref.shape[1])
        index.add(ref)
        squared, _ = index.search(self._prepare(self._check_input(X)), min(self.k, len(ref)))
        pad = np.full((len(squared), self.k - squared.shape[1]), np.inf, dtype=squared.dtype)
        return np.hstack([squared, pad])

    def fit_statistics(self, step: int, totals: dict[str, np.ndarray], n_features: int) -> bool:
        fitted = super().fit_statistics(step, totals, n_features)
        if self.n_samples_fit_ < self.k:
            raise AUError(f"KNN: k={self.k} but only {self.n_samples_fit_} training examples; lower k")
        return fitted

    def merge_partials(self, partials: np.ndarray) -> np.ndarray:
        """The k-th smallest squared distance over all blocks' k nearest: the exact k-th neighbour."""
        nearest = np.sort(np.concatenate(list(partials), axis=1), axis=1)[:, self.k - 1]
        return -np.sqrt(np.maximum(nearest, 0.0))

    def __getstate__(self) -> dict:
        """faiss indexes are not picklable: store their serialised bytes."""
        import faiss

        state = self.__dict__.copy()
        if "index_" in state:
            state["index_"] = faiss.serialize_index(state["index_"])
        return state

    def __setstate__(self, state: dict) -> None:
        import faiss

        if "index_" in state:
            state["index_"] = faiss.deserialize_index(state["index_"])
        self.__dict__.update(state)
