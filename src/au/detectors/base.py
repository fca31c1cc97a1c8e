"""The one contract every coverage score keeps: a scikit-learn-style estimator that says what it reads.

* ``__init__`` only stores its keyword arguments; :meth:`Detector.get_params` returns every one of
  them (read from the signature) and :func:`clone` builds an unfitted copy from them.
* Each class declares, as data, what it consumes (:class:`Consumes`): a layer's features, the
  logits, or images (it then holds the model and runs it), whether fitting needs the labels,
  whether scoring needs the model's predictions, and whether fitting uses validation data. The
  pipeline (:mod:`au.detectors.inputs`) hands a detector exactly that; nothing outside this
  package asks a detector for its name.
* ``fit(X, y=None, *, X_val=None, X_val_ood=None)`` checks the parameters and every array, and
  returns ``self``. Fitted state ends in ``_``; fitting never changes a constructor parameter.
* ``score_samples(X, *, pred=None)`` returns one float per row, shape (n,), finite, and **higher
  always means more in-distribution**. (There is no ``score``: in scikit-learn that name returns
  one number for a whole dataset.)

**Scaling out.** ``scale_out`` declares how an engine that splits the rows over many workers
(:mod:`au.engines.spark`) fits and scores the detector, with the detector's own code on each chunk:

* ``"rows"``: nothing to learn beyond the input width (fitted on a few rows); scored row by row.
* ``"statistics"``: fitted from statistics summed over chunks of the training rows, in passes
  (:meth:`Detector.chunk_statistics`, :meth:`Detector.fit_statistics`); scored row by row.
* ``"neighbours"``: fitted on a few rows (or in statistics passes); scored against the training
  rows block by block (:meth:`Detector.reference_partial`), the blocks' partial results merged
  (:meth:`Detector.merge_partials`) - exactly what one block of every row gives (kNN's k-th
  neighbour; ParzenLSH's exact sums), or an estimate whose blocks' parts add up (ParzenLSH's DEANN).
* ``None``: needs all training rows in one process (or images); the local engine only.

An engine calls :meth:`Detector.check_scale_out` before it claims its output, and combines the
statistics of chunks key by key, in any order and grouping (:meth:`Detector.combine_statistics`).

Inputs are checked once, here: features and logits are 2-D, numeric and finite with the fitted
column count; images are uint8 (n, H, W, C) of the fitted shape. Every refusal is one line naming
the detector, what it got and what it expected.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from au.errors import AUError

Constraint = tuple[Callable[[Any], bool], str]
INPUTS = ("logits", "features", "images")
VALIDATION = ("none", "optional", "required")


@dataclass(frozen=True)
class Consumes:
    """What a detector reads, declared once per class.

    Attributes
    ----------
    input : {"logits", "features", "images"}
        The array ``fit`` and ``score_samples`` take: the model's logits (n, K), one layer's
        activations (n, d), or uint8 images (n, H, W, C) - a detector that reads images holds the
        model (its ``model`` parameter) and runs it itself.
    labels : bool
        ``fit`` needs the training labels ``y``.
    predictions : bool
        ``score_samples`` needs the model's predictions ``pred`` (n,).
    validation : {"none", "optional", "required"}
        ``fit`` uses in-distribution validation inputs ``X_val`` (and OOD ones ``X_val_ood``, when
        given), never the test sets: ``required`` cannot fit without them, ``optional`` tunes with
        them when OOD validation inputs are given.
    min_validation : int
        The fewest validation inputs it can use.
    """

    input: str
    labels: bool = False
    predictions: bool = False
    validation: str = "none"
    min_validation: int = 1

    def __post_init__(self) -> None:
        assert self.input in INPUTS, self.input
        assert self.validation in VALIDATION, self.validation


class NotFittedError(AUError):
    """``score_samples`` was called before ``fit``."""


class Detector:
    """Base class: subclasses set ``name``, ``consumes`` and ``_constraints`` and implement ``_fit``/``_score``.

    ``_constraints`` maps every constructor parameter to (check, what is expected); ``_reported``
    names the fitted attributes worth reporting (:meth:`fitted_summary`); ``score_unit`` says
    what the score is ("log-density", "probability", ...). ``_scoring_counts`` names the integer
    attributes a scoring leaves behind as counts over its rows (ParzenLSH's exact fallbacks): when
    one set is scored in chunks of rows (:func:`au.detectors.inputs.score_in_chunks`) they are
    summed over the chunks, so that they describe the whole set, as one call would.
    """

    name: ClassVar[str] = "detector"
    consumes: ClassVar[Consumes] = Consumes("features")
    score_unit: ClassVar[str] = "score"
    _constraints: ClassVar[dict[str, Constraint]] = {}
    _reported: ClassVar[tuple[str, ...]] = ()
    _scoring_counts: ClassVar[tuple[str, ...]] = ()
    scale_out: ClassVar[str | None] = None

    # ------------------------------------------------------------------ parameters

    @classmethod
    def param_names(cls) -> tuple[str, ...]:
        """The constructor's keyword parameters, in order."""
        if cls.__init__ is object.__init__:
            return ()
        params = inspect.signature(cls.__init__).parameters.values()
        return tuple(p.name for p in params if p.name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD)

    def get_params(self) -> dict[str, Any]:
        """Every constructor parameter and its value: ``type(det)(**det.get_params())`` is an unfitted copy."""
        return {k: getattr(self, k) for k in self.param_names()}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items() if k != "model")
        return f"{type(self).__name__}({params})"

    def _check_params(self) -> None:
        for key, (ok, expected) in self._constraints.items():
            value = getattr(self, key)
            try:
                valid = bool(ok(value))
            except (TypeError, ValueError):
                valid = False
            if not valid:
                raise AUError(f"{type(self).__name__}: {key}={value!r} is invalid; expected {expected}")

    # ------------------------------------------------------------------ input checks

    def _check_input(self, x: Any, what: str = "", fitting: bool = False) -> np.ndarray:
        """``x`` checked against what the detector consumes (and, after fitting, against what it saw)."""
        if self.consumes.input == "images":
            return self._check_images(x, what or "images", fitting)
        who, what = type(self).__name__, what or self.consumes.input
        x = np.asarray(x)
        if x.ndim != 2:
            raise AUError(f"{who}: {what} must be 2-D (n, {what}), got shape {x.shape}")
        if not np.issubdtype(x.dtype, np.number):
            raise AUError(f"{who}: {what} must be numeric, got {x.dtype}")
        x = x.astype(np.float32, copy=False) if x.dtype != np.float64 else x
        if not np.isfinite(x).all():
            bad = int((~np.isfinite(x)).any(axis=1).sum())
            raise AUError(
                f"{who}: {what} hold NaN or infinite values in {bad} row(s); "
                "remove those rows or fix the inputs before scoring"
            )
        if fitting:
            if len(x) == 0:
                raise AUError(f"{who}: cannot fit on 0 examples")
            self.n_features_in_ = int(x.shape[1])
        elif x.shape[1] != self.n_features_in_:
            raise AUError(
                f"{who}: {what} have {x.shape[1]} columns, but the detector was fitted with {self.n_features_in_}"
            )
        return x

    def _check_images(self, images: Any, what: str, fitting: bool) -> np.ndarray:
        who = type(self).__name__
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4:
            raise AUError(f"{who}: {what} must be uint8 (N, H, W, C), got {images.dtype} {images.shape}")
        shape = tuple(int(s) for s in images.shape[1:])
        if fitting:
            if len(images) == 0:
                raise AUError(f"{who}: cannot fit on 0 images")
            self.image_shape_ = shape
            self.n_features_in_ = int(np.prod(shape))
        elif shape != self.image_shape_:
            raise AUError(
                f"{who}: {what} have shape {shape} (H, W, C), but the detector was fitted on {self.image_shape_}"
            )
        return images

    def _check_labels(self, labels: Any, n: int) -> np.ndarray:
        who = type(self).__name__
        if labels is None:
            raise AUError(f"{who} needs the training labels: fit(X, y)")
        labels = np.asarray(labels)
        if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer) or (labels < 0).any():
            raise AUError(
                f"{who}: labels must be {n} non-negative integers, got {labels.dtype} {labels.shape}"
            )
        return labels.astype(np.int64)

    def _check_pred(self, pred: Any, n: int) -> np.ndarray:
        who = type(self).__name__
        if pred is None:
            raise AUError(f"{who} needs the model's predictions: score_samples(X, pred=...)")
        pred = np.asarray(pred)
        if pred.shape != (n,) or not np.issubdtype(pred.dtype, np.integer):
            raise AUError(f"{who}: pred must be {n} integers, got {pred.dtype} {pred.shape}")
        return pred.astype(np.int64)

    def _check_validation(self, x_val: Any, x_val_ood: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
        who, c = type(self).__name__, self.consumes
        if c.validation == "none":
            if x_val is not None or x_val_ood is not None:
                raise AUError(f"{who} uses no validation data; fit it without X_val / X_val_ood")
            return None, None
        if x_val is None:
            if c.validation == "required" or x_val_ood is not None:
                raise AUError(
                    f"{who} needs in-distribution validation inputs: fit(X, y, X_val=...) "
                    f"with at least {c.min_validation}"
                )
            return None, None
        x_val = self._check_input(x_val, "validation inputs")
        if len(x_val) < c.min_validation:
            raise AUError(f"{who}: {len(x_val)} validation inputs, needs at least {c.min_validation}")
        if x_val_ood is not None:
            x_val_ood = self._check_input(x_val_ood, "OOD validation inputs")
        return x_val, x_val_ood

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_features_in_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet; call fit(X, y) first")

    # ------------------------------------------------------------------ the API

    def fit(self, X: Any, y: Any = None, *, X_val: Any = None, X_val_ood: Any = None) -> Detector:
        """Fit on in-distribution training inputs ``X`` (and labels ``y``, when consumed); returns ``self``.

        ``X_val`` / ``X_val_ood``: in-distribution and OOD validation inputs, for detectors that
        declare ``consumes.validation`` (never the test sets).
        """
        self._check_params()
        x = self._check_input(X, fitting=True)
        labels = self._check_labels(y, len(x)) if self.consumes.labels else None
        x_val, x_val_ood = self._check_validation(X_val, X_val_ood)
        self._fit(x, labels, x_val, x_val_ood)
        return self

    def score_samples(self, X: Any, *, pred: Any = None) -> np.ndarray:
        """In-distribution score of each row of ``X``: shape (n,), finite, higher = more in-distribution.

        ``pred``: the model's predictions (n,), for detectors that declare ``consumes.predictions``.
        """
        self._check_fitted()
        x = self._check_input(X)
        pred = self._check_pred(pred, len(x)) if self.consumes.predictions else None
        scores = np.asarray(self._score(x, pred), dtype=np.float64).reshape(-1)
        assert scores.shape == (len(x),), (type(self).__name__, scores.shape)
        return scores

    def fitted_summary(self) -> dict[str, Any]:
        """The fitted choices worth reporting (a tuned epsilon, a covariance shrinkage, ...), as plain values."""
        out = {}
        for key in self._reported:
            if hasattr(self, key):
                value = getattr(self, key)
                out[key.rstrip("_")] = value.item() if isinstance(value, np.generic) else value
        return out

    def _fit(self, x: np.ndarray, y: np.ndarray | None, x_val, x_val_ood) -> None:
        """Learn from checked inputs; detectors with nothing to learn keep this."""

    # ------------------------------------------------------------------ scaling out (see the module's docstring)

    def check_scale_out(self) -> None:
        """Before an engine claims its output: the parameters, checked as ``fit`` checks them; one line when
        this detector cannot be scaled out with them (``scale_out`` is None, or a parameter rules it out)."""
        if self.scale_out is None:
            raise AUError(f"{type(self).__name__} needs all training rows (or the images) in one process")
        self._check_params()

    def chunk_statistics(self, X: Any, y: Any, step: int, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Pass ``step``'s statistics of one chunk of training rows, to be combined over chunks.

        ``rows`` are the chunk's positions among the training rows (0 .. n-1), for detectors that
        draw rows (held-out points, samples) as their local fit would. The default - for
        ``"rows"`` and ``"neighbours"`` detectors - counts the rows and checks them.
        """
        x = self._check_input(X, fitting=True)
        return {"rows": np.array([len(x)], dtype=np.int64)}

    def combine_statistics(self, a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Two chunks' statistics as one: summed key by key (a detector may combine some keys otherwise).

        Key by key, associative and commutative, with ``{}`` as identity: an engine may combine one
        key's values apart from the others, in any grouping.
        """
        return {k: a[k] + b[k] if k in a and k in b else a.get(k, b.get(k)) for k in {**a, **b}}

    def fit_statistics(self, step: int, totals: dict[str, np.ndarray], n_features: int) -> bool:
        """Learn from pass ``step``'s combined statistics; True once fitted (else another pass follows).

        The default keeps the input width and the number of training rows (``n_samples_fit_``).
        """
        self._check_params()
        self.n_features_in_ = int(n_features)
        self.n_samples_fit_ = int(totals["rows"][0])
        return True

    def reference_partial(self, reference: Any, X: Any, rows: np.ndarray) -> np.ndarray:
        """``"neighbours"`` detectors: each row of ``X`` against one block of training rows (at positions ``rows``), (n, m)."""
        raise NotImplementedError

    def merge_partials(self, partials: np.ndarray) -> np.ndarray:
        """``"neighbours"`` detectors: the scores (n,) from every block's partial results, (blocks, n, m)."""
        raise NotImplementedError

    def _score(self, x: np.ndarray, pred: np.ndarray | None) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


def clone(detector: Detector) -> Detector:
    """An unfitted detector with the same parameters (a model parameter is shared, not copied)."""
    return type(detector)(**detector.get_params())
