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
from au.guarantees.bounds import binomial_p_value, clopper_pearson_interval
from au.guarantees.calibration import calibration_summary
from au.guarantees.ltt import ltt, ltt_sequence
from au.guarantees.selective import optimal_aurc
from au.guarantees.splits import fit_parts

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


# --------------------------------------------------------------------------- Learn then Test


def test_ltt_guarantee_holds_and_covers_more_than_sgr():
    """Over 300 fresh calibration sets of the known error model, the true selective risk at LTT's threshold
    exceeds epsilon in at most delta of them; its mean coverage beats SGR's on the same sets, though a fifth
    of each set only orders the thresholds (SGR pays ceil(log2(n+1)) = 12 tests out of delta instead)."""
    eps, delta, rng = 0.02, 0.05, np.random.default_rng(0)
    n = 2000
    fit = np.zeros(n, dtype=bool)
    fit[: n // 5] = True  # the draws are exchangeable: the first fifth is a random fifth
    got = {"ltt": [], "sgr": []}
    for _ in range(300):
        s, err = _draw(n, rng)
        sequence = ltt_sequence(s[fit], err[fit], eps, int((~fit).sum()))
        for name, cert in (
            ("ltt", ltt(s[~fit], err[~fit], eps, delta, sequence)),
            ("sgr", sgr(s, err, eps, delta)),
        ):
            got[name].append((_true_risk(cert.threshold), 1 - cert.threshold if cert.certified else 0.0))
    ltt_risk, ltt_cov = np.array(got["ltt"]).T
    sgr_cov = np.array(got["sgr"])[:, 1]
    assert np.sum(ltt_risk > eps) <= delta * 300
    assert ltt_cov.mean() > sgr_cov.mean() + 0.01


def test_ltt_starts_where_the_ordering_data_points_and_certifies_errors_first_scores():
    """A score that ranks its errors first (the top tenth holds most of them) but is safe when accepting
    everything: SGR's search starts at half coverage, where the risk is too high, and certifies little; LTT
    starts near full coverage, where the ordering part finds the most certifiable threshold."""
    eps, delta, rng = 0.01, 0.05, np.random.default_rng(1)
    n, cov = 5000, {"ltt": [], "sgr": []}
    for _ in range(50):
        s = rng.random(n)
        err = rng.random(n) < np.where(s > 0.9, 0.03, 0.002)
        sequence = ltt_sequence(s[:1000], err[:1000], eps, n - 1000)
        cov["ltt"].append(ltt(s[1000:], err[1000:], eps, delta, sequence).coverage)
        cov["sgr"].append(sgr(s, err, eps, delta).coverage)
    assert np.mean(cov["sgr"]) < 0.2 and np.mean(cov["ltt"]) > 0.9


def test_ltt_stops_at_the_first_failure_and_tests_at_the_full_delta():
    scores = np.arange(1000, dtype=float)[::-1]  # best first
    errors = np.zeros(1000, dtype=bool)
    errors[[400, 401, 402, 403, 404, 405]] = True  # a burst of errors among the best 406
    sequence = np.array([700.0, 500.0, 599.0, 100.0])  # accepts 300, 500, 401, 900 inputs
    cert = ltt(scores, errors, 0.01, 0.05, sequence)
    # 300 clean inputs pass (p = 0.99^300 = 0.049); 500 with 6 errors fail; so 401 and 900 are never tested
    assert cert.certified and cert.accepted == 300 and cert.tests == 2 and cert.threshold == 700.0
    assert cert.risk_bound == pytest.approx(clopper_pearson_upper(0, 300, 0.05)) and cert.risk_bound <= 0.01
    nothing = ltt(scores, errors, 0.01, 0.05, np.array([900.0, 700.0]))  # 100 inputs cannot certify 1%
    assert not nothing.certified and nothing.coverage == 0 and nothing.tests == 1


def test_binomial_p_value_and_the_clopper_pearson_bound_agree():
    """Rejecting "risk > epsilon" at delta is the same as the upper bound at delta being <= epsilon."""
    for n in (1, 50, 299, 300, 1000):
        for e in range(0, min(n, 12) + 1):
            for eps in (0.005, 0.01, 0.05):
                assert (binomial_p_value(e, n, eps) <= 0.05) == (clopper_pearson_upper(e, n, 0.05) <= eps)
    assert binomial_p_value(0, 0, 0.01) == 1.0
    lo, hi = clopper_pearson_interval(11, 200)
    ci = stats.binomtest(11, 200).proportion_ci(method="exact")
    assert (lo, hi) == pytest.approx((ci.low, ci.high), rel=1e-9)
    assert clopper_pearson_interval(0, 200)[0] == 0.0 and clopper_pearson_interval(200, 200)[1] == 1.0


def test_fit_parts_and_per_split_scores():
    splits = random_splits(1000, 5, 0.5, seed=3)
    fit = fit_parts(splits, 0.2, seed=3)
    assert not (fit & ~splits).any() and (fit.sum(axis=1) == 100).all()
    assert (fit_parts(splits, 0.2, seed=3) == fit).all() and (fit_parts(splits, 0.2, seed=4) != fit).any()
    rng = np.random.default_rng(0)
    s, err = _draw(1000, rng)
    with pytest.raises(AUError, match="pass fit="):
        split_check(s, err, [0.05], 0.05, splits, method="ltt")
    with pytest.raises(AUError, match="unknown certification method 'holm'"):
        split_check(s, err, [0.05], 0.05, splits, method="holm")
    with pytest.raises(AUError, match=r"per-split scores must have shape \(5, 1000\)"):
        split_check(np.stack([s] * 4), err, [0.05], 0.05, splits)
    # per-split scores equal to the shared ones give the same check
    (a,) = split_check(s, err, [0.05], 0.05, splits, method="ltt", fit=fit)
    (b,) = split_check(np.stack([s] * 5), err, [0.05], 0.05, splits, method="ltt", fit=fit)
    assert (a.coverage == b.coverage).all() and (a.threshold == b.threshold).all()
    lo, hi = a.violation_interval()
    assert 0 <= lo <= a.violation_rate <= hi <= 1
