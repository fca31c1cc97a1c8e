"""The data a guarantee needs: fits of certified coverage against training-set size on synthetic sweeps
whose power law is known, the training examples a target needs, and what happens when it cannot be told."""

from __future__ import annotations

import json

import numpy as np
import pytest

from au.errors import AUError
from au.gold.needed_data import needed_data

FRACTIONS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.2, 0.5, 1.0)
FULL = 54_000


def sweep(a=3.0, b=0.5, c=0.02, noise=0.0, trials=2, fractions=FRACTIONS, detector="d", epsilon=0.01, seed=0):
    """Rows like ``coverage_vs_training``'s with 1 - coverage = a m^-b + c (times log-normal noise)."""
    rng = np.random.default_rng(seed)
    rows = []
    for f in fractions:
        m = int(FULL * f)
        for t in range(trials):
            uncovered = (a * m**-b + c) * np.exp(rng.normal(0.0, noise))
            rows.append(
                {
                    "kind": "fraction",
                    "fraction": f,
                    "trial": t,
                    "n_train": m,
                    "detector": detector,
                    "epsilon": epsilon,
                    "coverage_mean": float(np.clip(1.0 - uncovered, 0.0, 1.0)),
                }
            )
    return rows


def test_the_fit_recovers_a_known_power_law_and_the_needed_examples():
    result = needed_data(sweep(), target=0.95, bootstrap=50)
    (entry,) = result["entries"]
    assert entry["note"] is None
    fit = entry["fit"]
    np.testing.assert_allclose([fit["a"], fit["b"], fit["c"]], [3.0, 0.5, 0.02], rtol=1e-3)
    assert fit["rmse_coverage_pp"] < 0.01
    need = entry["needed"]
    # (a / (1 - target - c))^(1/b) = (3 / 0.03)^2
    assert need["reachable"] and need["n_train"] == pytest.approx(10_000, rel=1e-3)
    assert need["unreachable_draws"] == 0 and need["draws"] == 50
    lo, hi = need["interval"]
    assert lo <= need["n_train"] <= hi
    # the band passes through the target at the predicted m
    band = entry["band"]
    at = np.interp(np.log(need["n_train"]), np.log(band["n_train"]), band["coverage"])
    assert at == pytest.approx(0.95, abs=1e-3)
    json.dumps(result, allow_nan=False)  # JSON-ready


def test_noisy_trials_give_an_interval_around_the_truth_and_a_small_held_out_miss():
    result = needed_data(sweep(noise=0.05, trials=3), target=0.95, bootstrap=200, seed=1)
    (entry,) = result["entries"]
    # the estimate lands near the truth (over 30 seeds: 8,900 to 10,900); the interval is the trials' spread
    lo, hi = entry["needed"]["interval"]
    assert lo < entry["needed"]["n_train"] < hi and 0.85 * 10_000 < entry["needed"]["n_train"] < 1.15 * 10_000
    exact = needed_data(sweep(trials=3), target=0.95, bootstrap=200, seed=1)["entries"][0]["needed"]
    assert hi - lo > 20 * (exact["interval"][1] - exact["interval"][0])
    held = entry["held_out"]
    assert [p["fraction"] for p in held["points"]] == [0.5, 1.0]
    for p in held["points"]:
        truth = 1.0 - (3.0 * p["n_train"] ** -0.5 + 0.02)
        assert abs(p["measured_coverage"] - truth) < 0.01
        assert p["miss_pp"] == pytest.approx(100 * (p["predicted_coverage"] - p["measured_coverage"]))
    assert held["max_abs_miss_pp"] < 2.0 and held["within_tolerance"]


def test_a_sweep_below_the_default_held_out_split_is_checked_when_asked():
    """The demo's sweep (keep-fractions 0.002-0.1) holds nothing out at the default 0.2; a smaller split does."""
    demo = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1)
    rows = sweep(a=2.0, b=0.4, c=0.03, noise=0.02, trials=1, fractions=demo)
    (skipped,) = needed_data(rows, bootstrap=50)["entries"]
    assert skipped["held_out"]["points"] == [] and skipped["held_out"]["max_abs_miss_pp"] is None
    assert skipped["held_out"]["skipped"].startswith(
        "no keep-fractions above 0.2 to hold out (the sweep's largest is 0.1)"
    )
    result = needed_data(rows, held_out_max_fraction=0.02, bootstrap=50)
    assert result["held_out_max_fraction"] == 0.02
    held = result["entries"][0]["held_out"]
    assert held["skipped"] is None and held["fit_max_fraction"] == 0.02
    assert [p["fraction"] for p in held["points"]] == [0.05, 0.1]  # fitted on 0.002-0.02, predicting the rest
    for p in held["points"]:
        truth = 1.0 - (2.0 * p["n_train"] ** -0.4 + 0.03)
        assert abs(p["predicted_coverage"] - truth) < 0.03
    assert (
        held["max_abs_miss_pp"] == max(abs(p["miss_pp"]) for p in held["points"])
        and held["max_abs_miss_pp"] < 3.0
    )
    with pytest.raises(AUError, match="held_out_max_fraction must be in \\(0, 1\\), got 1.5"):
        needed_data(rows, held_out_max_fraction=1.5)


