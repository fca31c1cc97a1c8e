"""``combo``: one coverage score combined from several, fitted where it never certifies.

Each entry's score is first mapped to the log-odds of its rank among the fitting inputs
(``logit`` of the empirical CDF, ends kept off 0 and 1), so scores on any scale - a softmax
probability, a distance, a log-density of -10,000 - weigh alike and a few extreme values cannot
dominate. One more feature is the weakest of those ranks, each turned the way its score points
on the fitting part (a score that ranks errors first is turned round): an input is only safe
when *every* score finds it familiar, and a weighted sum alone lets one very familiar score
outvote another that flags the input. A logistic regression (scikit-learn, L2, classes
balanced) then predicts "accepting this input is not an error"; its linear score ranks the
inputs. This is stacking (Wolpert 1992) of OOD and misclassification scores, the logistic
combination the Mahalanobis detector already uses across layers (Lee et al. 2018, arXiv
1807.03888).

The fit uses only a split's *fitting part*, which never certifies, so the certificate computed on
the rest stays valid. Where the fitting part holds too few errors (or too few non-errors) to fit,
the combination falls back to equal weights on the rank features, and says so. And where one
entry alone ranks the fitting part better than the combination does (cross-validated within the
fitting part), that entry is the combined score of the split: ``choice`` names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
from scipy.special import logit
from sklearn.linear_model import LogisticRegression

from au.errors import AUError
from au.guarantees.selective import aurc

MIN_CLASS = 5
"""Errors and non-errors the fitting part needs before weights are fitted (fewer: equal weights)."""
WEAKEST = "weakest rank"
COMBINATION = "combination"
"""What ``choice`` says when the fitted combination, not a single entry, is the combined score."""
FOLDS = 3
"""Folds of the fitting part that judge the combination against each entry alone."""
"""The feature that is the smallest of the entries' rank log-odds, each turned the way its score points."""


@dataclass(frozen=True)
class Combination:
    """A fitted combination: the sorted fitting scores per entry, their directions, and the weights."""

    names: tuple[str, ...]
    sorted_fit: tuple[np.ndarray, ...]  # each (m,), ascending
    directions: np.ndarray  # (d,) +1 where a higher score meant fewer errors on the fitting part, else -1
    weights: np.ndarray  # (d + 1,): one per entry, then the weakest rank's
    intercept: float
    fitted: bool  # False: equal weights (the fitting part had too few errors or non-errors)
    chosen: int | None = None  # an entry that ranked the fitting part better than any combination: used alone

    def features(self, scores: np.ndarray) -> np.ndarray:
        """(n, d + 1): the rank log-odds of ``scores`` (n, d) against the fitting part, and the weakest."""
        cols = []
        for j, ref in enumerate(self.sorted_fit):
            m = len(ref)
            below = np.searchsorted(ref, scores[:, j], side="right")  # fitting scores <= each score
            cols.append(logit(np.clip(below / m, 0.5 / m, 1.0 - 0.5 / m)))
        ranks = np.stack(cols, axis=1)
        return np.column_stack([ranks, (ranks * self.directions).min(axis=1)])

    def score(self, scores: np.ndarray) -> np.ndarray:
        """The combined score of ``scores`` (n, d): higher = accept first."""
        if self.chosen is not None:
            return np.asarray(scores[:, self.chosen], dtype=np.float64)
        return self.features(scores) @ self.weights + self.intercept

    @property
    def labels(self) -> tuple[str, ...]:
        """Names of the features, in the order of the weights: the entries, then ``WEAKEST``."""
        return (*self.names, WEAKEST)

    def as_dict(self) -> dict:
        return {
            "weights": {n: float(w) for n, w in zip(self.labels, self.weights, strict=True)},
            "intercept": self.intercept,
            "fitted": self.fitted,
            "choice": COMBINATION if self.chosen is None else self.names[self.chosen],
        }


def check_combination(names, available: Mapping[str, str]) -> tuple[str, ...]:
    """The entries ``names`` to combine, each known, from at least two detectors.

    ``available`` maps every entry of the scores to its detector (``knn@fc1`` -> ``knn``);
    ``("all",)`` names every entry. One detector at several layers is still one detector: its
    entries rank the inputs alike, and a combination of them is no combination of detectors.
    """
    asked = ",".join(names) or "none"
    names = tuple(available) if tuple(names) == ("all",) else tuple(dict.fromkeys(names))
    unknown = [n for n in names if n not in available]
    if unknown:
        raise AUError(f"--combo: no entry {unknown[0]!r} in the scores; they hold: {', '.join(available)}")
    detectors = list(dict.fromkeys(available[n] for n in names))
    if len(detectors) < 2:
        raise AUError(
            f"--combo {asked} combines at least two detectors' scores, got {len(detectors)} "
            f"({', '.join(detectors) or 'none'}); name entries of two or more detectors, score more detectors, "
            "or pass --combo none"
        )
    return names


