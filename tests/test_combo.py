"""The combined score ``combo``: fitted on a fitting part only, rank-based, at least as good as its parts."""

from __future__ import annotations

import numpy as np
import pytest

from au.errors import AUError
from au.gold.combo import (
    Judge,
    accepted_share,
    check_combination,
    choose_combinations,
    combined_entries,
    fit_combination,
    per_split_scores,
    weakest_subset,
)
from au.gold.config import GoldConfig
from au.guarantees import random_splits, split_check
from au.guarantees.splits import fit_parts


def _stream(n: int, rng):
    """A mixed stream: 40% OOD inputs (caught by score a), 3% of the rest misclassified (caught by score b).

    Each score knows one kind of error well and the other barely; an error is either kind.
    """
    ood = rng.random(n) < 0.4
    wrong = ~ood & (rng.random(n) < 0.03)
    a = rng.normal(size=n) - 4.0 * ood  # an OOD detector, blind to misclassification
    b = np.exp(rng.normal(size=n) - 4.0 * wrong - 0.5 * ood)  # a confidence, on its own (skewed) scale
    return np.stack([a, b], axis=1), ood | wrong


def test_combo_certifies_more_than_either_score_alone():
    rng = np.random.default_rng(0)
    scores, errors = _stream(6000, rng)
    splits = random_splits(6000, 20, 0.5, seed=0)
    fit = fit_parts(splits, 0.2, seed=0)
    ((combined, fits),) = per_split_scores(
        ("a", "b"), scores, errors, fit, splits & ~fit, [0.02], 0.05
    ).values()
    coverage = {
        name: split_check(s, errors, [0.02], 0.05, splits, method="ltt", fit=fit)[0].coverage.mean()
        for name, s in (("a", scores[:, 0]), ("b", scores[:, 1]), ("combo", combined))
    }
    assert coverage["combo"] > max(coverage["a"], coverage["b"]) + 0.05, coverage
    # both scores point the right way; the OOD score and the weaker of the two ranks carry the combination
    assert all(f.fitted and (f.directions == 1).all() for f in fits)
    mean = np.mean([f.weights for f in fits], axis=0)
    assert mean[0] > 0 and mean[2] > 0, mean


def test_accepted_share_is_the_largest_prefix_within_epsilon():
    scores = np.array([9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0])
    errors = np.array([0, 1, 0, 0, 0, 0, 0, 0, 1, 1], dtype=bool)
    assert accepted_share(scores, errors, 0.0) == 0.1  # only the first
    assert accepted_share(scores, errors, 0.125) == 0.8  # 1 error in 8; the risk rose to 1/2 at 2 and fell
    assert accepted_share(scores, errors, 0.3) == 1.0
    assert accepted_share(-scores, errors, 0.0) == 0.0  # the best-scored input is an error: nothing


def test_weakest_subset_takes_the_scores_each_error_needs_and_leaves_noise_out():
    """Two kinds of error, each seen by one score only: only their weakest rank accepts much at a small risk."""
    rng = np.random.default_rng(3)
    n = 4000
    kind = rng.integers(0, 3, size=n)  # 0: fine, 1: caught by column 0 only, 2: by column 1 only
    oriented = rng.normal(size=(n, 3))
    oriented[kind == 1, 0] -= 5.0
    oriented[kind == 2, 1] -= 5.0  # column 2 is noise
    errors = kind > 0
    assert weakest_subset(oriented, errors, Judge(0.01, 16000, 0.05)) in ((0, 1), (1, 0))
    both = accepted_share(oriented[:, :2].min(axis=1), errors, 0.01)
    assert both > 0.3 and both > 2 * max(accepted_share(oriented[:, j], errors, 0.01) for j in range(3))


