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


def _blobs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    return (rng.normal(size=(n, 12)) + 2.0 * y[:, None]).astype(np.float32), y


@pytest.fixture
def one_faiss_thread():
    """faiss on one thread, as in a Spark task (its k-means on a busy machine is slow with more)."""
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(threads)


def test_scaled_out_parzen_deann_estimates_the_local_detector(one_faiss_thread):
    """DEANN per block of training rows (arXiv 2107.02736), the default when scaled out, against the local detector.

    One block holding every row, in any order, is the local DEANN index itself. Blocks of 1,000
    rows (more than the 256 sampled) each estimate their own sum; the estimates add up to an
    unbiased estimate of the whole sum, with each block's nearest rows summed exactly - so no
    farther from the exact sum than the local estimate. Measured on these 4,000 rows (4 blocks)
    and 300 + 300 queries: largest |score difference| from the local ``deann`` detector 0.44, from
    the exact sum 0.047 (the local ``deann`` from exact: 0.45; log-densities of about -15); AUROC
    (in-distribution vs shifted queries) 0.0009 from local ``deann``'s, 0.00014 from exact's.
    Tolerances: no farther from exact than the local estimate, 0.6 from local ``deann``; AUROC
    within 0.003 of local ``deann``'s and 0.001 of exact's.
    """
    from au.ood import auroc

    x, y = _blobs(4000, 0)
    shifted = (np.random.default_rng(7).normal(size=(300, 12)) * 1.5 + 2.0).astype(np.float32)
    queries = np.concatenate([_blobs(300, 1)[0], shifted])
    det = registry.build("parzen_lsh", None, {"heldout": 200})  # method="deann", the default
    _fit_in_chunks(det, x, y, chunks=4)
    local = registry.build("parzen_lsh", None, {"heldout": 200}).fit(x)
    np.testing.assert_allclose(det.bandwidths_, local.bandwidths_, rtol=1e-5)  # the same grid points
    s_local = local.score_samples(queries)
    s_exact = local.partition_log_densities(queries, method="exact").sum(axis=2).mean(axis=1)

    everything = np.random.default_rng(1).permutation(len(x))  # one block, shuffled
    whole = det.merge_partials(det.reference_partial(x[everything], queries, everything)[None])
    np.testing.assert_allclose(whole, s_local, rtol=1e-5, atol=1e-4)

    blocks = np.array_split(np.arange(len(x)), 4)
    partials = np.stack([det.reference_partial(x[rows], queries, rows) for rows in blocks])
    again = det.reference_partial(
        x[blocks[1][::-1]], queries, blocks[1][::-1]
    )  # a retried task, rows reordered
    np.testing.assert_array_equal(again, partials[1])
    scores = det.merge_partials(partials)
    assert np.abs(scores - s_exact).max() <= np.abs(s_local - s_exact).max()
    assert np.abs(scores - s_local).max() <= 0.6

    def area(s: np.ndarray) -> float:
        return auroc(s[:300], s[300:])

    assert abs(area(scores) - area(s_local)) <= 0.003 and abs(area(scores) - area(s_exact)) <= 0.001


def test_parzen_lsh_method_is_refused_before_scaling_out():
    from au.errors import AUError

    with pytest.raises(AUError, match=r"^ParzenLSH: method='lsh' cannot be scaled out .* or 'exact'"):
        registry.build("parzen_lsh", None, {"method": "lsh"}).check_scale_out()
    with pytest.raises(AUError, match=r"KNN: k=0 is invalid"):
        registry.build("knn", None, {"k": 0}).check_scale_out()
    registry.build("parzen_lsh").check_scale_out()  # deann, the default, scales out
