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
the combination falls back to equal weights on the rank features, and says so.

The combination is not always the best candidate, and which one is best depends on the target
risk: a logistic fit to *all* errors is not tuned to the few inputs at the top of the ranking
that a tight epsilon decides. So, for each epsilon, three kinds of candidate are cross-validated
within the fitting part, by the share of a held-out fold that the certificate would accept (its
test on the fold's counts scaled to the certifying part's size, :class:`Judge`; ties: by AURC):

* the logistic combination;
* each entry alone;
* the weakest rank of a few entries: the smallest of their rank log-odds, each turned the way it
  points, so an input is accepted only when every one of them finds it familiar. The entries are
  chosen greedily on the training folds, by that same judge (a conjunction of detectors, no
  published method).

The best, refitted on the whole fitting part, is the combined score of that split and epsilon:
``choice`` names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
from scipy.special import logit
from sklearn.linear_model import LogisticRegression

from au.errors import AUError
from au.guarantees.ltt import scaled_p_values, tie_groups
from au.guarantees.selective import Ranked

MIN_CLASS = 5
"""Errors and non-errors the fitting part needs before weights are fitted (fewer: equal weights)."""
WEAKEST = "weakest rank"
"""The feature that is the smallest of the entries' rank log-odds, each turned the way its score points."""
COMBINATION = "combination"
"""What ``choice`` says when the fitted combination, not a single entry, is the combined score."""
FOLDS = 3
"""Folds of the fitting part that judge the candidates: the combination, each entry, a weakest rank."""
WEAKEST_SIZE = 3
"""The most entries a weakest-rank candidate takes."""


@dataclass(frozen=True)
class Combination:
    """A fitted combination: the sorted fitting scores per entry, their directions, and the weights."""

    names: tuple[str, ...]
    sorted_fit: tuple[np.ndarray, ...]  # each (m,), ascending
    directions: np.ndarray  # (d,) +1 where a higher score meant fewer errors on the fitting part, else -1
    weights: np.ndarray  # (d + 1,): one per entry, then the weakest rank's
    intercept: float
    fitted: bool  # False: equal weights (the fitting part had too few errors or non-errors)
    chosen: int | None = None  # an entry the fitting part judged best for its epsilon: used alone
    subset: tuple[int, ...] | None = None  # entries whose weakest rank is the score (see the module's text)

    def features(self, scores: np.ndarray) -> np.ndarray:
        """(n, d + 1): the rank log-odds of ``scores`` (n, d) against the fitting part, and the weakest."""
        ranks = self._ranks(scores)
        return np.column_stack([ranks, (ranks * self.directions).min(axis=1)])

    def oriented_ranks(self, scores: np.ndarray) -> np.ndarray:
        """(n, d): the rank log-odds of ``scores`` (n, d), each turned the way its score points."""
        return self._ranks(scores) * self.directions

    def _ranks(self, scores: np.ndarray) -> np.ndarray:
        """(n, d): the rank log-odds of ``scores`` (n, d) against the fitting part."""
        cols = []
        for j, ref in enumerate(self.sorted_fit):
            m = len(ref)
            below = np.searchsorted(ref, scores[:, j], side="right")  # fitting scores <= each score
            cols.append(logit(np.clip(below / m, 0.5 / m, 1.0 - 0.5 / m)))
        return np.stack(cols, axis=1)

    def score(self, scores: np.ndarray) -> np.ndarray:
        """The combined score of ``scores`` (n, d): higher = accept first."""
        if self.chosen is not None:
            return np.asarray(scores[:, self.chosen], dtype=np.float64)
        if self.subset is not None:
            return self.oriented_ranks(scores)[:, list(self.subset)].min(axis=1)
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
            "choice": self.choice,
        }

    @property
    def choice(self) -> str:
        """What the combined score is: ``combination``, an entry's name, or ``weakest rank of a, b``."""
        if self.chosen is not None:
            return self.names[self.chosen]
        if self.subset is not None:
            return f"{WEAKEST} of {', '.join(self.names[j] for j in sorted(self.subset))}"
        return COMBINATION


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


@dataclass(frozen=True)
class Judge:
    """How a candidate is judged at ``epsilon``: the share of inputs the certificate would accept.

    A candidate's risk-coverage curve on some inputs, its counts scaled to the ``n_certify``
    inputs that will certify, is put to the certificate's own test (the exact binomial p-value
    of "risk > epsilon" at ``delta``, the p-value Learn then Test orders its thresholds by,
    :func:`au.guarantees.ltt.ltt_sequence`); the largest share whose threshold passes is the
    candidate's value (Learn then Test would also stop at the first threshold that fails, which
    this does not model), and ties (often at nothing, for a tight epsilon on few inputs) go to
    the lower AURC.
    A share seen on a few hundred inputs is a noisy guess of what a certificate on thousands
    accepts; the test discounts it as the certificate will.
    """

    epsilon: float
    n_certify: int
    delta: float

    def __call__(self, curve: _Curve) -> tuple[float, float]:
        p = scaled_p_values(curve.accepted, curve.wrong, curve.n, self.n_certify, self.epsilon)
        ok = p <= self.delta
        return (float(curve.coverage[ok].max()) if ok.any() else 0.0), -curve.area


class _Curve:
    """One score's risk-coverage curve on some inputs: accepted and wrong counts per tie group, coverage, AURC."""

    def __init__(self, scores: np.ndarray, errors: np.ndarray) -> None:
        self.n = len(errors)
        _, self.accepted, self.wrong = tie_groups(Ranked(scores, errors))
        self.coverage = self.accepted / self.n
        risk = self.wrong / self.accepted
        self.area = float(
            np.dot(risk, np.diff(self.coverage, prepend=0.0))
        )  # selective.aurc, from these counts


