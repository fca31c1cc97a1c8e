"""The one shape every coverage score has: a scikit-learn-style estimator over feature arrays.

``__init__`` only stores its keyword arguments; ``fit(features, labels=None)`` validates them
against the class's declared constraints and returns ``self``; fitted state ends in ``_``;
``score(features)`` returns one float per input, of shape (n,), and **higher always means more
in-distribution**. Inputs are checked once here: 2-D, finite, the feature count seen at fit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from au.errors import AUError

Constraint = tuple[Callable[[Any], bool], str]


class NotFittedError(AUError):
    """``score`` was called before ``fit``."""


class Detector:
    """Base class: subclasses set ``name``, ``input`` and ``_constraints`` and implement ``_fit``/``_score``.

    ``input`` says what the detector reads: ``"logits"`` (the model's output), ``"features"`` (one
    layer's activations) or ``"images"`` (it runs the model itself, for input pre-processing).
    """

    name: ClassVar[str] = "detector"
    input: ClassVar[str] = "features"
    needs_predictions: ClassVar[bool] = False  # score(features, pred=...) wants the model's predictions
    _constraints: ClassVar[dict[str, Constraint]] = {}

    def get_params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._constraints}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    # ------------------------------------------------------------------ checks

    def _check_params(self) -> None:
        for key, (ok, expected) in self._constraints.items():
            value = getattr(self, key)
            if not ok(value):
                raise AUError(f"{type(self).__name__}: {key}={value!r} is invalid; expected {expected}")

    def _check_array(self, x: Any, what: str = "features", fitting: bool = False) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2:
            raise AUError(f"{type(self).__name__}: {what} must be 2-D (n, features), got shape {x.shape}")
        if not np.issubdtype(x.dtype, np.number):
            raise AUError(f"{type(self).__name__}: {what} must be numeric, got {x.dtype}")
        x = x.astype(np.float32, copy=False) if x.dtype != np.float64 else x
        if not np.isfinite(x).all():
            bad = int((~np.isfinite(x)).any(axis=1).sum())
            raise AUError(
                f"{type(self).__name__}: {what} hold NaN or infinite values in {bad} row(s); "
                "remove those rows or fix the features before scoring"
            )
        if fitting:
            if len(x) == 0:
                raise AUError(f"{type(self).__name__}: cannot fit on 0 examples")
            self.n_features_in_ = x.shape[1]
        elif x.shape[1] != self.n_features_in_:
            raise AUError(
                f"{type(self).__name__}: {what} have {x.shape[1]} features, but the detector was fitted "
                f"with {self.n_features_in_}"
            )
        return x

    def _check_labels(self, labels: Any, n: int) -> np.ndarray:
        if labels is None:
            raise AUError(f"{type(self).__name__} needs the training labels: fit(features, labels)")
        labels = np.asarray(labels)
        if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer) or (labels < 0).any():
            raise AUError(
                f"{type(self).__name__}: labels must be {n} non-negative integers, got {labels.dtype} {labels.shape}"
            )
        return labels.astype(np.int64)

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_features_in_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet; call fit(features, labels) first")

    # ------------------------------------------------------------------ the API

    def fit(self, features: Any, labels: Any = None) -> Detector:
        """Fit on in-distribution training features (n, d) and, where needed, their labels (n,)."""
        self._check_params()
        x = self._check_array(features, fitting=True)
        self._fit(x, labels)
        return self

    def score(self, features: Any) -> np.ndarray:
        """In-distribution score of each row of ``features`` (n, d): shape (n,), higher = more in-distribution."""
        self._check_fitted()
        x = self._check_array(features)
        scores = np.asarray(self._score(x), dtype=np.float64).reshape(-1)
        assert scores.shape == (len(x),), (type(self).__name__, scores.shape)
        return scores

    def tune(self, val_in: Any, val_out: Any = None) -> None:
        """Use in-distribution (and, if given, OOD) validation inputs after ``fit``; most detectors need none."""

    def _fit(self, x: np.ndarray, labels: Any) -> None:
        pass

    def _score(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError
