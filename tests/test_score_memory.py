"""Scoring in chunks of rows (what keeps ``au score``'s memory flat): the same scores as one call, for every detector.

Every detector scores each row on its own, so scoring a set a few rows at a time must give exactly
the scores of scoring it at once - bit for bit, since chunks start at multiples of the image
detectors' batch sizes and are never slivers - and the counts a scoring leaves behind (ParzenLSH's
exact fallbacks) must describe the whole set.
"""

from __future__ import annotations

import numpy as np
import pytest

from au import data
from au.detectors import DETECTORS, NAMES, registry
from au.detectors.inputs import Inputs, fit_detector, score_detector, score_in_chunks
from au.detectors.parzen import ParzenLSH, _log_kernel_sums_exact
from au.score import ScoreConfig, read_scores, score_job, score_run
from conftest import make_dataset, tiny_net

ROWS = 24  # chunks of 24 to 47 rows: above faiss's 20-query switch to BLAS, a multiple of the batch size
PARAMS = {
    "parzen_lsh": {"heldout": 50, "partitions": 2, "partitionings": 2},
    "knn": {"k": 5},
    "trust": {"k": 5},
    "odin": {"batch_size": 8},
    "mahalanobis_ensemble": {"batch_size": 8, "epsilons": (0.0, 0.002)},
}


def _inputs(images: np.ndarray, labels: np.ndarray, model) -> Inputs:
    """Every form a detector may read, for these images, from the tiny net itself."""
    import torch

    from au.activations import capture
    from au.data import to_tensor

    with torch.no_grad(), capture(model, ["conv1"], "avg") as feats:
        logits = model.eval()(to_tensor(images))
    return Inputs(
        logits=logits.numpy(),
        features=feats["conv1"].numpy(),
        images=images,
        pred=logits.argmax(dim=1).numpy(),
        labels=labels,
    )


@pytest.fixture(scope="module")
def setting():
    model = tiny_net()
    train, test = make_dataset(240, 3, seed=0), make_dataset(70, 3, seed=1, split="test")
    noise = data.load("noise-uniform:n=40:shape=8x8x1", "all")
    queries = np.concatenate([test.images, noise.images])  # 110 rows: chunks of 24, 24, 24, 38
    labels = np.concatenate([test.labels, noise.labels])
    return model, _inputs(train.images, train.labels, model), _inputs(queries, labels, model)


@pytest.mark.parametrize("name", NAMES)
def test_chunked_scoring_equals_one_call(name, setting):
    model, train, queries = setting
    det = registry.build(name, model, PARAMS.get(name))
    val = train.rows(0, 30) if det.consumes.validation == "required" else None
    fit_detector(det, train.rows(30, len(train)) if val is not None else train, val)
    whole = score_detector(det, queries)
    counts = {key: getattr(det, key) for key in det._scoring_counts}
    chunked = score_in_chunks(det, queries, rows=ROWS)
    np.testing.assert_array_equal(chunked, whole)
    assert {key: getattr(det, key) for key in det._scoring_counts} == counts
    # one chunk when the set is smaller than twice the chunk: the very same call
    np.testing.assert_array_equal(score_in_chunks(det, queries.rows(0, 40), rows=ROWS), whole[:40])


def test_chunks_start_at_multiples_and_the_last_takes_the_remainder():
    seen = []

    class Spy(DETECTORS["msp"]):
        def _score(self, x, pred=None):
            seen.append(len(x))
            return super()._score(x, pred)

    det = Spy().fit(np.zeros((3, 2), dtype=np.float32))
    for n, sizes in [(10, [4, 6]), (8, [4, 4]), (7, [7]), (3, [3]), (0, [0])]:
        seen.clear()
        assert score_in_chunks(det, Inputs(logits=np.zeros((n, 2), dtype=np.float32)), rows=4).shape == (n,)
        assert seen == sizes, n


def test_parzen_fallbacks_are_counted_over_the_whole_set():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 6)).astype(np.float32)
    far = 50 + rng.standard_normal((30, 6)).astype(np.float32)  # no LSH candidate: every lookup is exact
    queries = np.concatenate([rng.standard_normal((50, 6)).astype(np.float32), far])
    det = ParzenLSH(heldout=50, partitions=2, partitionings=2, method="lsh").fit(x)
    whole = det.score_samples(queries)
    fallbacks, lookups, rate = det.fallbacks_, det.lookups_, det.fallback_rate_
    assert fallbacks >= 30 * 4 and lookups == len(queries) * 4 and rate == fallbacks / lookups
    np.testing.assert_array_equal(score_in_chunks(det, Inputs(features=queries), rows=20), whole)
    assert (det.fallbacks_, det.lookups_, det.fallback_rate_) == (fallbacks, lookups, rate)
    assert det.fitted_summary()["fallback_rate"] == rate


def test_exact_sums_do_not_depend_on_how_queries_are_blocked():
    """MKL multiplies a handful of rows with other kernels: small blocks are padded so a query's sum is its own."""
    import torch

    rng = np.random.default_rng(1)
    ref = torch.from_numpy(rng.standard_normal((3000, 16)).astype(np.float32))
    queries = rng.standard_normal((200, 16)).astype(np.float32)
    whole = _log_kernel_sums_exact(ref, queries, [0.5, 2.0])
    for size in (1, 3, 7, 11, 64, 130):
        parts = [_log_kernel_sums_exact(ref, queries[i : i + size], [0.5, 2.0]) for i in range(0, 200, size)]
        np.testing.assert_array_equal(np.concatenate(parts), whole)
    # many references: blocks of queries shrink so that a block's distances stay about 16 MB
    assert _log_kernel_sums_exact(ref, queries, 1.0, block=8).shape == (200,)


def test_score_job_scores_in_chunks_with_the_same_result(tmp_path, monkeypatch):
    model = tiny_net()
    train, test = make_dataset(300, 3, seed=0), make_dataset(60, 3, seed=1, split="test")
    ood = [data.load("noise-uniform:n=40:shape=8x8x1", "all")]
    config = ScoreConfig(val_size=30, params={k: v for k, v in PARAMS.items() if k in NAMES})
    score_run(model, train, test, ood, tmp_path / "whole", config)
    chunk_sizes = []

    def small_chunks(det, inputs):
        chunk_sizes.append(len(inputs))
        return score_in_chunks(det, inputs, rows=ROWS)

    monkeypatch.setattr(score_job, "score_in_chunks", small_chunks)
    score_run(model, train, test, ood, tmp_path / "chunked", config)
    assert chunk_sizes == [60, 40] * len(NAMES)
    (a, ma), (b, mb) = read_scores(tmp_path / "whole"), read_scores(tmp_path / "chunked")
    for name in NAMES:
        np.testing.assert_array_equal(a.column(name).to_numpy(), b.column(name).to_numpy(), err_msg=name)
        assert ma["detectors"][name]["fitted"] == mb["detectors"][name]["fitted"], name