def combined_entries(combo: tuple[str, ...], available: Mapping[str, str]) -> tuple[str, ...]:
    """The entries ``combo`` combines (see :class:`au.gold.config.GoldConfig`), from ``available``
    (entry -> detector): none when it is off, or when ``auto`` finds fewer than two detectors."""
    if not combo:
        return ()
    if tuple(combo) == ("auto",):
        if len(set(available.values())) < 2:
            return ()
        combo = ("all",)
    return check_combination(combo, available)


def fit_combination(names, scores: np.ndarray, errors: np.ndarray, seed: int = 0) -> Combination:
    """Fit the combination of ``scores`` (m, d) - the fitting part's - to predict ``~errors`` (m,)."""
    scores = np.asarray(scores, dtype=np.float64)
    errors = np.asarray(errors, dtype=bool)
    d = scores.shape[1]
    sorted_fit = tuple(np.sort(scores[:, j]) for j in range(d))
    bad = int(errors.sum())
    if min(bad, len(errors) - bad) < MIN_CLASS:
        weights = np.append(np.full(d, 1.0 / d), 0.0)
        return Combination(tuple(names), sorted_fit, np.ones(d), weights, 0.0, False)
    unfitted = Combination(tuple(names), sorted_fit, np.ones(d), np.zeros(d + 1), 0.0, False)
    features = unfitted.features(scores)
    # which way each score points: its mean rank among the non-errors above that among the errors
    directions = np.where(features[~errors, :d].mean(axis=0) >= features[errors, :d].mean(axis=0), 1.0, -1.0)
    features[:, d] = (features[:, :d] * directions).min(axis=1)
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000, random_state=seed)
    model.fit(features, ~errors)
    weights = model.coef_[0].astype(np.float64)
    return Combination(tuple(names), sorted_fit, directions, weights, float(model.intercept_[0]), True)


def choose_combination(names, scores: np.ndarray, errors: np.ndarray, seed: int = 0) -> Combination:
    """The combination fitted on ``scores`` (m, d), or the one entry that ranks these inputs better.

    Judged on the fitting part alone, by the mean AURC over ``FOLDS`` folds: the combination fitted
    on the other folds against each entry as it is. With few errors (the in-distribution stream of
    an accurate model) a combination of many scores can rank worse than its best member; then that
    member is the combined score. The certifying data is never looked at.
    """
    scores = np.asarray(scores, dtype=np.float64)
    errors = np.asarray(errors, dtype=bool)
    full = fit_combination(names, scores, errors, seed)
    folds = np.random.default_rng(seed).permutation(len(errors)) % FOLDS
    combined, single = [], []
    for k in range(FOLDS):
        held, rest = folds == k, folds != k
        if errors[held].all() or not errors[held].any():
            return full  # a fold without both kinds: nothing to judge by
        part = fit_combination(names, scores[rest], errors[rest], seed)
        combined.append(aurc(part.score(scores[held]), errors[held]))
        single.append([aurc(scores[held, j], errors[held]) for j in range(scores.shape[1])])
    best = int(np.argmin(np.mean(single, axis=0)))
    if np.mean(single, axis=0)[best] < np.mean(combined):
        return replace(full, chosen=best)
    return full


def per_split_scores(
    names, scores: np.ndarray, errors: np.ndarray, fit: np.ndarray, seed: int = 0
) -> tuple[np.ndarray, list[Combination]]:
    """The combined score of every input under each split's own fit: ((n_splits, n), the fits).

    ``scores`` (n, d) are the entries' scores of the stream, ``fit`` (n_splits, n) the fitting parts.
    """
    out = np.empty(fit.shape, dtype=np.float64)
    fits = []
    for i, part in enumerate(fit):
        c = choose_combination(names, scores[part], errors[part], seed)
        out[i] = c.score(scores)
        fits.append(c)
    return out, fits


def summary(fits: list[Combination]) -> dict:
    """What the leaderboard reports: the first split's weights, and each weight's mean and spread over splits."""
    w = np.stack([f.weights for f in fits])
    labels = fits[0].labels
    return {
        "entries": list(fits[0].names),
        "features": list(labels),
        **fits[0].as_dict(),
        "weights_mean": {n: float(v) for n, v in zip(labels, w.mean(axis=0), strict=True)},
        "weights_std": {n: float(v) for n, v in zip(labels, w.std(axis=0), strict=True)},
        "equal_weight_splits": int(sum(not f.fitted for f in fits)),
        "choices": {
            c: sum(f.as_dict()["choice"] == c for f in fits)
            for c in dict.fromkeys(f.as_dict()["choice"] for f in fits)
        },
        "splits": len(fits),
    }
