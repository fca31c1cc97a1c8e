"""Parzen-window density of an input's activations under the training activations, over partitions of
neurons, accelerated with approximate neighbours (DEANN or Euclidean LSH): AU's own coverage score.

For one partition ``S`` of the (standardised) features, with ``g = |S|`` neurons, reference points
``z_1 .. z_n`` and bandwidth ``h_S``, the Gaussian-kernel Parzen estimate (Parzen 1962) is::

    log p_S(x) = logsumexp_i( -||x_S - z_i,S||^2 / (2 h_S^2) ) - log n - (g / 2) log(2 pi h_S^2)

The score treats partitions as independent - ``log p(x) = sum_S log p_S(x)`` - and averages that sum
over several random partitionings. Every input's per-partition log-densities are kept
(:meth:`ParzenLSH.partition_log_densities`), so later work can ask which partitions of neurons an
input is least covered in.

Choices, and why (measured on mnist-cnn's fc1 features, 60,000 training and 2,000 test inputs):

* **Bandwidth per partition, by held-out likelihood.** A grid of fractions of the partition's
  median pairwise distance is tried and the one that maximises the mean log-likelihood of held-out
  training points wins. The median distance itself fails completely: AUROC 0.0004 against uniform
  noise and 0.02 against Fashion-MNIST (inverted: OOD activations are small and sit where a wide
  kernel's density peaks); the held-out choice (0.03 x median there) gives 0.95 and 0.96.
* **Standardised features.** Each neuron is centred and scaled by its training standard
  deviation; neurons that never vary are dropped. Against uniform noise / Fashion-MNIST this lifts
  AUROC from 0.947 / 0.961 (raw) to 0.981 / 0.972 on the whole layer, because otherwise a few
  high-variance neurons decide every distance. Rows are not L2-normalised: an activation's norm
  is itself evidence (OOD inputs have small activations).
* **Four partitions, three partitionings by default.** Fewer neurons per partition make LSH
  sharper; four random partitions of fc1 cost little AUROC (0.979 / 0.971 against noise / Fashion)
  against the whole layer, eight cost more (0.970 / 0.961).

**Acceleration.** With the bandwidths this selects, the kernel sum is dominated by the nearest
reference points. Three ``method`` values compute it:

* ``"deann"`` (Karppa, Aumüller & Pagh 2022, arXiv 2107.02736; :class:`au.detectors.kde.DEANN`):
  the kernel summed exactly over the query's ``neighbours`` approximate nearest references (a
  faiss inverted file per partition, about sqrt(n) lists, ``probes`` searched) plus a random sample
  of ``samples`` references standing for the rest, scaled up by n / m - unbiased over the sample.
  Its fit never sums over all pairs: the held-out likelihood that picks each bandwidth is itself
  estimated by DEANN (on mnist-cnn's fc1 it picks the grid points the exact sums pick).
* ``"lsh"``: each partition hashes the references into ``tables`` Euclidean LSH tables
  (:mod:`au.detectors.lsh`, Datar et al. 2004) and a query sums the kernel over the distinct
  references that share a bucket with it in any table - its candidate neighbours - instead of all
  ``n``. The bucket width is four times the median nearest-neighbour distance of held-out points,
  and the number of concatenated hashes per table is calibrated on those held-out points: enough to
  bring their mean candidate count down to ``candidates``, but never so many that fewer than
  ``min_recall`` of them find their true nearest neighbour among the candidates. A query with no
  candidate in a partition is looked up again in a third as many coarser tables (half the hashes),
  and computed exactly there only if it has none in those either (``fallback_rate_`` reports how
  often). Lower ``min_recall`` visits fewer candidates but leaves more queries with none, which fall
  back to the exact sum; ``min_recall=0.9`` with 12 tables stays within 0.001 of exact but visits
  about 700 candidates per query and is slower than exact.
* ``"exact"`` computes all pairs; any fitted detector also scores this way on request
  (:meth:`ParzenLSH.partition_log_densities`), with the same partitions and bandwidths.

Measured by ``benchmarks/parzen_lsh.py`` (see there) on mnist-cnn's fc1 features: 60,000 references,
10,000 queries from each of MNIST test, Fashion-MNIST and uniform noise, defaults.

**z-score.** :meth:`ParzenLSH.zscore` places an input's log-density among those of held-out
training inputs: ``(log p(x) - mean) / std``, with bootstrap intervals for the held-out mean and
standard deviation carried into an interval for z.
"""

from __future__ import annotations

import math
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from au.detectors.base import Consumes, Detector
from au.detectors.kde import DEANN, _block_distances, _log_kernel_sums_exact, _query_blocks
from au.detectors.lsh import LSHTables, build_tables, collision_probability
from au.errors import AUError

