"""Every detector keeps the one contract, separates in- from out-of-distribution data, and refuses bad input."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from scipy.special import logsumexp

from au.detectors import (
    DETECTORS,
    KNN,
    Mahalanobis,
    MahalanobisEnsemble,
    NotFittedError,
    Odin,
    ParzenLSH,
    TrustScore,
)
from au.errors import AUError
from au.ood import auroc, fpr_at_tpr, ood_metrics
from conftest import make_dataset, tiny_net

FEATURE_PARAMS = {"parzen_lsh": {"heldout": 50, "partitions": 2, "partitionings": 2}, "knn": {"k": 5}}


def gaussian_classes(n: int = 600, d: int = 6, classes: int = 3, seed: int = 0):
    """Three well-separated Gaussian classes in d dimensions."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    centres = 4.0 * np.eye(classes, d)
    return (centres[labels] + rng.standard_normal((n, d))).astype(np.float32), labels


def _fit(name, x, y):
    cls = DETECTORS[name]
    return cls(**FEATURE_PARAMS.get(name, {})).fit(x, y)


def _score(det, x):
    if det.name != "trust":
        return det.score(x)
    return det.score(x, pred=np.argmax(x[:, :3], axis=1) if np.ndim(x) == 2 else np.zeros(1, int))


@pytest.mark.parametrize("name", [n for n, c in DETECTORS.items() if c.input != "images"])
def test_contract_and_separation(name):
    x, y = gaussian_classes()
    q_in, _ = gaussian_classes(200, seed=1)
    # far from the classes for the feature detectors; flat (no class stands out) for the logit detectors
    spread = 1.0 if DETECTORS[name].input == "logits" else 12.0
    q_out = np.random.default_rng(2).uniform(-spread, spread, size=(200, 6)).astype(np.float32)
    det = DETECTORS[name](**FEATURE_PARAMS.get(name, {}))
    with pytest.raises(NotFittedError):
        _score(det, q_in)
    assert det.fit(x, y) is det
    s_in, s_out = _score(det, q_in), _score(det, q_out)
    assert s_in.shape == (200,) and s_in.dtype == np.float64 and np.isfinite(s_in).all()
    # higher = more in-distribution, for every detector
    assert auroc(s_in, s_out) > 0.8, name
    # deterministic, and independent of how queries are batched
    np.testing.assert_allclose(_score(det, q_in[:50]), s_in[:50], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(_score(_fit(name, x, y), q_in), s_in)


@pytest.mark.parametrize("name", [n for n, c in DETECTORS.items() if c.input != "images"])
def test_bad_features_are_refused(name):
    x, y = gaussian_classes()
    det = _fit(name, x, y)
    bad = x[:5].copy()
    bad[2, 1] = np.nan
    with pytest.raises(AUError, match="NaN or infinite values in 1 row"):
        _score(det, bad)
    with pytest.raises(AUError, match="features, but the detector was fitted with 6"):
        _score(det, x[:5, :4])
    with pytest.raises(AUError, match="2-D"):
        _score(det, x[0])
    inf = x.copy()
    inf[0, 0] = np.inf
    with pytest.raises(AUError, match="NaN or infinite"):
        DETECTORS[name](**FEATURE_PARAMS.get(name, {})).fit(inf, y)


def test_invalid_parameters_are_named():
    x, y = gaussian_classes()
    with pytest.raises(AUError, match="k=0 is invalid"):
        KNN(k=0).fit(x, y)
    with pytest.raises(AUError, match="k=5000 but only 600"):
        KNN(k=5000).fit(x, y)
    with pytest.raises(AUError, match="needs the training labels"):
        Mahalanobis().fit(x)


def test_mahalanobis_shrinks_a_singular_covariance():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((20, 50)), np.arange(20) % 2  # fewer examples than dimensions
    with pytest.warns(UserWarning, match="singular; shrunk by Ledoit-Wolf"):
        det = Mahalanobis().fit(x, y)
    assert 0 < det.shrinkage_ <= 1
    assert np.isfinite(det.score(rng.standard_normal((5, 50)))).all()


def test_mahalanobis_is_the_definition():
    x, y = gaussian_classes()
    det = Mahalanobis().fit(x, y)
    q = x[:7].astype(np.float64)
    means = np.stack([x[y == c].mean(0) for c in range(3)]).astype(np.float64)
    centred = x - means[y]
    cov = centred.T.astype(np.float64) @ centred / len(x)
    inv = np.linalg.inv(cov)
    expected = -np.min([np.einsum("ij,jk,ik->i", q - m, inv, q - m) for m in means], axis=0)
    np.testing.assert_allclose(det.score(q), expected, rtol=1e-6)


def test_trust_score_is_the_ratio_of_class_distances():
    x, y = gaussian_classes()
    det = TrustScore(k=10, alpha=0.0).fit(x, y)
    q = np.array([[4.0, 0, 0, 0, 0, 0], [2.0, 2.0, 0, 0, 0, 0]], dtype=np.float32)
    s = det.score(q, pred=np.array([0, 0]))
    assert s[0] > 2.0  # deep inside class 0: far from any other class
    assert 0.5 < s[1] < 2.0  # on the border between classes 0 and 1
    assert det.score(q[:1], pred=np.array([1]))[0] < 0.5  # predicting the wrong class is distrusted
    with pytest.raises(AUError, match="pred"):
        det.score(q)


def test_knn_survives_pickling():
    x, y = gaussian_classes()
    det = KNN(k=5).fit(x, y)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(det)).score(x[:10]), det.score(x[:10]))


