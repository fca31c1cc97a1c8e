"""Gaussian kernel sums of queries over reference points: exactly, or by DEANN's estimator.

For queries ``q`` (b, g), references ``z_1 .. z_n`` (n, g) and a bandwidth ``h``, both compute
``log S(q)`` with ``S(q) = sum_i exp(-||q - z_i||^2 / 2h^2)`` (the normalisation is the caller's):

* :func:`_log_kernel_sums_exact` - every pair, in blocks of queries (about ``BLOCK_ELEMENTS``
  distances at a time, so memory does not grow with the references).
* :class:`DEANN` - Karppa, Aumüller & Pagh 2022, "DEANN: Speeding up kernel-density estimation
  using approximate nearest neighbor search" (arXiv 2107.02736): the query's ``k`` approximate
  nearest neighbours ``N(q)`` are summed exactly and the rest is estimated from a uniform random
  sample ``T`` of ``m`` references (drawn without replacement), scaled up::

      S_hat(q) = sum_{i in N(q)} K(q, z_i) + (n / m) sum_{j in T, j not in N(q)} K(q, z_j)

  Every ``j`` is in ``T`` with probability ``m / n``, so ``E_T[S_hat(q)] = S(q)`` whatever
  neighbours the index returns: the estimate is unbiased, and with narrow kernels - where the
  neighbours carry nearly all of ``S`` - its variance is small.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

BLOCK_ELEMENTS = 1 << 22
"""Query-to-reference distances held at once by the exact sums (16 MB of float32 per buffer): blocks of
queries get shorter as the references grow, so memory does not grow with them."""

MIN_BLOCK = 64
"""Fewest query rows in one matrix product of the exact sums. MKL multiplies fewer than a dozen rows
with other kernels, whose rounding differs: a query's exact sum would then depend on how many other
queries it was blocked with (how many fell back to the exact sum in the same call, for instance)."""

POINTS_PER_LIST = 39
"""Fewest references per inverted list: faiss's k-means wants at least 39 training points per centroid."""

TRAIN_PER_LIST = 64
"""References per inverted list the k-means is trained on (a sample when there are more): the lists
only route queries to candidates, and training on all of them costs most of the fit."""