def choose_combinations(
    names, scores: np.ndarray, errors: np.ndarray, epsilons, n_certify: int, delta: float, seed: int = 0
) -> dict:
    """The best candidate for each of ``epsilons`` on ``scores`` (m, d), the fitting part's: {epsilon: Combination}.

    The candidates (the module's text) are judged on ``FOLDS`` folds of the fitting part: each is
    built on the other folds and measured on the held one by a :class:`Judge` (the share a
    certificate on ``n_certify`` inputs at ``delta`` would accept); the best is refitted on the
    whole fitting part. The logistic fits and the risk-coverage curves are shared by the epsilons.
    The certifying data is never looked at.
    """
    scores = np.asarray(scores, dtype=np.float64)
    errors = np.asarray(errors, dtype=bool)
    full = fit_combination(names, scores, errors, seed)
    folds = np.random.default_rng(seed).permutation(len(errors)) % FOLDS
    if any(errors[folds == k].all() or not errors[folds == k].any() for k in range(FOLDS)):
        return {eps: full for eps in epsilons}  # a fold without both kinds: nothing to judge by
    d, parts = scores.shape[1], []
    for k in range(FOLDS):
        held, rest = folds == k, folds != k
        part = fit_combination(names, scores[rest], errors[rest], seed)
        fixed = [_Curve(scores[held, j], errors[held]) for j in range(d)]
        fixed.append(_Curve(part.score(scores[held]), errors[held]))
        ranks = (
            part.oriented_ranks(scores[rest]),
            part.oriented_ranks(scores[held]),
        )  # once, for every epsilon
        parts.append((errors[rest], errors[held], ranks, fixed, {}))
    whole: dict = {}
    whole_ranks = None
    chosen = {}
    for eps in epsilons:
        judge = Judge(eps, n_certify, delta)
        judged = np.zeros((d + 2, FOLDS, 2))  # candidates: the entries, the combination, the weakest rank
        for k, (rest_errors, held_errors, (rest_ranks, held_ranks), fixed, cache) in enumerate(parts):
            subset = weakest_subset(rest_ranks, rest_errors, judge, cache)
            weakest = _Curve(held_ranks[:, list(subset)].min(axis=1), held_errors)
            judged[:, k] = [judge(c) for c in (*fixed, weakest)]
        mean = judged.mean(axis=1)
        best = max(range(d + 2), key=lambda c: (mean[c, 0], mean[c, 1], c == d))  # ties: the combination
        if best < d:
            chosen[eps] = replace(full, chosen=best)
        elif best == d + 1:
            whole_ranks = full.oriented_ranks(scores) if whole_ranks is None else whole_ranks
            subset = weakest_subset(whole_ranks, errors, judge, whole)
            chosen[eps] = replace(full, subset=subset)
        else:
            chosen[eps] = full
    return chosen


def accepted_share(scores: np.ndarray, errors: np.ndarray, epsilon: float) -> float:
    """The largest share of inputs a threshold on ``scores`` accepts with a selective risk of at most ``epsilon``."""
    curve = _Curve(scores, errors)
    ok = curve.wrong <= epsilon * curve.accepted
    return float(curve.coverage[ok].max()) if ok.any() else 0.0


def weakest_subset(
    oriented: np.ndarray, errors: np.ndarray, judge: Judge, cache: dict | None = None
) -> tuple:
    """Up to ``WEAKEST_SIZE`` columns of ``oriented`` (m, d) whose smallest the ``judge`` values most.

    Greedy: the best column alone, then the column whose addition is valued most, while an
    addition raises the share. ``cache`` keeps the curves of the subsets tried, for other
    epsilons on the same columns.
    """
    cache = {} if cache is None else cache

    def judged(columns: list[int]) -> tuple[float, float]:
        key = frozenset(columns)
        if key not in cache:
            cache[key] = _Curve(oriented[:, columns].min(axis=1), errors)
        return judge(cache[key])

    chosen: list[int] = []
    best = (-1.0, -np.inf)
    while len(chosen) < min(WEAKEST_SIZE, oriented.shape[1]):
        value, j = max((judged([*chosen, j]), j) for j in range(oriented.shape[1]) if j not in chosen)
        if chosen and value[0] <= best[0]:
            break
        best, chosen = value, [*chosen, j]
    return tuple(chosen)


def per_split_scores(
    names, scores: np.ndarray, errors: np.ndarray, fit: np.ndarray, certify: np.ndarray, epsilons, delta: float,
    seed: int = 0,
) -> dict:  # fmt: skip
    """The combined score of every input at each of ``epsilons`` under each split's own fit.

    ``scores`` (n, d) are the entries' scores of the stream, ``fit`` (n_splits, n) the fitting
    parts, ``certify`` (n_splits, n) the parts that certify (their sizes judge the candidates).
    Returns {epsilon: ((n_splits, n) scores, the fits)}.
    """
    out = {eps: (np.empty(fit.shape, dtype=np.float64), []) for eps in epsilons}
    for i, part in enumerate(fit):
        chosen = choose_combinations(
            names, scores[part], errors[part], epsilons, int(certify[i].sum()), delta, seed
        )
        for eps, c in chosen.items():
            out[eps][0][i] = c.score(scores)
            out[eps][1].append(c)
    return out


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
        "choices": {c: sum(f.choice == c for f in fits) for c in dict.fromkeys(f.choice for f in fits)},
        "splits": len(fits),
    }
