"""parzen_lsh against the exact Parzen estimate (all pairs, same partitions, kernel and bandwidths), in one process.

Features: ``mnist-cnn``'s fc1 layer (the run's weights) on the 60,000 MNIST training images
(references) and 10,000 queries per set: the MNIST test split, Fashion-MNIST's test split and
uniform noise (plus Gaussian noise, animal silhouettes and digits with ``--all-ood``). One
detector is fitted; its LSH scoring and its exact scoring alternate over ``--rounds`` rounds.
Printed: seconds of each, the median speed-up, and per OOD set the AUROC of both and their
difference. Targets: at least 10x faster, AUROC within 0.01 of exact, AUROC >= 0.95 against
uniform noise and Fashion-MNIST.

    python benchmarks/parzen_lsh.py --run runs/demo/train [--queries 10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from au import data
from au.activations import capture
from au.allocator import tune_malloc
from au.data import to_tensor
from au.detectors import ParzenLSH
from au.ood import auroc
from au.score.sets import sample
from au.train import load_run


def features(model, dataset, layer: str) -> np.ndarray:
    out = []
    with torch.inference_mode(), capture(model, [layer], "avg") as feats:
        for lo in range(0, len(dataset), 512):
            model(to_tensor(dataset.images[lo : lo + 512]))
            out.append(feats[layer].numpy())
    return np.concatenate(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--run", type=Path, required=True, help="a trained mnist-cnn run (au train / au demo)"
    )
    parser.add_argument("--layer", default="fc1")
    parser.add_argument("--queries", type=int, default=10000, help="queries per set")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--all-ood", action="store_true", help="also Gaussian noise, animal-mnist and digits")
    args = parser.parse_args()
    tune_malloc()
    model = load_run(args.run).model.eval()
    sets = {
        "mnist test": ("mnist", "test"),
        "fashion-mnist": ("fashion-mnist", "test"),
        "noise-uniform": ("noise-uniform", "all"),
    }
    if args.all_ood:
        sets |= {
            "noise-gaussian": ("noise-gaussian", "all"),
            "animal-mnist": ("animal-mnist", "all"),
            "digits": ("digits", "all"),
        }
    reference = features(model, data.load("mnist", "train"), args.layer)
    queries = {
        k: features(model, sample(data.load(spec, split), args.queries, 0), args.layer)
        for k, (spec, split) in sets.items()
    }
    bounds = np.cumsum([0, *(len(q) for q in queries.values())])
    everything = np.concatenate(list(queries.values()))

    start = time.perf_counter()
    detector = ParzenLSH().fit(reference)
    fit_seconds = time.perf_counter() - start
    print(
        f"parzen_lsh on {args.layer}: {len(reference):,} references, {len(everything):,} queries, "
        f"{detector.partitions} partitions x {detector.partitionings} partitionings, {detector.tables} tables, "
        f"{torch.get_num_threads()} threads; fit {fit_seconds:.1f} s"
    )
    times: dict[str, list[float]] = {"lsh": [], "exact": []}
    results = {}
    for r in range(args.rounds):
        for method in ("lsh", "exact") if r % 2 == 0 else ("exact", "lsh"):
            start = time.perf_counter()
            results[method] = (
                detector.partition_log_densities(everything, method=method).sum(axis=2).mean(axis=1)
            )
            times[method].append(time.perf_counter() - start)
            if method == "lsh":
                fallback = detector.fallback_rate_
    speedups = [e / s for e, s in zip(times["exact"], times["lsh"], strict=True)]
    print(f"  exact {statistics.median(times['exact']):7.2f} s")
    print(
        f"  lsh   {statistics.median(times['lsh']):7.2f} s   speed-up {statistics.median(speedups):.2f}x  "
        f"(exact fallback for {100 * fallback:.2f}% of lookups)"
    )
    names = list(queries)
    scores = {m: {k: v[bounds[i] : bounds[i + 1]] for i, k in enumerate(names)} for m, v in results.items()}
    gap = scores["exact"][names[0]] - scores["lsh"][names[0]]
    print(
        f"  in-distribution log-density, exact minus lsh: median {np.median(gap):.3f}, 90th percentile {np.quantile(gap, 0.9):.3f}"
    )
    print(f"\n  {'OOD set':<16} {'AUROC lsh':>10} {'AUROC exact':>12} {'difference':>11}")
    for name in names[1:]:
        a_lsh = auroc(scores["lsh"][names[0]], scores["lsh"][name])
        a_exact = auroc(scores["exact"][names[0]], scores["exact"][name])
        print(f"  {name:<16} {a_lsh:10.4f} {a_exact:12.4f} {a_lsh - a_exact:+11.4f}")


if __name__ == "__main__":
    main()