BANDWIDTH_GRID = (0.3, 0.1, 0.05, 0.03, 0.02, 0.01)
METHODS = ("lsh", "deann", "exact")


GATHER_ELEMENTS = 1 << 20
"""Coordinates gathered at once for the LSH candidates' distances (4 MB of float32 per buffer)."""


def _pair_dots(
    qs: torch.Tensor, rs: torch.Tensor, q_rows: torch.Tensor, r_rows: torch.Tensor
) -> torch.Tensor:
    """qs[q_rows[i]] . rs[r_rows[i]] for every pair i, (m,); GATHER_ELEMENTS coordinates gathered at a time.

    Each pair's dot product is one row's sum, so blocking the pairs does not change it.
    """
    step = max(1, GATHER_ELEMENTS // max(qs.shape[1], 1))
    dots = torch.empty(len(q_rows), dtype=qs.dtype)
    for lo in range(0, len(q_rows), step):
        pairs = slice(lo, lo + step)
        dots[pairs] = (qs.index_select(0, q_rows[pairs]) * rs.index_select(0, r_rows[pairs])).sum(dim=1)
    return dots


def _at_slots(values: np.ndarray, rows: np.ndarray, drawn: np.ndarray) -> np.ndarray:
    """(len(drawn), ...) zeros, with the rows of ``values`` whose position is ``drawn[i]`` at slot ``i``."""
    out = np.zeros((len(drawn), *values.shape[1:]), dtype=np.float64)
    order = np.argsort(drawn)
    at = np.searchsorted(drawn, rows, sorter=order)
    hit = (at < len(drawn)) & (drawn[order[np.minimum(at, len(drawn) - 1)]] == rows)
    out[order[at[hit]]] = values[hit]
    return out


def _nearest(ref: torch.Tensor, queries: np.ndarray, block: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Squared distance to, and index of, each query's nearest reference point."""
    ref_sq = (ref * ref).sum(dim=1)
    dists, index = np.zeros(len(queries)), np.zeros(len(queries), dtype=np.int64)
    for lo, hi in _query_blocks(len(queries), len(ref), block):
        d2 = _block_distances(queries, lo, hi, ref, ref_sq)
        best = d2.min(dim=1)
        dists[lo:hi], index[lo:hi] = best.values.numpy(), best.indices.numpy()
        del d2
    return dists, index


class ParzenLSH(Detector):
    """Parzen-window log-density over partitions of neurons, estimated by DEANN (default) or Euclidean LSH.

    (The name is historical: LSH was its first estimator.)

    Parameters
    ----------
    partitions : int
        Partitions of the neurons per partitioning (each estimated on its own).
    partitionings : int
        Random partitionings averaged.
    structure : {"random", "channels"}
        ``random`` splits the neurons at random; ``channels`` keeps each channel's neurons of a conv
        map together (needs ``channel_shape``), splitting the channels into ``partitions`` groups.
    channel_shape : (C, H, W) or None
        Shape of the recorded conv map, for ``structure="channels"`` on unpooled features.
    method : {"deann", "lsh", "exact"}
        DEANN's estimate (the default: approximate nearest neighbours from faiss plus a random
        sample, :class:`au.detectors.kde.DEANN`; on mnist-cnn's fc1 with 60,000 MNIST references,
        32-41x the exact estimate's scoring speed at AUROC within 0.001 of it, a fit of 5-9 s, a
        0.62 GB peak); the kernel sum over LSH candidate neighbours (a fit of minutes, AUROC
        0.005-0.015 off exact's); or all pairs. ``benchmarks/parzen_lsh.py`` measures all three.
    tables : int
        LSH tables per partition (``lsh``).
    candidates : float
        Target mean number of candidate neighbours per query (over all tables), calibrated on held-out
        points (``lsh``).
    min_recall : float
        Calibration never lets the share of held-out points whose nearest neighbour is a candidate fall
        below this (``lsh``).
    neighbours : int
        Nearest references whose kernel is summed exactly (``deann``).
    samples : int
        References drawn at random, per partition, to estimate the rest of the sum (``deann``).
    probes : int
        Inverted lists of the faiss index searched per query, of about sqrt(n) (``deann``).
    heldout : int
        Training points held out to choose bandwidths and to calibrate z-scores: at most this many,
        and a quarter of the training points when that is fewer (``heldout_`` says how many).
    bandwidth_grid : tuple of float
        Bandwidths tried, as fractions of each partition's median pairwise distance.
    seed : int

    Fitted attributes: ``mean_``, ``scale_``, ``active_`` (neurons kept), ``heldout_``,
    ``partitionings_`` (R lists of indices into ``active_``), ``bandwidths_`` (R, P), ``reference_`` (n, d)
    float32 with ``reference_index_`` (n,), the training row of each, ``tables_`` (``lsh``), ``indexes_``
    (``deann``: a :class:`~au.detectors.kde.DEANN` per partition),
    ``heldout_partition_log_densities_`` (heldout, R, P), ``heldout_scores_``, ``fallback_rate_``
    (of the last scoring: ``fallbacks_`` of its ``lookups_`` summed exactly).
    """

    name = "parzen_lsh"
    consumes = Consumes("features")
    score_unit = "log-density"
    _reported = ("fallback_rate_", "heldout_")
    _scoring_counts = ("fallbacks_", "lookups_")
    scale_out = "neighbours"
    _constraints = {
        "partitions": (lambda v: isinstance(v, int) and v >= 1, "an integer >= 1"),
        "partitionings": (lambda v: isinstance(v, int) and v >= 1, "an integer >= 1"),
        "structure": (lambda v: v in ("random", "channels"), "'random' or 'channels'"),
        "channel_shape": (
            lambda v: v is None or (len(v) == 3 and all(isinstance(s, int) and s >= 1 for s in v)),
            "None or (C, H, W) of positive integers",
        ),
        "method": (lambda v: v in METHODS, "'lsh', 'deann' or 'exact'"),
        "tables": (lambda v: isinstance(v, int) and v >= 1, "an integer >= 1"),
        "candidates": (lambda v: v >= 1, "a number >= 1"),
        "min_recall": (lambda v: 0 < v <= 1, "a number in (0, 1]"),
        "neighbours": (lambda v: isinstance(v, int) and v >= 1, "an integer >= 1"),
        "samples": (lambda v: isinstance(v, int) and v >= 1, "an integer >= 1"),
        "probes": (lambda v: isinstance(v, int) and v >= 1, "an integer >= 1"),
        "heldout": (lambda v: isinstance(v, int) and v >= 10, "an integer >= 10"),
        "bandwidth_grid": (lambda v: len(v) >= 1 and all(f > 0 for f in v), "positive fractions"),
        "seed": (lambda v: isinstance(v, int) and v >= 0, "an integer >= 0"),
    }

    def __init__(
        self,
        partitions: int = 4,
        partitionings: int = 3,
        structure: str = "random",
        channel_shape: tuple[int, ...] | None = None,
        method: str = "deann",
        tables: int = 24,
        candidates: float = 64.0,
        min_recall: float = 0.8,
        neighbours: int = 32,
        samples: int = 256,
        probes: int = 8,
        heldout: int = 1000,
        bandwidth_grid: tuple[float, ...] = BANDWIDTH_GRID,
        seed: int = 0,
    ) -> None:
        self.partitions = partitions
        self.partitionings = partitionings
        self.structure = structure
        self.channel_shape = channel_shape
        self.method = method
        self.tables = tables
        self.candidates = candidates
        self.min_recall = min_recall
        self.neighbours = neighbours
        self.samples = samples
        self.probes = probes
        self.heldout = heldout
        self.bandwidth_grid = bandwidth_grid
        self.seed = seed

    # ------------------------------------------------------------------ fitting

    def _standardise(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(((x[:, self.active_] - self.mean_) / self.scale_).astype(np.float32))

    def _make_partitionings(self, rng: np.random.Generator) -> list[list[np.ndarray]]:
        d = len(self.active_)
        if self.partitions > d:
            raise AUError(
                f"ParzenLSH: {self.partitions} partitions but only {d} varying neurons; use fewer partitions"
            )
        out = []
        for _ in range(self.partitionings):
            if self.structure == "random":
                parts = np.array_split(rng.permutation(d), self.partitions)
            else:
                if not self.channel_shape:
                    raise AUError(
                        "ParzenLSH: structure='channels' needs channel_shape=(C, H, W) of the recorded map"
                    )
                per_channel = int(np.prod(self.channel_shape[1:]))
                channel_of = self.active_ // per_channel  # channel of each kept neuron
                groups = np.array_split(rng.permutation(int(self.channel_shape[0])), self.partitions)
                parts = [np.flatnonzero(np.isin(channel_of, g)) for g in groups]
                parts = [p for p in parts if len(p)]
            out.append([np.sort(p) for p in parts])
        return out

    def _fit(self, x: np.ndarray, y=None, x_val=None, x_val_ood=None) -> None:
        rng = np.random.default_rng(self.seed)
        if (
            self.structure == "channels"
            and self.channel_shape
            and int(np.prod(self.channel_shape)) != x.shape[1]
        ):
            raise AUError(
                f"ParzenLSH: channel_shape {self.channel_shape} does not match {x.shape[1]} features"
            )
        self.heldout_ = min(self.heldout, max(10, len(x) // 4))
        if len(x) < 2 * self.heldout_:
            raise AUError(f"ParzenLSH: needs at least {2 * self.heldout_} training examples, got {len(x)}")
        std = x.std(axis=0)
        self.active_ = np.flatnonzero(std > 1e-6 * max(float(std.max()), 1e-30))
        if len(self.active_) == 0:
            raise AUError("ParzenLSH: every neuron is constant over the training data; nothing to estimate")
        self.mean_ = x[:, self.active_].mean(axis=0)
        self.scale_ = std[self.active_]
        z = self._standardise(x)
        held = rng.choice(len(z), self.heldout_, replace=False)
        keep = np.setdiff1d(np.arange(len(z)), held)
        self.reference_ = np.ascontiguousarray(z[keep])
        self.reference_index_ = keep
        self.n_reference_ = len(keep)
        self._drawn = {"heldout": (held, slice(None))}
        heldout = z[held]
        self.partitionings_ = self._make_partitionings(rng)
        self.bandwidths_ = np.zeros((self.partitionings, max(len(p) for p in self.partitionings_)))
        self.heldout_partition_log_densities_ = np.zeros((len(held), *self.bandwidths_.shape))
        self.tables_: list[list[tuple[LSHTables, LSHTables] | None]] = []
        self.indexes_: list[list[DEANN | None]] = []
        for r, parts in enumerate(self.partitionings_):
            fitted = [self._fit_partition(r, p, idx, heldout, rng) for p, idx in enumerate(parts)]
            self.tables_.append([f if self.method == "lsh" else None for f in fitted])
            self.indexes_.append([f if self.method == "deann" else None for f in fitted])
        self.heldout_scores_ = self.heldout_partition_log_densities_.sum(axis=2).mean(axis=1)

    def _fit_partition(self, r: int, p: int, idx: np.ndarray, heldout: np.ndarray, rng):
        """Partition (r, p)'s bandwidth, and its LSH tables (``lsh``) or DEANN index (``deann``); None for ``exact``.

        The bandwidth maximises the held-out points' mean log-density over the grid (fractions of the
        median distance between 2,000 references drawn from ``rng``). Their kernel sums are exact for
        ``exact`` and ``lsh``; ``deann`` estimates them with its own index (built anyway, and the
        estimate is what it will score with), which keeps its fit from ever summing over all pairs.
        """
        ref = np.ascontiguousarray(self.reference_[:, idx])
        sample = torch.from_numpy(ref[rng.choice(len(ref), min(2000, len(ref)), replace=False)])
        half = len(sample) // 2
        median = float(np.median(torch.cdist(sample[:half], sample[half:])))
        q = np.ascontiguousarray(heldout[:, idx])
        grid = [max(median * fraction, 1e-12) for fraction in self.bandwidth_grid]
        rng_p = np.random.default_rng([self.seed, r, p])
        fitted = None
        if self.method == "deann":
            fitted = DEANN.build(ref, self.neighbours, self.samples, self.probes, rng_p)
            sums = fitted.log_sums(q, grid)  # (heldout, grid)
        else:
            sums = _log_kernel_sums_exact(torch.from_numpy(ref), q, grid)
        lds = [self._normalise(sums[:, i], len(idx), h) for i, h in enumerate(grid)]
        best = max(range(len(grid)), key=lambda i: (lds[i].mean(), -i))
        self.bandwidths_[r, p] = grid[best]
        self.heldout_partition_log_densities_[:, r, p] = lds[best]
        if self.method == "lsh":
            fitted = self._tables(ref, q, torch.from_numpy(ref), median, rng_p)
        return fitted

    def _tables(
        self, ref: np.ndarray, heldout: np.ndarray, ref_t: torch.Tensor, median: float, rng
    ) -> list[LSHTables]:
        """LSH tables whose hashes per table are calibrated on the held-out points.

        The bucket width is 4x the held-out points' median nearest-neighbour distance (the E2LSH rule
        of thumb). Starting from the count at which a point at the median pairwise distance would
        collide with a query about once per table, hashes per table are added until the held-out
        points average at most ``candidates`` bucket-mates over all tables, then removed again while
        fewer than ``min_recall`` of them find their true nearest neighbour among their candidates.
        """
        nn_sq, nn_index = _nearest(ref_t, heldout)
        width = 4.0 * max(float(np.sqrt(np.median(nn_sq))), 1e-6)
        seed = int(rng.integers(2**32))
        built: dict[int, LSHTables] = {}

        def tables_with(hashes: int) -> LSHTables:
            if hashes not in built:
                built[hashes] = build_tables(
                    ref, self.tables, hashes, width, np.random.default_rng([seed, hashes])
                )
            return built[hashes]

        def recall(tables: LSHTables) -> float:
            qi, ri = tables.candidates(heldout)
            pairs = qi * len(ref) + ri  # sorted and distinct, as candidates() returns them
            wanted = np.arange(len(heldout)) * len(ref) + nn_index
            found = np.minimum(np.searchsorted(pairs, wanted), max(len(pairs) - 1, 0))
            return float((pairs[found] == wanted).mean()) if len(pairs) else 0.0

        p_far = min(max(collision_probability(median, width), 1e-6), 0.999)
        hashes = max(1, math.ceil(math.log(1.0 / len(ref)) / math.log(p_far)))
        while tables_with(hashes).bucket_load(heldout) > self.candidates and hashes < 64:
            hashes += 1
        while hashes > 1 and recall(tables_with(hashes)) < self.min_recall:
            hashes -= 1
        # for queries with no candidate: a third as many tables with half the hashes (bigger buckets)
        coarse = build_tables(
            ref, max(4, self.tables // 3), max(1, hashes // 2), width, np.random.default_rng([seed, 0])
        )
        return tables_with(hashes), coarse

    def _normalise(self, log_sums: np.ndarray, g: int, h: float) -> np.ndarray:
        n = self.n_reference_
        return log_sums - math.log(n) - 0.5 * g * math.log(2 * math.pi * h * h)

    # ------------------------------------------------------------------ scaling out (au.detectors.base)
    # Four passes over chunks of the training rows reproduce _fit's choice of bandwidths with
    # method="exact": the mean, the standard deviation, the held-out and sampled rows (drawn with the
    # same generator, in the same order), then the held-out points' kernel sums per bandwidth, summed
    # exactly for every method (heldout x n pairs: little beside scoring; a local ``deann`` fit
    # estimates them instead and picks the same grid points on mnist-cnn's fc1,
    # tests/test_parzen_methods.py). Scoring estimates each query's kernel sum over every block of
    # training rows (reference_partial) and adds the blocks' sums (merge_partials): exactly
    # (``exact``), or by DEANN over the block (``deann``, the default). ``lsh`` is refused: its tables
    # are calibrated on all references at once. No reference_, LSH tables or faiss indexes are kept.

    def check_scale_out(self) -> None:
        """The parameters, and ``method``: ``deann`` and ``exact`` scale out, ``lsh`` does not (one line)."""
        super().check_scale_out()
        if self.method == "lsh":
            raise AUError(
                "ParzenLSH: method='lsh' cannot be scaled out (its LSH tables are calibrated on all training "
                "rows in one process); use method='deann' (the default) or 'exact', or the local engine"
            )

    def chunk_statistics(self, X, y, step: int, rows) -> dict[str, np.ndarray]:
        x = self._check_input(X, fitting=True)
        if step == 0:
            return {"rows": np.array([len(x)]), "sum": x.astype(np.float64).sum(axis=0)}
        if step == 1:
            return {"squares": ((x.astype(np.float64) - self._mean_all) ** 2).sum(axis=0)}
        z, rows = self._standardise(x), np.asarray(rows)
        if step == 2:  # the drawn rows, each at its slot (zeros elsewhere: summing chunks assembles them)
            return {key: _at_slots(z[:, cols], rows, drawn) for key, (drawn, cols) in self._drawn.items()}
        ref = ~np.isin(rows, self._drawn["heldout"][0])
        out = np.full((self.heldout_, *self._grids.shape), -np.inf)
        for r, p, idx in self._partitions():
            if ref.any():
                ref_t = torch.from_numpy(np.ascontiguousarray(z[ref][:, idx]))
                heldout = np.ascontiguousarray(self._heldout_z[:, idx])
                out[:, r, p] = _log_kernel_sums_exact(ref_t, heldout, list(self._grids[r, p]))
        return {"log_sums": out}

    def combine_statistics(self, a: dict, b: dict) -> dict:
        """Kernel log-sums combine by log-add-exp; everything else adds up."""
        both = super().combine_statistics(a, b)
        if "log_sums" in a and "log_sums" in b:
            both["log_sums"] = np.logaddexp(a["log_sums"], b["log_sums"])
        return both

    def fit_statistics(self, step: int, totals: dict, n_features: int) -> bool:
        self._check_params()
        self.n_features_in_ = int(n_features)
        if step == 0:
            n = int(totals["rows"][0])
            self.heldout_ = min(self.heldout, max(10, n // 4))
            if n < 2 * self.heldout_:
                raise AUError(f"ParzenLSH: needs at least {2 * self.heldout_} training examples, got {n}")
            self._n, self._mean_all = n, totals["sum"] / n
            return False
        if step == 1:
            self._draw(np.sqrt(totals["squares"] / self._n))
            return False
        if step == 2:
            self._heldout_z = totals.pop("heldout").astype(np.float32)
            self._grids = np.zeros(
                (self.partitionings, max(len(p) for p in self.partitionings_), len(self.bandwidth_grid))
            )
            for (r, p, _), key in zip(
                self._partitions(), [k for k in self._drawn if k != "heldout"], strict=True
            ):
                sample = torch.from_numpy(totals[key].astype(np.float32))
                half = len(sample) // 2
                median = float(np.median(torch.cdist(sample[:half], sample[half:])))
                self._grids[r, p] = [max(median * f, 1e-12) for f in self.bandwidth_grid]
            return False
        self._choose_bandwidths(totals["log_sums"])
        return True

    def _partitions(self):
        return [(r, p, idx) for r, parts in enumerate(self.partitionings_) for p, idx in enumerate(parts)]

    def _draw(self, std: np.ndarray) -> None:
        """What _fit computes before its kernel sums: the kept neurons, then the rows drawn, in _fit's order."""
        self.active_ = np.flatnonzero(std > 1e-6 * max(float(std.max()), 1e-30))
        if len(self.active_) == 0:
            raise AUError("ParzenLSH: every neuron is constant over the training data; nothing to estimate")
        self.mean_ = self._mean_all[self.active_].astype(np.float32)
        self.scale_ = std[self.active_].astype(np.float32)
        rng = np.random.default_rng(self.seed)
        held = rng.choice(self._n, self.heldout_, replace=False)
        keep = np.setdiff1d(np.arange(self._n), held)
        self.n_reference_ = len(keep)
        self.partitionings_ = self._make_partitionings(rng)
        self._drawn = {"heldout": (held, slice(None))}
        for r, p, idx in self._partitions():
            self._drawn[f"sample:{r}:{p}"] = (
                keep[rng.choice(len(keep), min(2000, len(keep)), replace=False)],
                idx,
            )

    def _choose_bandwidths(self, log_sums: np.ndarray) -> None:
        """_fit's choice of bandwidth per partition from the held-out points' kernel log-sums (heldout, R, P, grid)."""
        self.bandwidths_ = np.zeros(self._grids.shape[:2])
        self.heldout_partition_log_densities_ = np.zeros((self.heldout_, *self.bandwidths_.shape))
        for r, p, idx in self._partitions():
            grid = self._grids[r, p]
            lds = [self._normalise(log_sums[:, r, p, i], len(idx), h) for i, h in enumerate(grid)]
            best = max(range(len(grid)), key=lambda i: (lds[i].mean(), -i))
            self.bandwidths_[r, p] = grid[best]
            self.heldout_partition_log_densities_[:, r, p] = lds[best]
        self.heldout_scores_ = self.heldout_partition_log_densities_.sum(axis=2).mean(axis=1)

    def reference_partial(self, reference, X, rows) -> np.ndarray:
        """Log kernel sums of each input over this block of training rows, per partition: (n, partitions).

        ``reference`` (m, d) are the training rows at positions ``rows`` (m,); the held-out ones are
        left out. ``method="exact"`` sums the kernel over every pair. ``method="deann"`` estimates the
        block's sum by DEANN (Karppa, Aumüller & Pagh 2022, arXiv 2107.02736): a faiss index over the
        block's rows gives each input's ``neighbours`` nearest, summed exactly, and a random sample of
        ``samples`` of the block's rows, scaled up by (block rows) / ``samples``, stands for the
        others (:class:`au.detectors.kde.DEANN`). Each block's estimate is unbiased, so the sum over
        blocks (:meth:`merge_partials`) is an unbiased estimate of the whole sum, from
        ``blocks x (neighbours + samples)`` kernel terms per input and partition; a block of no more
        than ``samples`` rows is summed exactly. The index and sample depend only on the block's
        rows (sorted by position) and the seed: a block holding every reference row gets the local
        fit's own index, and a Spark task retried or run again gets the same estimate.
        """
        self._check_fitted()
        rows = np.asarray(rows)
        kept = np.flatnonzero(~np.isin(rows, self._drawn["heldout"][0]))
        kept = kept[np.argsort(rows[kept], kind="stable")]  # in row order, whatever order the block came in
        ref = self._standardise(self._check_input(reference, "reference")[kept])
        z = self._standardise(self._check_input(X))
        out = np.full((len(z), len(self._partitions())), -np.inf)
        if not len(ref):
            return out
        whole = len(ref) == self.n_reference_  # every reference row: seeded as the local fit's index
        block = [] if whole else [zlib.crc32(np.ascontiguousarray(rows[kept], dtype=np.int64).tobytes())]
        for j, (r, p, idx) in enumerate(self._partitions()):
            h, part, q = float(self.bandwidths_[r, p]), np.ascontiguousarray(ref[:, idx]), z[:, idx]
            if self.method == "deann":
                index = DEANN.build(
                    part, self.neighbours, self.samples, self.probes, [self.seed, r, p, *block]
                )
                out[:, j] = index.log_sums(np.ascontiguousarray(q), h)
            else:
                out[:, j] = _log_kernel_sums_exact(torch.from_numpy(part), np.ascontiguousarray(q), h)
        return out

    def merge_partials(self, partials: np.ndarray) -> np.ndarray:
        """The Parzen score from every block's log-sums (blocks, n, partitions): log-add-exp over blocks, then
        _score's sums - exact when the blocks' sums are, DEANN's estimate when theirs are."""
        sums = np.logaddexp.reduce(np.asarray(partials, dtype=np.float64), axis=0)  # (n, partitions)
        out = np.zeros((sums.shape[0], *self.bandwidths_.shape))
        for j, (r, p, idx) in enumerate(self._partitions()):
            out[:, r, p] = self._normalise(sums[:, j], len(idx), float(self.bandwidths_[r, p]))
        return out.sum(axis=2).mean(axis=1)

    # ------------------------------------------------------------------ scoring

    def partition_log_densities(self, features, method: str | None = None) -> np.ndarray:
        """log p_S(x) for every input, partitioning and partition: shape (n, R, P).

        ``method`` overrides the fitted one (``"exact"`` gives the all-pairs reference; ``"lsh"`` and
        ``"deann"`` need a detector fitted with that method).
        """
        self._check_fitted()
        return self._partition_log_densities(self._check_input(features), method)

    def _partition_log_densities(self, x: np.ndarray, method: str | None = None) -> np.ndarray:
        method = method or self.method
        if method not in METHODS:
            raise AUError(f"ParzenLSH: method={method!r} is unknown; expected 'lsh', 'deann' or 'exact'")
        if method != "exact" and method != self.method:
            raise AUError(
                f"ParzenLSH was fitted with method={self.method!r}; it can score with that method or 'exact', "
                f"not {method!r}"
            )
        z = self._standardise(x)
        out = np.zeros((len(z), *self.bandwidths_.shape))
        fallbacks = np.zeros(self.bandwidths_.shape, dtype=np.int64)

        def one(r: int, p: int, idx: np.ndarray) -> None:
            h = float(self.bandwidths_[r, p])
            q = np.ascontiguousarray(z[:, idx])
            if method == "deann":
                out[:, r, p] = self._normalise(self.indexes_[r][p].log_sums(q, h), len(idx), h)
                return
            ref = np.ascontiguousarray(self.reference_[:, idx])
            if method == "exact":
                sums = _log_kernel_sums_exact(torch.from_numpy(ref), q, h)
            else:
                fine, coarse = self.tables_[r][p]
                sums, missing = self._log_kernel_sums_lsh(fine, ref, q, h)
                if len(missing):
                    sums[missing], still = self._log_kernel_sums_lsh(coarse, ref, q[missing], h)
                    missing = missing[still]
                if len(missing):
                    fallbacks[r, p] = len(missing)
                    sums[missing] = _log_kernel_sums_exact(torch.from_numpy(ref), q[missing], h)
            out[:, r, p] = self._normalise(sums, len(idx), h)

        jobs = [(r, p, idx) for r, parts in enumerate(self.partitionings_) for p, idx in enumerate(parts)]
        if method != "lsh":  # torch's matrix products and faiss's searches already use every thread
            for job in jobs:
                one(*job)
        else:  # candidate gathering is mostly single-threaded NumPy that releases the GIL: partitions in parallel
            with ThreadPoolExecutor(max_workers=max(1, torch.get_num_threads())) as pool:
                for future in [pool.submit(one, *job) for job in jobs]:
                    future.result()
        self.fallbacks_ = int(fallbacks.sum())
        self.lookups_ = len(z) * sum(len(p) for p in self.partitionings_)
        return out

    @property
    def fallback_rate_(self) -> float:
        """Share of the last scoring's lookups (input x partition) summed exactly: ``fallbacks_ / lookups_``."""
        return self.fallbacks_ / max(1, self.lookups_)

    @staticmethod
    def _log_kernel_sums_lsh(
        tables: LSHTables, ref: np.ndarray, q: np.ndarray, h: float, max_pairs: int = 250_000
    ):
        """Kernel sums over each query's LSH candidates; also the queries left to the exact sum.

        Those are the queries with no candidate, and the queries whose buckets hold more than a
        quarter of the references over all tables (the exact sum is cheaper for them than
        gathering candidates). Queries are processed in chunks of at most ``max_pairs`` bucket
        entries (and their coordinates gathered in smaller blocks, :func:`_pair_dots`), so memory
        stays bounded however many queries there are and however crowded the buckets are.
        """
        sums = np.full(len(q), -np.inf)
        positions, counts = tables.lookup(q)
        loads = counts.sum(axis=0)
        crowded = loads > len(ref) // 4
        todo = np.flatnonzero(~crowded & (loads > 0))
        # consecutive queries whose bucket entries add up to about max_pairs go together
        cuts = np.flatnonzero(np.diff(np.cumsum(loads[todo]) // max_pairs)) + 1
        # squared distances of the pairs from the norms and torch's threaded gathers: |q|^2 + |r|^2 - 2 q.r
        qs, rs = torch.from_numpy(q), torch.from_numpy(ref)
        q_sq, r_sq = (qs * qs).sum(dim=1), (rs * rs).sum(dim=1)
        for chunk in np.split(todo, cuts):
            if not len(chunk):
                continue
            qi, ri = tables.candidates(q[chunk], (positions[:, chunk], counts[:, chunk]))
            q_rows, ri_t = torch.from_numpy(chunk[qi]), torch.from_numpy(ri)
            dot = _pair_dots(qs, rs, q_rows, ri_t)
            d2 = q_sq.index_select(0, q_rows) + r_sq.index_select(0, ri_t) - 2 * dot
            a = d2.clamp_min_(0.0).double().numpy() * (-0.5 / (h * h))
            starts = np.flatnonzero(np.r_[True, qi[1:] != qi[:-1]])
            peak = np.maximum.reduceat(a, starts)
            total = np.add.reduceat(np.exp(a - np.repeat(peak, np.diff(np.r_[starts, len(a)]))), starts)
            sums[chunk[qi[starts]]] = peak + np.log(total)
        return sums, np.flatnonzero(~np.isfinite(sums))

    def _score(self, x: np.ndarray, pred=None) -> np.ndarray:
        return self._partition_log_densities(x).sum(axis=2).mean(axis=1)

    def partition_neurons(self, r: int, p: int) -> np.ndarray:
        """Indices of the input features (neurons of the layer) in partition ``p`` of partitioning ``r``."""
        self._check_fitted()
        return self.active_[self.partitionings_[r][p]]

    def partition_coordinates(self, features, r: int, p: int) -> np.ndarray:
        """Inputs (n, d) in partition (r, p)'s standardised coordinates, where ``reference_[:, idx]`` lives: (n, g)."""
        self._check_fitted()
        return np.ascontiguousarray(
            self._standardise(self._check_input(features))[:, self.partitionings_[r][p]]
        )

    def partition_log_density_torch(self, features: torch.Tensor, r: int, p: int) -> torch.Tensor:
        """Exact ``log p_S(x)`` of partition (r, p) for features (n, d): (n,), differentiable in ``features``.

        The all-pairs form of :meth:`partition_log_densities` (``method="exact"``), in torch, so that
        gradients flow back through the network to the input (the low-density backtrace).
        """
        self._check_fitted()
        idx = self.partitionings_[r][p]
        neurons = torch.from_numpy(self.active_[idx])
        mean = torch.from_numpy(self.mean_[idx]).to(features.dtype)
        scale = torch.from_numpy(self.scale_[idx]).to(features.dtype)
        z = (features.index_select(1, neurons) - mean) / scale  # (n, g)
        ref = torch.from_numpy(np.ascontiguousarray(self.reference_[:, idx])).to(features.dtype)  # (m, g)
        h = float(self.bandwidths_[r, p])
        d2 = (z.pow(2).sum(1, keepdim=True) + ref.pow(2).sum(1)[None, :] - 2.0 * z @ ref.T).clamp_min(0.0)
        sums = torch.logsumexp(d2 * (-0.5 / (h * h)), dim=1)
        return sums - math.log(len(ref)) - 0.5 * len(idx) * math.log(2 * math.pi * h * h)

    def fitted_summary(self) -> dict:
        """The fitted choices worth reporting, with the mean bandwidth over partitions."""
        return {
            **super().fitted_summary(),
            "bandwidth_mean": float(np.mean(self.bandwidths_[self.bandwidths_ > 0])),
        }

    def zscore(
        self, features, samples: int = 1000, level: float = 0.95
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(z, low, high): each input's log-density in standard deviations of the held-out training inputs'.

        ``low`` and ``high`` come from ``samples`` bootstrap resamples of the held-out inputs (their
        mean and standard deviation re-estimated each time), at confidence ``level``.
        """
        scores = self.score_samples(features)
        held = self.heldout_scores_
        rng = np.random.default_rng(self.seed)
        draws = rng.integers(0, len(held), size=(samples, len(held)))
        means, stds = held[draws].mean(axis=1), held[draws].std(axis=1, ddof=1)
        z_boot = (scores[None, :] - means[:, None]) / stds[:, None]  # (samples, n)
        tail = (1 - level) / 2
        z = (scores - held.mean()) / held.std(ddof=1)
        return z, np.quantile(z_boot, tail, axis=0), np.quantile(z_boot, 1 - tail, axis=0)
