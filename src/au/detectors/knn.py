"""Deep nearest neighbours (Sun et al. 2022, arXiv 2204.06507), searched with faiss.

Which neighbour to measure, ``k``, follows the number of training rows by default (:func:`auto_k`).
"""

from __future__ import annotations

import numpy as np

from au.detectors.base import Consumes, Detector
from au.errors import AUError


def normalise_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), float32 C-contiguous for faiss."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, 1e-12))


AUTO = "auto"
ROWS_PER_NEIGHBOUR = (
    1000  # Sun et al.: k = 50 for 50,000 CIFAR-10 rows, 1,000 for 1.28M ImageNet rows, 10 at 1% of it
)


def auto_k(n: int) -> int:
    """The neighbour ``k`` for ``n`` training rows when ``k="auto"``: ``max(1, round(n / 1000))``, at most ``n``.

    Sun et al. (2022, arXiv 2204.06507, section 4 and their table of sampling ratios) keep ``k``
    proportional to the training rows: k = 50 for all 50,000 CIFAR-10 images, k = 1,000 for all
    1.28M ImageNet images and k = 10 when 1% of ImageNet is sampled - about one neighbour per
    1,000 rows. On 54,000 MNIST rows this gives 54 (the fixed k = 50 of before); below 1,500
    rows it gives the nearest neighbour itself, where a fixed k = 50 reaches across a whole class
    of a 500-row training set and certifies nothing.
    """
    return int(min(max(1, round(n / ROWS_PER_NEIGHBOUR)), max(n, 1)))


def _valid_k(v) -> bool:
    return v == AUTO or (isinstance(v, int) and not isinstance(v, bool) and v >= 1)


class KNN(Detector):
    """score(z) = -|| z/|z| - z_(k) ||, minus the distance to the k-th nearest L2-normalised training feature.

    Exact search (``faiss.IndexFlatL2``) over the training features of the penultimate layer.

    Parameters
    ----------
    k : int or "auto"
        Which neighbour. ``"auto"`` (default) chooses it at ``fit`` from the number of training
        rows ``n`` with :func:`auto_k` (about n / 1000, at least 1, as Sun et al. scale it with
        the sampling ratio); an integer is used as given and must not exceed ``n``.
    normalize : bool
        L2-normalise features (the paper's choice); ``False`` uses raw distances.

    Fitted attributes: ``k_`` (the neighbour used; reported by ``fitted_summary`` as ``k``),
    ``index_`` (the faiss index), ``n_samples_fit_``.
    """

    name = "knn"
    consumes = Consumes("features")
    score_unit = "minus distance to the k-th neighbour"
    scale_out = "neighbours"
    _constraints = {
        "k": (_valid_k, 'an integer >= 1 or "auto"'),
        "normalize": (lambda v: isinstance(v, bool), "True or False"),
    }
    _reported = ("k_",)

    def __init__(self, k: int | str = AUTO, normalize: bool = True) -> None:
        self.k = k
        self.normalize = normalize

    def _prepare(self, x: np.ndarray) -> np.ndarray:
        return normalise_rows(x) if self.normalize else np.ascontiguousarray(x, dtype=np.float32)

    def _resolve_k(self, n: int) -> None:
        """``k_`` for ``n`` training rows; an explicit ``k`` larger than ``n`` is refused."""
        if self.k == AUTO:
            self.k_ = auto_k(n)
        elif n < self.k:
            raise AUError(f"KNN: k={self.k} but only {n} training examples; lower k or use k='auto'")
        else:
            self.k_ = int(self.k)

    def _fit(self, x: np.ndarray, y=None, x_val=None, x_val_ood=None) -> None:
        import faiss

        self._resolve_k(len(x))
        self.index_ = faiss.IndexFlatL2(x.shape[1])
        self.index_.add(self._prepare(x))
        self.n_samples_fit_ = len(x)

    def _score(self, x: np.ndarray, pred=None) -> np.ndarray:
        squared, _ = self.index_.search(self._prepare(x), self.k_)  # (n, k) squared L2, ascending
        return -np.sqrt(np.maximum(squared[:, -1], 0.0))

    def reference_partial(self, reference, X, rows) -> np.ndarray:
        """Squared distances to the ``k_`` nearest rows of this block of training rows, ascending, (n, k_).

        Needs the fitted ``k_`` (:meth:`fit_statistics` first). A block with fewer than ``k_`` rows
        pads with infinity.
        """
        import faiss

        self._check_fitted()
        ref = self._prepare(self._check_input(reference, "reference"))
        index = faiss.IndexFlatL2(ref.shape[1])
        index.add(ref)
        squared, _ = index.search(self._prepare(self._check_input(X)), min(self.k_, len(ref)))
        pad = np.full((len(squared), self.k_ - squared.shape[1]), np.inf, dtype=squared.dtype)
        return np.hstack([squared, pad])

    def fit_statistics(self, step: int, totals: dict[str, np.ndarray], n_features: int) -> bool:
        """The local fit's ``k_``, from the number of training rows counted over all chunks."""
        fitted = super().fit_statistics(step, totals, n_features)
        self._resolve_k(self.n_samples_fit_)
        return fitted

    def merge_partials(self, partials: np.ndarray) -> np.ndarray:
        """The k_-th smallest squared distance over all blocks' k_ nearest: the exact k_-th neighbour."""
        nearest = np.sort(np.concatenate(list(partials), axis=1), axis=1)[:, self.k_ - 1]
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
