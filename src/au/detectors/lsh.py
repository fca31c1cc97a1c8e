"""Euclidean (p-stable) locality-sensitive hashing: candidate neighbours without comparing all pairs.

Datar, Immorlica, Indyk & Mirrokni 2004 ("Locality-sensitive hashing scheme based on p-stable
distributions"): ``h(x) = floor((a . x + b) / w)`` with ``a ~ N(0, I)`` and ``b ~ U[0, w)``. Points
at distance ``r`` collide with probability ``p(r)`` (:func:`collision_probability`), which falls with
``r``; ``K`` concatenated hashes make one table's key, and ``L`` tables are searched, so that near
points share a bucket with a query in at least one table while far points rarely do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm


def collision_probability(r: float, w: float) -> float:
    """Probability that one p-stable hash of width ``w`` maps two points at distance ``r`` together."""
    if r <= 0:
        return 1.0
    c = w / r
    return float(1 - 2 * norm.cdf(-c) - 2 / (math.sqrt(2 * math.pi) * c) * (1 - math.exp(-(c**2) / 2)))


@dataclass
class LSHTables:
    """``L`` hash tables over the reference points of one partition.

    Attributes
    ----------
    n_ref : int, the number of reference points
    projections : (L, g, K) float32; offsets : (L, K) float32; width : float
    keys : list of L sorted arrays of the distinct bucket keys
    starts, counts : list of L arrays: where each bucket's members start in ``members``, and how many
    members : list of L arrays of reference indices, sorted by bucket
    (``starts``, ``counts`` and ``members`` are int32 below 2**31 references: the tables are most of
    a fitted ParzenLSH's memory)
    """

    n_ref: int
    projections: np.ndarray
    offsets: np.ndarray
    width: float
    mixers: np.ndarray
    keys: list[np.ndarray]
    starts: list[np.ndarray]
    counts: list[np.ndarray]
    members: list[np.ndarray]

    def _keys(self, x: np.ndarray, table: int) -> np.ndarray:
        codes = np.floor((x @ self.projections[table] + self.offsets[table]) / self.width).astype(np.int64)
        return (codes * self.mixers[table]).sum(axis=1)  # (n,) int64, wraps: a universal-style hash

    def lookup(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each query's bucket in each table: ``(position, count)``, two (L, n) int64 arrays.

        ``position`` indexes the table's sorted bucket keys; ``count`` is the bucket's size (0
        when no reference shares the query's key).
        """
        positions = np.zeros((len(self.keys), len(queries)), dtype=np.int64)
        counts = np.zeros_like(positions)
        for t in range(len(self.keys)):
            kq = self._keys(queries, t)
            pos = np.minimum(np.searchsorted(self.keys[t], kq), len(self.keys[t]) - 1)
            positions[t] = pos
            counts[t] = np.where(self.keys[t][pos] == kq, self.counts[t][pos], 0)
        return positions, counts

    def loads(self, queries: np.ndarray) -> np.ndarray:
        """Per query, the number of references sharing a bucket with it, summed over tables (duplicates counted)."""
        return self.lookup(queries)[1].sum(axis=0)

    def bucket_load(self, queries: np.ndarray) -> float:
        """Mean of :meth:`loads` over the queries."""
        return float(self.loads(queries).mean()) if len(queries) else 0.0

    def candidates(self, queries: np.ndarray, lookup: tuple[np.ndarray, np.ndarray] | None = None):
        """Distinct (query, reference) pairs that share a bucket in any table, sorted by query.

        Returns ``(query_index, reference_index)``, two int64 arrays of equal length. ``lookup`` is
        :meth:`lookup` of these queries, when already computed. Pairs are deduplicated by sorting
        one integer key per pair, int32 when ``queries x references`` fits (twice as fast to sort).
        """
        n_ref = self.n_ref
        positions, counts = lookup if lookup is not None else self.lookup(queries)
        key_type = np.int32 if len(queries) * n_ref < 2**31 else np.int64
        pair_keys = []
        for t in range(len(self.keys)):
            pos, count = positions[t], counts[t]
            total = int(count.sum())
            if total == 0:
                continue
            q = np.repeat(np.arange(len(queries), dtype=key_type) * key_type(n_ref), count)
            # position of each pair inside ``members``: the bucket's start plus a running index within it
            first = np.repeat(self.starts[t][pos] - (np.cumsum(count) - count), count)
            pair_keys.append(q + self.members[t][first + np.arange(total)].astype(key_type))
        if not pair_keys:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        keys = np.sort(
            np.concatenate(pair_keys)
        )  # sort + neighbour test: several times faster than np.unique
        unique = keys[np.r_[True, keys[1:] != keys[:-1]]].astype(np.int64)
        return unique // n_ref, unique % n_ref


def build_tables(
    ref: np.ndarray, tables: int, hashes: int, width: float, rng: np.random.Generator
) -> LSHTables:
    """Hash the reference points (n, g) into ``tables`` tables of ``hashes`` concatenated p-stable hashes."""
    g = ref.shape[1]
    projections = rng.standard_normal((tables, g, hashes)).astype(np.float32)
    offsets = rng.uniform(0, width, size=(tables, hashes)).astype(np.float32)
    mixers = rng.integers(1, 2**62, size=(tables, hashes), dtype=np.int64) | 1
    lsh = LSHTables(len(ref), projections, offsets, float(width), mixers, [], [], [], [])
    index_type = np.int32 if len(ref) < 2**31 else np.int64
    for t in range(tables):
        keys = lsh._keys(ref, t)
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]  # already sorted: bucket starts are where the key changes
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        lsh.keys.append(ordered[starts])
        lsh.starts.append(starts.astype(index_type))
        lsh.counts.append(np.diff(np.r_[starts, len(ordered)]).astype(index_type))
        lsh.members.append(order.astype(index_type))
    return lsh