def _query_blocks(n: int, n_ref: int, block: int) -> list[tuple[int, int]]:
    """(lo, hi) of consecutive blocks of ``n`` queries: at most ``block`` rows and about BLOCK_ELEMENTS distances.

    The blocks are of near-equal size and at least MIN_BLOCK rows when there are that many (fewer are
    padded by :func:`_block_distances`).
    """
    rows = max(MIN_BLOCK, min(block, BLOCK_ELEMENTS // max(n_ref, 1)))
    cuts = np.linspace(0, n, -(-n // rows) + 1).round().astype(int)
    return list(zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True))


def _squared_distances(q: torch.Tensor, ref: torch.Tensor, ref_sq: torch.Tensor) -> torch.Tensor:
    """||q_i - r_j||^2 = |q_i|^2 + |r_j|^2 - 2 q_i.r_j for queries (b, g) and references (n, g): (b, n), >= 0.

    In place where it can be, so that a block needs two (b, n) buffers; the same operations, in the
    same order, as the one-line expression.
    """
    d2 = (q * q).sum(dim=1)[:, None] + ref_sq[None, :]
    d2.sub_((q @ ref.T).mul_(2.0))
    return d2.clamp_min_(0.0)


def _block_distances(queries: np.ndarray, lo: int, hi: int, ref: torch.Tensor, ref_sq: torch.Tensor):
    """Squared distances of ``queries[lo:hi]`` to every reference, (hi - lo, n).

    A block of fewer than MIN_BLOCK rows is padded with zero rows (and the result cut back), so that
    every query's distances come from the same matrix-product kernel, whatever it is blocked with.
    """
    q = np.ascontiguousarray(queries[lo:hi])
    if len(q) < MIN_BLOCK:
        q = np.concatenate([q, np.zeros((MIN_BLOCK - len(q), q.shape[1]), dtype=q.dtype)])
    return _squared_distances(torch.from_numpy(q), ref, ref_sq)[: hi - lo]


def _log_kernel_sums_exact(ref: torch.Tensor, queries: np.ndarray, h, block: int = 512) -> np.ndarray:
    """logsumexp_i(-||q - r_i||^2 / 2h^2) for every query, over all references (n, g).

    ``h`` is one bandwidth (result (n,)) or a sequence of them (result (n, len(h)), the squared
    distances computed once). Queries go in blocks of at most ``block`` (:func:`_query_blocks`).
    """
    hs = np.atleast_1d(np.asarray(h, dtype=np.float64))
    ref_sq = (ref * ref).sum(dim=1)
    sums = np.zeros((len(queries), len(hs)))
    for lo, hi in _query_blocks(len(queries), len(ref), block):
        d2 = _block_distances(queries, lo, hi, ref, ref_sq)
        for j, b in enumerate(hs):
            sums[lo:hi, j] = torch.logsumexp(d2 * (-0.5 / (b * b)), dim=1).numpy()
        del d2
    return sums if np.ndim(h) else sums[:, 0]


def inverted_lists(n: int, probes: int) -> int:
    """Inverted lists for ``n`` references: about sqrt(n), at least POINTS_PER_LIST references each; 0 (search
    every reference) when that leaves no more lists than ``probes`` (an inverted file would then visit them all)."""
    lists = min(round(math.sqrt(n)), n // POINTS_PER_LIST)
    return lists if lists > probes else 0


def _padded_distances(q: np.ndarray, points: np.ndarray, points_sq: np.ndarray, rows: int) -> np.ndarray:
    """Squared distances (b, m) of queries (b, g) to points (m, g), from one matrix product of ``rows`` rows.

    The queries are padded with zero rows to ``rows`` (>= b) so that every product has one shape:
    a query's distances then do not depend on how many queries it is computed with.
    """
    padded = np.zeros((rows, q.shape[1]), dtype=np.float32)
    padded[: len(q)] = q
    dots = (padded @ points.T)[: len(q)]  # (b, m)
    return np.maximum((q * q).sum(axis=1)[:, None] + points_sq[None, :] - 2.0 * dots, 0.0)


def _log_sum_exp(a: np.ndarray) -> np.ndarray:
    """log sum_j exp(a[i, j]) for every row of a (b, c) array with a finite entry in each row, in place: (b,) float64."""
    peak = a.max(axis=1)
    np.exp(np.subtract(a, peak[:, None], out=a), out=a)
    return peak + np.log(a.sum(axis=1, dtype=np.float64))


@dataclass
class DEANN:
    """Kernel sums from the ``neighbours`` nearest references (faiss) plus a fixed random sample of them.

    Karppa, Aumüller & Pagh 2022 (arXiv 2107.02736). The neighbours come from a faiss inverted file
    (``IndexIVFFlat``: k-means lists, ``probes`` of them searched) - a single list holding every
    reference, searched whole, when they are too few for lists (:func:`inverted_lists`). Either way
    the distances to the listed references are computed pair by pair (faiss's ``fvec_L2sqr``), so
    a query's sum does not depend on the other queries it is scored with.

    One sample serves every query (DEANN draws one per query): each query's estimate is still
    unbiased over the draw, only the errors of different queries are correlated; and a query's
    score is then a function of the query alone - the same whichever rows it is scored with.

    Attributes
    ----------
    index : faiss ``IndexIVFFlat`` over the references (n, g), float32
    sample : (m,) int64, sorted rows of the references drawn without replacement
    points : (m, g) float32, those references
    n_ref : int, the number of references ``n``
    neighbours : int, ``k``
    """

    index: Any
    sample: np.ndarray
    points: np.ndarray
    n_ref: int
    neighbours: int

    @classmethod
    def build(cls, ref: np.ndarray, neighbours: int, samples: int, probes: int, seed) -> DEANN:
        """Index the references (n, g) float32 C-contiguous and draw the sample, both from ``seed``.

        The k-means of the inverted lists runs on at most TRAIN_PER_LIST references per list, drawn
        and initialised from ``seed``: one seed (and one number of faiss threads) gives one index.
        """
        import faiss

        rng = np.random.default_rng(seed)
        n, g = ref.shape
        lists = inverted_lists(n, probes)
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(g), g, max(lists, 1))
        index.cp.seed = int(rng.integers(2**31))
        index.cp.min_points_per_centroid = 1  # one list over few references: no warning
        index.cp.max_points_per_centroid = TRAIN_PER_LIST
        index.train(ref)
        index.nprobe = probes if lists else 1
        index.add(ref)
        sample = np.sort(rng.choice(n, min(samples, n), replace=False)).astype(np.int64)
        return cls(index, sample, np.ascontiguousarray(ref[sample]), n, min(neighbours, n))

    def log_sums(self, queries: np.ndarray, h, block: int = 2048) -> np.ndarray:
        """log S_hat(q) for queries (b, g): (b,), or (b, len(h)) for a sequence of bandwidths ``h``.

        The neighbours and distances are found once for all bandwidths; queries go ``block`` at a time.
        """
        hs = np.atleast_1d(np.asarray(h, dtype=np.float64))
        points = self.points
        points_sq = (points * points).sum(axis=1)
        # each reference's place in the sample, or -1 (also at the end, where the index's -1 rows read)
        slot = np.full(self.n_ref + 1, -1, dtype=np.int64)
        slot[self.sample] = np.arange(len(self.sample))
        # every sampled point stands for n / m references; a sampled neighbour is already counted
        log_weight = np.float32(math.log(self.n_ref / len(self.sample)))
        k = self.neighbours
        sums = np.zeros((len(queries), len(hs)))
        for lo in range(0, len(queries), block):
            q = np.ascontiguousarray(queries[lo : lo + block])
            near_d2, rows = self.index.search(q, k)  # (b, k) float32 ascending, int64 (-1: none found)
            both = np.empty((len(q), k + len(points)), dtype=np.float32)  # (b, k + m)
            both[:, :k] = np.where(rows >= 0, near_d2, np.inf)
            both[:, k:] = _padded_distances(q, points, points_sq, block)
            at = slot[rows]  # (b, k)
            counted = np.nonzero(at >= 0)
            both[counted[0], k + at[counted]] = np.inf
            for j, b in enumerate(hs):
                a = both * np.float32(-0.5 / (b * b))  # like the exact sums: float32, the maximum subtracted
                a[:, k:] += log_weight
                sums[lo : lo + len(q), j] = _log_sum_exp(a)
        return sums if np.ndim(h) else sums[:, 0]
