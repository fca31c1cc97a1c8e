"""parzen_lsh's estimators of the kernel sum against the exact one: DEANN (arXiv 2107.02736) and LSH.

DEANN sums the kernel over a query's approximate nearest neighbours and adds a random sample of the
other references scaled up by n / m: close to the exact sum, unbiased over the sample's draw,
reproducible under a seed, and the same whichever rows a query is scored with.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from au.detectors.inputs import Inputs, score_in_chunks
from au.detectors.kde import DEANN, _log_kernel_sums_exact, inverted_lists
from au.detectors.parzen import ParzenLSH
from au.errors import AUError
from au.ood import auroc


def _blobs(n: int, d: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = 3.0 * rng.standard_normal((5, d))
    return (centres[rng.integers(0, 5, n)] + rng.standard_normal((n, d))).astype(np.float32)


def _queries(seed: int = 1) -> np.ndarray:
    far = np.random.default_rng(seed).uniform(-9, 9, (100, 8)).astype(np.float32)
    return np.concatenate([_blobs(200, seed=seed), far])


@pytest.fixture(scope="module")
def fitted():
    x = _blobs(4000)
    return x, ParzenLSH(method="deann", partitions=2, partitionings=2, heldout=200).fit(x)


def test_deann_tracks_the_exact_estimate(fitted):
    _, det = fitted
    q = _queries()
    deann, exact = det.partition_log_densities(q), det.partition_log_densities(q, method="exact")
    assert deann.shape == exact.shape == (300, 2, 2)
    # per partition (4 neurons: wide kernels, so the sample carries much of the sum): the median lookup
    # within 0.01 nats, 95% within 0.25 (measured: 0.0001, 0.17); the errors are not one-sided
    error = deann - exact
    assert np.median(np.abs(error)) < 0.01 and np.quantile(np.abs(error), 0.95) < 0.25
    assert abs(np.mean(error)) < 0.05
    s_deann, s_exact = deann.sum(axis=2).mean(axis=1), exact.sum(axis=2).mean(axis=1)
    assert abs(auroc(s_deann[:200], s_deann[200:]) - auroc(s_exact[:200], s_exact[200:])) < 0.01


def test_all_neighbours_give_the_exact_sum():
    """With k = n every reference is a neighbour: the sample adds nothing (its points are all counted)."""
    ref, q = _blobs(600, d=4), _queries()[:, :4]
    est = DEANN.build(ref, neighbours=600, samples=50, probes=600, seed=0)
    assert inverted_lists(600, 600) == 0  # one list holding every reference, searched whole
    grid = [0.3, 1.0, 3.0]
    np.testing.assert_allclose(
        est.log_sums(q, grid), _log_kernel_sums_exact(torch.from_numpy(ref), q, grid), rtol=1e-5, atol=1e-4
    )


def test_deann_is_unbiased_over_the_sample():
    """The mean of the estimated sum S_hat over many draws approaches the exact sum S, query by query.

    A wide kernel and 5 neighbours out of 1,000 references: most of the sum comes from the sample of
    40, so a sample left unscaled would be far off. (One list searched whole: the neighbours are
    exact, and the draws cost no k-means; the estimate is unbiased for any neighbours.)
    """
    ref, q = _blobs(1000, d=4), _queries()[::30, :4]  # 10 queries
    h = 2.0
    exact = np.exp(_log_kernel_sums_exact(torch.from_numpy(ref), q, h))
    draws = np.exp(np.stack([DEANN.build(ref, 5, 40, 100, seed=s).log_sums(q, h) for s in range(300)]))
    spread = draws.std(axis=0) / exact  # one draw's relative error: 0.2 to 0.5 here
    error = draws.mean(axis=0) / exact - 1  # the mean's: within 4 standard errors
    assert (spread > 0.1).all() and (np.abs(error) < 4 * spread / np.sqrt(len(draws))).all()


def test_one_seed_one_score(fitted):
    x, det = fitted
    q = _queries()
    again = ParzenLSH(method="deann", partitions=2, partitionings=2, heldout=200).fit(x)
    np.testing.assert_array_equal(again.score_samples(q), det.score_samples(q))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(det)).score_samples(q), det.score_samples(q))
    other = ParzenLSH(method="deann", partitions=2, partitionings=2, heldout=200, seed=1).fit(x)
    assert not np.array_equal(other.score_samples(q), det.score_samples(q))


def test_a_query_scores_the_same_with_any_other_rows(fitted):
    _, det = fitted
    q = _queries()
    whole = det.score_samples(q)
    np.testing.assert_array_equal(score_in_chunks(det, Inputs(features=q), rows=24), whole)
    np.testing.assert_array_equal(det.score_samples(q[7:8]), whole[7:8])


def test_deann_chooses_the_bandwidths_exact_choice(fitted):
    """The held-out likelihood is estimated, not summed over all pairs; on these blobs it picks the same grid points."""
    x, det = fitted
    exact = ParzenLSH(method="exact", partitions=2, partitionings=2, heldout=200).fit(x)
    np.testing.assert_array_equal(det.bandwidths_, exact.bandwidths_)
    for mine, theirs in zip(det.partitionings_, exact.partitionings_, strict=True):
        assert all(np.array_equal(a, b) for a, b in zip(mine, theirs, strict=True))


def test_unknown_or_unfitted_methods_are_refused_with_one_line(fitted):
    x, det = fitted
    with pytest.raises(
        AUError, match=r"ParzenLSH: method='kde' is invalid; expected 'lsh', 'deann' or 'exact'"
    ):
        ParzenLSH(method="kde").fit(x)
    for method, expected in [("kde", "method='kde' is unknown"), ("lsh", "fitted with method='deann'")]:
        with pytest.raises(AUError, match=expected) as excinfo:
            det.partition_log_densities(x[:5], method=method)
        assert "\n" not in str(excinfo.value)


def _fit_in_chunks(det, x, chunks: int) -> None:
    parts, step = np.array_split(np.arange(len(x)), chunks), 0
    while True:
        totals: dict = {}
        for rows in parts:
            totals = det.combine_statistics(totals, det.chunk_statistics(x[rows], None, step, rows))
        if det.fit_statistics(step, totals, x.shape[1]):
            return
        step += 1


def test_scaled_out_deann_on_blocks_within_its_sample_is_exact():
    """Scaled out, DEANN sums a block of no more rows than its random sample exactly: such blocks merge into the
    exact estimate (larger blocks: tests/test_scale_out.py)."""
    x, q = _blobs(800), _queries()
    params = {"partitions": 2, "partitionings": 2, "heldout": 60}
    det = ParzenLSH(method="deann", **params)
    _fit_in_chunks(det, x, chunks=3)
    blocks = np.array_split(np.arange(len(x)), 3)
    scores = det.merge_partials(np.stack([det.reference_partial(x[rows], q, rows) for rows in blocks]))
    exact = ParzenLSH(method="exact", **params).fit(x)
    np.testing.assert_allclose(det.bandwidths_, exact.bandwidths_, rtol=1e-5)
    np.testing.assert_allclose(scores, exact.score_samples(q), rtol=1e-5, atol=1e-4)