def test_the_choice_is_made_for_each_epsilon_on_the_fitting_part():
    """A perfect entry beside noise is the choice; two half-blind entries give their weakest rank at a tight epsilon."""
    rng = np.random.default_rng(4)
    n = 3000
    errors = rng.random(n) < 0.3
    perfect = np.stack([rng.normal(size=n) - 6.0 * errors, rng.normal(size=n)], axis=1)
    assert choose_combinations(("good", "noise"), perfect, errors, [0.01], 12000, 0.05)[0.01].choice == "good"
    kind = np.where(errors, rng.integers(1, 3, size=n), 0)
    blind = rng.normal(size=(n, 3))  # the third is noise: the combination's own weakest rank takes it in
    blind[kind == 1, 0] -= 5.0
    blind[kind == 2, 1] -= 5.0
    chosen = choose_combinations(("a", "b", "noise"), blind, errors, [0.005, 0.2], 12000, 0.05)
    c = chosen[0.005]
    assert c.choice in ("weakest rank of a, b", "weakest rank of b, a"), c.choice
    np.testing.assert_array_equal(c.score(blind), c.oriented_ranks(blind)[:, :2].min(axis=1))
    assert chosen[0.2].choice != c.choice  # a loose epsilon chooses otherwise


def test_combo_uses_ranks_so_a_monotone_rescaling_changes_nothing():
    rng = np.random.default_rng(1)
    scores, errors = _stream(2000, rng)
    rescaled = scores.copy()
    rescaled[:, 1] = np.log(rescaled[:, 1]) * 1000.0  # same order, another scale
    a = fit_combination(("a", "b"), scores[:500], errors[:500])
    b = fit_combination(("a", "b"), rescaled[:500], errors[:500])
    np.testing.assert_allclose(a.score(scores), b.score(rescaled), rtol=1e-9)
    np.testing.assert_allclose(a.weights, b.weights, rtol=1e-9)


def test_too_few_errors_to_fit_gives_equal_weights_and_says_so():
    rng = np.random.default_rng(2)
    scores = rng.normal(size=(300, 3))
    errors = np.zeros(300, dtype=bool)
    errors[:3] = True  # fewer than MIN_CLASS errors
    c = fit_combination(("x", "y", "z"), scores, errors)
    assert (
        not c.fitted and np.allclose(c.weights, [1 / 3, 1 / 3, 1 / 3, 0]) and c.as_dict()["fitted"] is False
    )


def test_combo_needs_two_known_entries_of_two_detectors():
    available = {"msp": "msp", "knn@fc1": "knn", "knn@conv2": "knn"}
    assert check_combination(("all",), available) == ("msp", "knn@fc1", "knn@conv2")
    assert check_combination(("knn@fc1", "msp", "knn@fc1"), available) == ("knn@fc1", "msp")
    with pytest.raises(
        AUError, match=r"^--combo all combines at least two detectors' scores, got 1 \(msp\); "
    ):
        check_combination(("all",), {"msp": "msp"})
    with pytest.raises(AUError, match="--combo msp,msp combines at least two detectors' scores, got 1"):
        check_combination(("msp", "msp"), available)
    # one detector at two layers is one detector
    with pytest.raises(
        AUError, match=r"--combo knn@fc1,knn@conv2 combines .* got 1 \(knn\); .* --combo none"
    ):
        check_combination(("knn@fc1", "knn@conv2"), available)
    with pytest.raises(AUError, match=r"--combo all combines at least two detectors' scores, got 1 \(knn\)"):
        check_combination(("all",), {"knn@fc1": "knn", "knn@conv2": "knn"})
    with pytest.raises(
        AUError, match="--combo: no entry 'knn' in the scores; they hold: msp, knn@fc1, knn@conv2"
    ):
        check_combination(("msp", "knn"), available)


def test_combo_auto_is_quiet_where_all_and_named_entries_refuse():
    one_detector = {"knn@fc1": "knn", "knn@conv2": "knn"}
    assert combined_entries(("auto",), one_detector) == ()  # the default: no combined score, no error
    assert combined_entries(("auto",), {"msp": "msp", "knn@fc1": "knn"}) == ("msp", "knn@fc1")
    assert combined_entries((), {"msp": "msp", "knn@fc1": "knn"}) == ()
    for asked in (("all",), ("knn@fc1", "knn@conv2")):  # asked for explicitly: refused
        with pytest.raises(AUError, match="combines at least two detectors' scores, got 1"):
            combined_entries(asked, one_detector)
    assert GoldConfig().combo == ("auto",) and GoldConfig(combo=("none",)).combo == ()
    with pytest.raises(AUError, match="--combo all,msp: 'all' stands alone"):
        GoldConfig(combo=("all", "msp"))