def test_an_asymptote_below_the_target_is_not_reachable():
    result = needed_data(sweep(c=0.08), target=0.95, bootstrap=50)
    need = result["entries"][0]["needed"]
    assert not need["reachable"] and need["n_train"] is None
    assert "not reachable" in need["note"] and "0.92" in need["note"]
    assert need["unreachable_draws"] == need["draws"] == 50 and need["reachable_share"] == 0.0
    assert result["entries"][0]["fit"]["asymptotic_coverage"] == pytest.approx(0.92, abs=1e-3)
    # the same sweep reaches a lower target
    assert needed_data(sweep(c=0.08), target=0.9, bootstrap=20)["entries"][0]["needed"]["reachable"]


def test_too_few_sizes_give_a_note_not_a_crash():
    two = sweep(fractions=(0.1, 1.0))
    (entry,) = needed_data(two, bootstrap=20)["entries"]
    assert entry["fit"] is None and entry["needed"] is None
    assert "only 2 training-set size" in entry["note"]
    assert entry["held_out"]["skipped"]
    # enough sizes, but coverage 0 (nothing certified) at all but two: censored, so no curve either
    zeros = sweep(a=2000.0)  # a m^-b >= 1 at every size: coverage 0 everywhere
    zeros[-1]["coverage_mean"] = zeros[-3]["coverage_mean"] = 0.5
    (entry,) = needed_data(zeros, bootstrap=20)["entries"]
    assert entry["fit"] is None and "2 of 8 training-set sizes have certified coverage > 0" in entry["note"]
    assert len(entry["trials"]) == 16  # the points are still reported
    empty = needed_data([])
    assert empty["entries"] == [] and "nothing to fit" in empty["note"]


def test_trials_that_certify_nothing_are_left_out_of_the_fit():
    rows = sweep()
    truth = needed_data(rows, bootstrap=20)["entries"][0]
    for r in rows[:2]:  # the smallest size certifies nothing: censored, not fitted as "1 - coverage = 1"
        r["coverage_mean"] = 0.0
    entry = needed_data(rows, bootstrap=20)["entries"][0]
    assert entry["fit"]["trials_censored"] == 2 and entry["fit"]["trials_fitted"] == 14
    assert entry["needed"]["n_train"] == pytest.approx(truth["needed"]["n_train"], rel=1e-3)


def test_entries_per_detector_and_epsilon_and_class_sweeps_are_skipped():
    rows = sweep(detector="p", epsilon=0.02) + sweep(detector="p", c=0.0) + sweep(detector="q", c=0.1)
    result = needed_data(rows, bootstrap=20)
    keys = [(e["detector"], e["epsilon"]) for e in result["entries"]]
    assert keys == [("p", 0.01), ("p", 0.02), ("q", 0.01)]
    reachable = {k: e["needed"]["reachable"] for k, e in zip(keys, result["entries"], strict=True)}
    assert reachable == {("p", 0.01): True, ("p", 0.02): True, ("q", 0.01): False}
    classes = [{**r, "kind": "class"} for r in sweep()]
    assert needed_data(classes)["entries"] == [] and "class sweep" in needed_data(classes)["note"]


def test_bad_settings_are_refused():
    with pytest.raises(AUError, match="target"):
        needed_data(sweep(), target=1.0)
    with pytest.raises(AUError, match="bootstrap"):
        needed_data(sweep(), bootstrap=3)


def test_the_figure_has_a_panel_per_detector_or_per_epsilon(tmp_path):
    from au.gold.plots import needed_data_figure

    rows = sweep(detector="p") + sweep(detector="q", c=0.1) + sweep(detector="r", fractions=(0.1, 1.0))
    rows += sweep(detector="p", epsilon=0.05, c=0.0)
    result = needed_data(rows, bootstrap=20)
    fig = needed_data_figure(result)
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == [
        "p, risk <= 0.01",
        "q, risk <= 0.01",
        "r, risk <= 0.01",
    ]
    fig.savefig(tmp_path / "needed.png")
    by_eps = needed_data_figure(rows, detector="p", bootstrap=20)  # from the rows directly
    assert [ax.get_title() for ax in by_eps.axes if ax.get_visible()] == ["risk <= 0.01", "risk <= 0.05"]
    with pytest.raises(AUError, match="no entry"):
        needed_data_figure(result, epsilon=0.3)
