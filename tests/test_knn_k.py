"""kNN's k follows the training-set size: k="auto" is chosen at fit from the rows (about n / 1000, at
least 1), recorded as the fitted k, kept by the scale-out contract; an explicit k still works."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from au.detectors import KNN, NotFittedError
from au.detectors.knn import auto_k
from au.errors import AUError
from au.ood import auroc


def clusters(per_class: int, classes: int = 10, d: int = 16, spread: float = 0.05, seed: int = 0):
    """``classes`` tight clusters on orthogonal axes, ``per_class`` rows each: (n, d) float32."""
    rng = np.random.default_rng(seed)
    centres = np.eye(classes, d) * 5.0
    labels = np.repeat(np.arange(classes), per_class)
    return (centres[labels] + spread * rng.standard_normal((len(labels), d))).astype(np.float32)


def kth_distance(train: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """The slow reference: minus the distance to the k-th nearest L2-normalised training row."""
    a = train / np.linalg.norm(train, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    d = np.sqrt(np.maximum(((q[:, None, :] - a[None, :, :]) ** 2).sum(-1), 0.0))  # (nq, n)
    return -np.sort(d, axis=1)[:, k - 1]


@pytest.mark.parametrize(
    ("n", "k"),
    [(1, 1), (50, 1), (1_499, 1), (1_500, 2), (5_400, 5), (50_000, 50), (54_000, 54), (1_281_167, 1_281)],
)
def test_auto_k_is_one_neighbour_per_thousand_rows_at_least_one(n, k):
    # Sun et al. 2022: k = 50 for all 50,000 CIFAR-10 images; ImageNet's 1.28M get ~1,000 (they used 1,000)
    assert auto_k(n) == k


def test_auto_is_the_default_resolved_at_fit_and_reported():
    x, q = clusters(30), clusters(3, seed=1)
    det = KNN()
    assert det.get_params() == {"k": "auto", "normalize": True}
    det.fit(x)
    assert det.k == "auto" and det.k_ == auto_k(300) == 1  # fit keeps the parameter, fills k_
    assert det.fitted_summary() == {"k": 1}
    np.testing.assert_allclose(det.score_samples(q), kth_distance(x, q, 1), atol=1e-5)
    big = KNN().fit(clusters(300))  # 3,000 rows: the 3rd neighbour
    assert big.k_ == 3
    np.testing.assert_allclose(big.score_samples(q), kth_distance(clusters(300), q, 3), atol=1e-5)
    assert pickle.loads(pickle.dumps(big)).k_ == 3


def test_an_explicit_k_is_used_as_given():
    x, q = clusters(30), clusters(3, seed=1)
    det = KNN(k=7).fit(x)
    assert det.k_ == 7 and det.fitted_summary() == {"k": 7}
    np.testing.assert_allclose(det.score_samples(q), kth_distance(x, q, 7), atol=1e-5)
    with pytest.raises(AUError, match="k=301 but only 300 training examples"):
        KNN(k=301).fit(x)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "5", "Auto", None])
def test_a_bad_k_is_refused_with_one_line(bad):
    with pytest.raises(AUError) as excinfo:
        KNN(k=bad).fit(clusters(5))
    text = str(excinfo.value)
    assert "\n" not in text and text.startswith(f"KNN: k={bad!r} is invalid") and '"auto"' in text


def test_a_small_training_set_needs_a_small_k():
    """The regression behind the change: with 10 rows per class, the 50th neighbour of a point inside a
    class lies in another class, as far as the 50th neighbour of a point between two classes."""
    x = clusters(10)
    inside = clusters(5, seed=2)
    rng = np.random.default_rng(3)
    pairs = rng.choice(10, size=(50, 2), replace=True)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    between = (5.0 * (np.eye(10, 16)[pairs[:, 0]] + np.eye(10, 16)[pairs[:, 1]]) / 2).astype(np.float32)
    fixed, auto = KNN(k=50).fit(x), KNN().fit(x)
    assert auroc(auto.score_samples(inside), auto.score_samples(between)) == 1.0
    assert auroc(fixed.score_samples(inside), fixed.score_samples(between)) < 0.6


def _fit_in_chunks(det, x, chunks):
    totals: dict = {}
    for rows in np.array_split(np.arange(len(x)), chunks):
        totals = det.combine_statistics(totals, det.chunk_statistics(x[rows], None, 0, rows))
    assert det.fit_statistics(0, totals, x.shape[1])


@pytest.mark.parametrize("k", ["auto", 4])
def test_scale_out_resolves_k_from_all_chunks_and_blocks_smaller_than_k(k):
    x, q = clusters(250), clusters(4, seed=5)  # 2,500 rows: auto k = 2 (no chunk alone would say so)
    local = KNN(k=k).fit(x)
    det = KNN(k=k)
    with pytest.raises(NotFittedError):
        det.reference_partial(x[:10], q, np.arange(10))
    _fit_in_chunks(det, x, chunks=7)
    assert det.k_ == local.k_ == (2 if k == "auto" else 4)
    # reference blocks of 1 row (fewer than k: padded) and the rest
    blocks = [np.arange(1), np.arange(1, 1200), np.arange(1200, len(x))]
    partials = [det.reference_partial(x[rows], q, rows) for rows in blocks]
    assert all(p.shape == (len(q), det.k_) for p in partials)
    np.testing.assert_allclose(det.merge_partials(np.stack(partials)), local.score_samples(q), atol=1e-5)
    with pytest.raises(AUError, match="k=4 but only 3 training examples"):
        _fit_in_chunks(KNN(k=4), x[:3], chunks=2)