def _exact_parzen(ref, q, h):
    d2 = ((q[:, None, :] - ref[None, :, :]) ** 2).sum(-1)
    g = ref.shape[1]
    return logsumexp(-d2 / (2 * h * h), axis=1) - np.log(len(ref)) - 0.5 * g * np.log(2 * np.pi * h * h)


def test_parzen_exact_is_the_formula_over_partitions():
    x, y = gaussian_classes(500, d=6)
    det = ParzenLSH(method="exact", partitions=2, partitionings=2, heldout=50).fit(x, y)
    q = gaussian_classes(20, d=6, seed=3)[0]
    per = det.partition_log_densities(q)
    assert per.shape == (20, 2, 2)
    z = (q[:, det.active_] - det.mean_) / det.scale_
    for r, parts in enumerate(det.partitionings_):
        assert sorted(np.concatenate(parts).tolist()) == list(range(6))  # a partition of every neuron
        for p, idx in enumerate(parts):
            expected = _exact_parzen(
                det.reference_[:, idx].astype(np.float64), z[:, idx], det.bandwidths_[r, p]
            )
            np.testing.assert_allclose(per[:, r, p], expected, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(det.score(q), per.sum(axis=2).mean(axis=1))


def test_parzen_bandwidth_maximises_heldout_likelihood():
    x, y = gaussian_classes(800, d=4)
    grid = (1.0, 0.3, 0.1, 0.01)
    det = ParzenLSH(method="exact", partitions=1, partitionings=1, heldout=100, bandwidth_grid=grid).fit(x, y)
    heldout_ll = det.heldout_scores_.mean()
    for fraction in grid:
        other = ParzenLSH(
            method="exact", partitions=1, partitionings=1, heldout=100, bandwidth_grid=(fraction,)
        ).fit(x, y)
        assert other.heldout_scores_.mean() <= heldout_ll + 1e-9


def test_parzen_lsh_tracks_exact_and_keeps_partitions():
    x, y = gaussian_classes(3000, d=8)
    q_in = gaussian_classes(300, d=8, seed=5)[0]
    q_out = np.random.default_rng(6).uniform(-10, 10, (300, 8)).astype(np.float32)
    det = ParzenLSH(partitions=2, partitionings=2, heldout=200).fit(x, y)
    q = np.concatenate([q_in, q_out])
    lsh, exact = det.score(q), det.partition_log_densities(q, method="exact").sum(axis=2).mean(axis=1)
    assert lsh.shape == exact.shape == (600,)
    # a sum over candidates never exceeds the sum over all (up to float32 rounding of distances)
    assert (lsh <= exact + 1e-4 * np.abs(exact) + 1e-6).all()
    assert abs(auroc(lsh[:300], lsh[300:]) - auroc(exact[:300], exact[300:])) < 0.01
    # min_recall trades speed for accuracy: demanding that nearly every held-out point finds its nearest
    # neighbour makes the candidate sums nearly exact
    strict = ParzenLSH(partitions=2, partitionings=2, heldout=200, min_recall=0.99).fit(x, y)
    gap_default = np.median(exact[:300] - lsh[:300])
    gap_strict = np.median(
        strict.partition_log_densities(q_in, method="exact").sum(2).mean(1) - strict.score(q_in)
    )
    assert gap_strict < 0.1 and gap_strict < gap_default
    z, low, high = det.zscore(q_in[:20])
    assert ((low <= z) & (z <= high)).all() and np.abs(z).max() < 5


def test_parzen_channel_partitions_follow_the_conv_structure():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 4 * 3 * 3)).astype(np.float32)
    det = ParzenLSH(
        method="exact", structure="channels", channel_shape=(4, 3, 3), partitions=2, heldout=50
    ).fit(x)
    for parts in det.partitionings_:
        for idx in parts:
            channels = set((det.active_[idx] // 9).tolist())
            assert len(channels) == 2 and len(idx) == 18  # whole channels, never split
    with pytest.raises(AUError, match="does not match 36 features"):
        ParzenLSH(structure="channels", channel_shape=(4, 2, 2), heldout=50).fit(x)
    with pytest.raises(AUError, match="needs at least 2000 training examples"):
        ParzenLSH().fit(x)


def test_image_detectors_refuse_other_shapes():
    model = tiny_net()
    train = make_dataset(60, 3, seed=0)
    odin = Odin(model).fit(train.images)
    other = make_dataset(5, 3, shape=(10, 10, 1))
    with pytest.raises(AUError, match=r"shape \(10, 10, 1\).*fitted on \(8, 8, 1\)"):
        odin.score(other.images)
    ensemble = MahalanobisEnsemble(model, layers=("conv1", "pool")).fit(train.images, train.labels)
    with pytest.raises(AUError, match="fit_combiner"):
        ensemble.score(train.images)
    ensemble.fit_combiner(train.images[:30])  # FGSM negatives
    s = ensemble.score(train.images[:10])
    assert s.shape == (10,) and np.isfinite(s).all()
    assert "FGSM" in ensemble.combiner_negatives_


def test_odin_tunes_epsilon_on_validation_data_only():
    model = tiny_net()
    train = make_dataset(60, 3, seed=0)
    noise = np.random.default_rng(0).integers(0, 256, (40, 8, 8, 1)).astype(np.uint8)
    odin = Odin(model, epsilon=0.0014).fit(train.images)
    results = odin.tune_epsilon(train.images[:40], noise, epsilons=(0.0, 0.01, 0.1))
    assert set(results) == {0.0, 0.01, 0.1}
    assert odin.epsilon == min(results, key=lambda e: (results[e], e))


def test_metrics_on_known_scores():
    s_in = np.array([0.9, 0.8, 0.7, 0.6])
    s_out = np.array([0.1, 0.2, 0.65, 0.75])
    assert auroc(s_in, s_out) == pytest.approx(13 / 16)  # pairs ranked right
    m = ood_metrics(s_in, s_out)
    assert set(m) == {"auroc", "aupr_in", "aupr_out", "fpr_at_95_tpr", "detection_accuracy"}
    assert fpr_at_tpr(s_in, s_out, 0.95) == pytest.approx(0.5)  # threshold 0.6 accepts 0.65 and 0.75
    assert m["detection_accuracy"] == pytest.approx(0.75)
