"""Selective-risk guarantees: Clopper-Pearson bounds, SGR, the split check, AURC and calibration."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from au.errors import AUError
from au.gold import GoldConfig
from au.guarantees import (
    aurc,
    best_possible_bound,
    clopper_pearson_upper,
    excess_aurc,
    expected_calibration_error,
    fit_temperature,
    random_splits,
    reliability,
    risk_coverage,
    sgr,
    split_check,
)
from au.guarantees.calibration import calibration_summary
from au.guarantees.selective import optimal_aurc

# --------------------------------------------------------------------------- Clopper-Pearson


@pytest.mark.parametrize("delta", [0.2, 0.05, 0.01, 1e-4])
def test_clopper_pearson_matches_scipy_beta_quantiles(delta):
    n = np.array([1, 5, 10, 37, 100, 1000, 5000, 5000, 5000, 60000])
    e = np.array([0, 1, 3, 0, 7, 10, 0, 43, 4999, 600])
    got = clopper_pearson_upper(e, n, delta)
    want = stats.beta.ppf(1 - delta, e + 1, n - e)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)
    # the defining property: at the bound, seeing at most e errors has probability delta
    np.testing.assert_allclose(stats.binom.cdf(e, n, got), delta, rtol=1e-6)
    assert clopper_pearson_upper(7, 7, delta) == 1.0 and clopper_pearson_upper(0, 0, delta) == 1.0
    assert isinstance(clopper_pearson_upper(3, 100, delta), float)


def test_clopper_pearson_rejects_bad_input():
    with pytest.raises(AUError, match="delta must lie strictly between 0 and 1"):
        clopper_pearson_upper(1, 10, 1.0)
    with pytest.raises(AUError, match="between 0 and n"):
        clopper_pearson_upper(11, 10, 0.05)


# --------------------------------------------------------------------------- SGR

A = 0.15  # error model: P(error | s) = A (1 - s)^2 with s ~ U(0, 1)


def _draw(n, rng):
    s = rng.uniform(size=n)
    return s, rng.uniform(size=n) < A * (1 - s) ** 2


def _true_risk(threshold):
    """Selective risk of accepting s >= t under the model: A (1 - t)^2 / 3 (0 when nothing is accepted)."""
    return 0.0 if not np.isfinite(threshold) else A * (1 - min(max(threshold, 0.0), 1.0)) ** 2 / 3


def test_sgr_guarantee_holds_on_a_known_error_model():
    """Over 300 fresh calibration sets, the true selective risk at SGR's threshold exceeds epsilon in at
    most delta of them, and SGR accepts a useful share (the best possible is 0.632 at epsilon 0.02),
    while picking the threshold by empirical risk alone fails far more often."""
    eps, delta, rng = 0.02, 0.05, np.random.default_rng(0)
    certified, naive = [], []
    for _ in range(300):
        s, err = _draw(2000, rng)
        cert = sgr(s, err, eps, delta)
        certified.append((_true_risk(cert.threshold), cert.coverage))
        # the uncorrected alternative: the largest coverage whose *empirical* risk is <= epsilon
        coverage, risk, thresholds = risk_coverage(s, err)
        ok = np.flatnonzero(risk <= eps)
        naive.append(_true_risk(thresholds[ok[-1]]) if len(ok) else 0.0)
    risks, coverage = np.array(certified).T
    assert np.mean(risks > eps) <= delta
    # useful coverage; SGR's binary search starts at half coverage and only moves down after a failure,
    # so a few draws end with nothing certified
    assert 0.3 < coverage.mean() < 0.632 and np.mean(coverage > 0) > 0.8
    assert np.mean(np.array(naive) > eps) > 0.3  # what the bound and the correction protect against


def test_sgr_finds_the_largest_certifiable_threshold():
    """Errors only among the 100 lowest of 1,000 scores: the pass region above half coverage is contiguous,
    so the binary search must end at the brute-force largest count whose bound (at delta / k) is <= epsilon."""
    n, eps, delta = 1000, 0.05, 0.05
    scores = np.arange(n, dtype=float)
    errors = scores < 100
    cert = sgr(scores, errors, eps, delta)
    k = math.ceil(math.log2(n + 1))
    top_errors = np.cumsum(errors[::-1])  # errors among the best c, c = 1..n
    bounds = stats.beta.ppf(1 - delta / k, top_errors + 1, np.arange(1, n + 1) - top_errors)
    bounds[top_errors == np.arange(1, n + 1)] = 1.0
    best = int(np.flatnonzero(bounds <= eps)[-1]) + 1
    assert cert.certified and cert.tests == k
    assert cert.accepted == best and cert.coverage == best / n
    assert cert.threshold == scores[n - best]
    assert cert.risk_bound == pytest.approx(bounds[best - 1], rel=1e-9)
    assert cert.risk == pytest.approx(top_errors[best - 1] / best)


def test_sgr_never_splits_ties():
    scores = np.array([3.0, 2.0, 2.0, 2.0, 1.0] * 400)
    errors = np.zeros(len(scores), dtype=bool)
    errors[4::5] = True  # only the lowest score is ever wrong
    cert = sgr(scores, errors, 0.05, 0.05)
    assert cert.threshold == 2.0 and cert.accepted == 1600 and cert.risk == 0.0


def test_too_small_calibration_certifies_nothing():
    s, err = np.linspace(0, 1, 50), np.zeros(50, dtype=bool)
    cert = sgr(s, err, 0.01, 0.05)
    assert (
        not cert.certified and cert.coverage == 0.0 and cert.threshold == math.inf and cert.risk_bound == 1.0
    )
    assert best_possible_bound(50, 0.05) > 0.01
    assert best_possible_bound(5000, 0.05) < 0.01


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epsilon": 0.0, "delta": 0.05}, "epsilon must lie strictly between 0 and 1"),
        ({"epsilon": 1.2, "delta": 0.05}, "epsilon must lie strictly between 0 and 1"),
        ({"epsilon": 0.1, "delta": -0.1}, "delta must lie strictly between 0 and 1"),
        ({"epsilon": "x", "delta": 0.05}, "epsilon must be a number"),
    ],
)
def test_sgr_rejects_bad_levels(kwargs, message):
    with pytest.raises(AUError, match=message):
        sgr(np.arange(10.0), np.zeros(10, bool), **kwargs)


def test_nan_scores_are_refused():
    s = np.arange(10.0)
    s[3] = np.nan
    with pytest.raises(AUError, match="1 NaN or infinite"):
        sgr(s, np.zeros(10, bool), 0.1, 0.05)
    with pytest.raises(AUError, match="equal length"):
        aurc(np.arange(3.0), np.zeros(4, bool))


# --------------------------------------------------------------------------- the split check


def test_split_check_violation_rate_is_at_most_delta():
    s, err = _draw(20000, np.random.default_rng(1))
    splits = random_splits(len(s), 200, 0.5, seed=0)
    assert splits.shape == (200, 20000) and (splits.sum(axis=1) == 10000).all()
    assert not np.array_equal(splits[0], splits[1])
    checks = split_check(s, err, [0.01, 0.02], 0.05, splits)
    for check in checks:
        assert check.violation_rate <= 0.05
        assert check.coverage.shape == (200,) and check.certified.all()
        assert check.first.threshold == check.threshold[0]
        # the realised risk on the test half is measured at the calibration threshold
        accept = s[~splits[0]] >= check.threshold[0]
        assert check.test_risk[0] == pytest.approx(err[~splits[0]][accept].mean())
    assert checks[0].coverage.mean() < checks[1].coverage.mean()
    np.testing.assert_array_equal(random_splits(100, 3, 0.5, seed=4), random_splits(100, 3, 0.5, seed=4))


def test_split_check_catches_a_missing_search_correction():
    """The check is not a formality: the same search with every threshold tested at delta (no union
    bound) violates in more than delta of the splits; with the correction it stays below."""
    s, err = _draw(20000, np.random.default_rng(1))
    splits = random_splits(len(s), 300, 0.5, seed=0)
    (corrected,) = split_check(s, err, [0.02], 0.05, splits)
    (uncorrected,) = split_check(s, err, [0.02], 0.05, splits, search_correction=False)
    assert corrected.violation_rate <= 0.05 < uncorrected.violation_rate
    assert uncorrected.coverage.mean() > corrected.coverage.mean()


# --------------------------------------------------------------------------- AURC


def test_risk_coverage_and_aurc_by_hand():
    coverage, risk, thresholds = risk_coverage([4, 3, 2, 1], [0, 1, 0, 1])
    np.testing.assert_allclose(coverage, [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(risk, [0, 0.5, 1 / 3, 0.5])
    np.testing.assert_allclose(thresholds, [4, 3, 2, 1])
    assert aurc([4, 3, 2, 1], [0, 1, 0, 1]) == pytest.approx((0 + 0.5 + 1 / 3 + 0.5) / 4)
    assert optimal_aurc(np.array([0, 1, 0, 1], bool)) == pytest.approx((1 / 3 + 0.5) / 4)
    assert excess_aurc([1, 2, 3, 4], [0, 1, 0, 1]) > excess_aurc([4, 3, 2, 1], [0, 1, 0, 1]) >= 0
    # a tie shares the risk at its end
    assert aurc([2, 2, 1], [1, 0, 0]) == pytest.approx((0.5 + 0.5 + 1 / 3) / 3)
    assert aurc([5, 5, 5], [1, 0, 0]) == pytest.approx(1 / 3)


# --------------------------------------------------------------------------- calibration


def test_ece_by_hand():
    conf, correct = np.array([0.95, 0.95, 0.65, 0.65]), np.array([1, 0, 1, 1], bool)
    assert expected_calibration_error(conf, correct, bins=10) == pytest.approx(0.5 * 0.45 + 0.5 * 0.35)
    r = reliability(conf, correct, bins=10)
    assert r["count"].tolist() == [0, 0, 0, 0, 0, 0, 2, 0, 0, 2]
    assert expected_calibration_error(np.array([1.0, 0.1]), np.array([1, 0], bool), bins=10) == pytest.approx(
        0.05
    )


def test_temperature_scaling_recovers_an_overconfidence_factor():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(20000, 10)) * 2.0
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    labels = (p.cumsum(1) > rng.uniform(size=(len(p), 1))).argmax(1)  # drawn from softmax(logits)
    assert fit_temperature(3.0 * logits, labels) == pytest.approx(3.0, rel=0.05)
    cal = np.zeros(len(labels), bool)
    cal[::2] = True
    summary = calibration_summary(3.0 * logits, labels, cal)
    assert summary["ece_after"] < 0.02 < summary["ece_before"]
    assert summary["nll_after"] < summary["nll_before"]


def test_gold_config_rejects_bad_levels():
    with pytest.raises(AUError, match="epsilon must lie strictly between 0 and 1, got 1.5"):
        GoldConfig(epsilons=(0.01, 1.5))
    with pytest.raises(AUError, match="delta must lie strictly between 0 and 1"):
        GoldConfig(delta=0.0)
    with pytest.raises(AUError, match="no epsilon"):
        GoldConfig(epsilons=())
    assert GoldConfig(epsilons=(0.05, 0.01, 0.05)).epsilons == (0.01, 0.05)
