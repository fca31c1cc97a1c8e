"""The detectors' scale-out contract, without Spark: chunked passes and reference blocks give the local scores."""

from __future__ import annotations

import numpy as np
import pytest

from au.detectors import registry

PARAMS = {"knn": {"k": 7}, "parzen_lsh": {"method": "exact", "heldout": 40}}
SCALED = [name for name in registry.NAMES if registry.DETECTORS[name].scale_out is not None]


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, 600)
    x = (rng.normal(size=(600, 12)) + 2.0 * y[:, None]).astype(np.float32)
    queries = (rng.normal(size=(150, 12)) * 1.5 + 2.0).astype(np.float32)
    return x, y, queries


def _fit_in_chunks(det, x, y, chunks: int) -> None:
    """What an engine does: every pass's statistics per chunk of rows, combined, until the detector is fitted."""
    parts = np.array_split(np.arange(len(x)), chunks)
    step = 0
    while True:
        totals: dict = {}
        for rows in parts[::-1]:  # in any order
            totals = det.combine_statistics(totals, det.chunk_statistics(x[rows], y[rows], step, rows))
        if det.fit_statistics(step, totals, x.shape[1]):
            return
        step += 1


@pytest.mark.parametrize("name", SCALED)
def test_chunked_fit_and_blocked_scores_equal_the_local_detector(name):
    x, y, queries = _data()
    det = registry.build(name, None, PARAMS.get(name))
    if det.consumes.input == "logits":
        x, queries = x[:, :10], queries[:, :10]
    local = registry.build(name, None, PARAMS.get(name)).fit(x, y if det.consumes.labels else None)
    _fit_in_chunks(det, x, y, chunks=4)
    if det.scale_out == "neighbours":
        blocks = np.array_split(np.arange(len(x)), 3)
        partials = np.stack([det.reference_partial(x[rows], queries, rows) for rows in blocks])
        scores = det.merge_partials(partials)
    else:
        scores = det.score_samples(queries)
    np.testing.assert_allclose(scores, local.score_samples(queries), rtol=1e-5, atol=1e-4)


def test_scaled_out_parzen_chooses_the_local_bandwidths():
    x, y, _ = _data(1)
    det = registry.build("parzen_lsh", None, PARAMS["parzen_lsh"])
    local = registry.build("parzen_lsh", None, PARAMS["parzen_lsh"]).fit(x)
    _fit_in_chunks(det, x, y, chunks=5)
    np.testing.assert_array_equal(det.active_, local.active_)
    np.testing.assert_allclose(det.bandwidths_, local.bandwidths_, rtol=1e-5)
    for mine, theirs in zip(det.partitionings_, local.partitionings_, strict=True):
        assert all(np.array_equal(a, b) for a, b in zip(mine, theirs, strict=True))
    np.testing.assert_allclose(det.heldout_scores_, local.heldout_scores_, rtol=1e-5, atol=1e-4)


def test_a_singular_covariance_is_refused_at_scale():
    from au.errors import AUError

    x, y, _ = _data()
    x[:, 5] = 1.0  # a neuron that never varies
    det = registry.build("mahalanobis")
    with pytest.raises(AUError, match="singular.*local engine"):
        _fit_in_chunks(det, x, y, chunks=2)
