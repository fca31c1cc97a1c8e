"""What each detector computes: the definitions, against slow references and hand-worked cases.

The contract every detector keeps (fit, score_samples, refusals, parameters, clone) is checked once
for all of them in ``test_detector_contract.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp

from au.detectors import KNN, Mahalanobis, MahalanobisEnsemble, Odin, ParzenLSH, TrustScore
from au.errors import AUError
from au.ood import auroc, fpr_at_tpr, ood_metrics
from conftest import make_dataset, tiny_net


def gaussian_classes(n: int = 600, d: int = 6, classes: int = 3, seed: int = 0):
    """Three well-separated Gaussian classes in d dimensions."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    centres = 4.0 * np.eye(classes, d)
    return (centres[labels] + rng.standard_normal((n, d))).astype(np.float32), labels


def test_knn_and_mahalanobis_refuse_what_they_cannot_fit():
    x, y = gaussian_classes()
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
    assert np.isfinite(det.score_samples(rng.standard_normal((5, 50)))).all()


def test_mahalanobis_is_the_definition():
    x, y = gaussian_classes()
    det = Mahalanobis().fit(x, y)
    q = x[:7].astype(np.float64)
    means = np.stack([x[y == c].mean(0) for c in range(3)]).astype(np.float64)
    centred = x - means[y]
    cov = centred.T.astype(np.float64) @ centred / len(x)
    inv = np.linalg.inv(cov)
    expected = -np.min([np.einsum("ij,jk,ik->i", q - m, inv, q - m) for m in means], axis=0)
    np.testing.assert_allclose(det.score_samples(q), expected, rtol=1e-6)


def test_trust_score_is_the_ratio_of_class_distances():
    x, y = gaussian_classes()
    det = TrustScore(k=10, alpha=0.0).fit(x, y)
    q = np.array([[4.0, 0, 0, 0, 0, 0], [2.0, 2.0, 0, 0, 0, 0]], dtype=np.float32)
    s = det.score_samples(q, pred=np.array([0, 0]))
    assert s[0] > 2.0  # deep inside class 0: far from any other class
    assert 0.5 < s[1] < 2.0  # on the border between classes 0 and 1
    assert det.score_samples(q[:1], pred=np.array([1]))[0] < 0.5  # predicting the wrong class is distrusted
    with pytest.raises(AUError, match="pred"):
        det.score_samples(q)


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
    np.testing.assert_allclose(det.score_samples(q), per.sum(axis=2).mean(axis=1))


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
    det = ParzenLSH(partitions=2, partitionings=2, heldout=200, method="lsh").fit(x, y)
    q = np.concatenate([q_in, q_out])
    lsh, exact = det.score_samples(q), det.partition_log_densities(q, method="exact").sum(axis=2).mean(axis=1)
    assert lsh.shape == exact.shape == (600,)
    # a sum over candidates never exceeds the sum over all (up to float32 rounding of distances)
    assert (lsh <= exact + 1e-4 * np.abs(exact) + 1e-6).all()
    assert abs(auroc(lsh[:300], lsh[300:]) - auroc(exact[:300], exact[300:])) < 0.01
    # min_recall trades speed for accuracy: demanding that nearly every held-out point finds its nearest
    # neighbour makes the candidate sums nearly exact
    strict = ParzenLSH(partitions=2, partitionings=2, heldout=200, min_recall=0.99).fit(x, y)
    gap_default = np.median(exact[:300] - lsh[:300])
    gap_strict = np.median(
        strict.partition_log_densities(q_in, method="exact").sum(2).mean(1) - strict.score_samples(q_in)
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
    # at most a quarter of the training points are held out; fewer than 20 cannot be split at all
    assert ParzenLSH(method="exact").fit(x).heldout_ == 100
    with pytest.raises(AUError, match="needs at least 20 training examples, got 12"):
        ParzenLSH().fit(x[:12])


def test_mahalanobis_ensemble_fits_its_combiner_on_validation_images():
    model = tiny_net()
    train = make_dataset(60, 3, seed=0)
    ensemble = MahalanobisEnsemble(model, layers=("conv1", "pool"))
    ensemble.fit(train.images, train.labels, X_val=train.images[:30])  # FGSM negatives
    s = ensemble.score_samples(train.images[:10])
    assert s.shape == (10,) and np.isfinite(s).all()
    assert "FGSM" in ensemble.combiner_negatives_ and set(ensemble.tuning_) == set(ensemble.epsilons)
    assert ensemble.epsilon_ == max(ensemble.tuning_, key=lambda e: (ensemble.tuning_[e], -e))
    noise = np.random.default_rng(0).integers(0, 256, (30, 8, 8, 1)).astype(np.uint8)
    ensemble.fit(train.images, train.labels, X_val=train.images[:30], X_val_ood=noise)
    assert ensemble.combiner_negatives_ == "supplied OOD images"


def test_odin_tunes_epsilon_on_validation_data_only():
    model = tiny_net()
    train = make_dataset(60, 3, seed=0)
    noise = np.random.default_rng(0).integers(0, 256, (40, 8, 8, 1)).astype(np.uint8)
    odin = Odin(model, epsilon=0.0014, epsilons=(0.0, 0.01, 0.1)).fit(train.images)
    assert odin.epsilon_ == 0.0014 and not hasattr(odin, "tuning_")  # no OOD validation data: the paper's
    odin.fit(train.images, X_val=train.images[:40], X_val_ood=noise)
    assert set(odin.tuning_) == {0.0, 0.01, 0.1} and odin.epsilon == 0.0014
    assert odin.epsilon_ == min(odin.tuning_, key=lambda e: (odin.tuning_[e], e))
    by_hand = fpr_at_tpr(odin._scores(train.images[:40], 0.01), odin._scores(noise, 0.01))
    assert odin.tuning_[0.01] == pytest.approx(by_hand)


def test_metrics_on_known_scores():
    s_in = np.array([0.9, 0.8, 0.7, 0.6])
    s_out = np.array([0.1, 0.2, 0.65, 0.75])
    assert auroc(s_in, s_out) == pytest.approx(13 / 16)  # pairs ranked right
    m = ood_metrics(s_in, s_out)
    assert set(m) == {"auroc", "aupr_in", "aupr_out", "fpr_at_95_tpr", "detection_accuracy"}
    assert fpr_at_tpr(s_in, s_out, 0.95) == pytest.approx(0.5)  # threshold 0.6 accepts 0.65 and 0.75
    assert m["detection_accuracy"] == pytest.approx(0.75)
