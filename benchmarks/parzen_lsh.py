"""parzen_lsh's estimators (LSH, DEANN) against the exact Parzen estimate, in one process.

Features: ``mnist-cnn``'s fc1 layer (the run's weights) on the 60,000 MNIST training images
(references) and ``--queries`` queries per set (10,000): the MNIST test split, Fashion-MNIST's test
split and uniform noise (plus Gaussian noise, animal silhouettes and digits with ``--all-ood``).
One detector is fitted per method (``lsh``, ``deann``), each timed; the exact estimate is computed
with the same partitions, kernel and bandwidths (one of those detectors scored with
``method="exact"``; once per distinct set of bandwidths), so AUROC differences measure only the
estimator. Scorings alternate over ``--rounds`` rounds (the order reversed every other round).

Printed: fit seconds per method; scoring seconds and the median speed-up over exact per method;
per OOD set the AUROC of each method, of exact and their difference; the misclassification AUROC
(correct against wrong MNIST test predictions) of each; and the peak resident memory of fitting
on the references and scoring every query in one call, per method, each in a fresh subprocess
(``VmHWM`` of that process; its peak before fitting - imports and features - is printed beside it).

Targets (issue 14): at least 30x faster than exact, AUROC within 0.01 of exact on every OOD set,
the fit on 60,000 references in at most 10 s, and a peak under 2 GB at 60,000 references and 30,000
queries - met by ``deann``; ``lsh`` is kept for comparison.

    python benchmarks/parzen_lsh.py --run runs/demo/train [--queries 10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
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

METHODS = ("lsh", "deann")


def features(model, dataset, layer: str) -> tuple[np.ndarray, np.ndarray]:
    """The layer's features (n, d) and the model's predictions (n,)."""
    out, preds = [], []
    with torch.inference_mode(), capture(model, [layer], "avg") as feats:
        for lo in range(0, len(dataset), 512):
            preds.append(model(to_tensor(dataset.images[lo : lo + 512])).argmax(dim=1).numpy())
            out.append(feats[layer].numpy())
    return np.concatenate(out), np.concatenate(preds)


def peak_memory(method: str, folder: Path) -> dict:
    """Peak resident memory of fitting ``method`` on the saved references and scoring every saved query, in a fresh process."""
    command = [sys.executable, __file__, "--memory-child", method, "--features", str(folder)]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def resident_peak() -> float:
    """This process's peak resident size in GB: ``VmHWM`` of /proc/self/status where there is one.

    Not ``ru_maxrss`` on Linux: it keeps the peak of the forked parent across ``exec``, so a fresh
    subprocess would report at least its parent's size.
    """
    status = Path("/proc/self/status")
    if status.exists():
        line = next(row for row in status.read_text().splitlines() if row.startswith("VmHWM:"))
        return int(line.split()[1]) / 2**20  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**30  # bytes on macOS


def memory_child(method: str, folder: Path) -> None:
    """Load the features, note the resident peak, fit, score every query in one call; print the peaks (GB)."""
    reference, queries = np.load(folder / "reference.npy"), np.load(folder / "queries.npy")
    before = resident_peak()
    ParzenLSH(method=method).fit(reference).score_samples(queries)
    peak = resident_peak()
    print(json.dumps({"before": before, "peak": peak, "references": len(reference), "queries": len(queries)}))


def time_scorings(detectors: dict, everything: np.ndarray, rounds: int) -> tuple[dict, dict]:
    """Seconds of every scoring per round, and the scores; exact once per distinct set of bandwidths."""
    exact_of = {}  # method -> the method whose detector computes its exact reference
    for method, det in detectors.items():
        same = [m for m in exact_of.values() if np.array_equal(detectors[m].bandwidths_, det.bandwidths_)]
        exact_of[method] = same[0] if same else method
    jobs = [(m, m) for m in detectors] + [(f"exact:{m}", m) for m in sorted(set(exact_of.values()))]
    times: dict[str, list[float]] = {name: [] for name, _ in jobs}
    scores = {}
    for r in range(rounds):
        for name, m in jobs if r % 2 == 0 else jobs[::-1]:
            start = time.perf_counter()
            method = "exact" if name.startswith("exact") else m
            scores[name] = (
                detectors[m].partition_log_densities(everything, method=method).sum(axis=2).mean(axis=1)
            )
            times[name].append(time.perf_counter() - start)
    for method in detectors:
        times[f"exact for {method}"] = times[f"exact:{exact_of[method]}"]
        scores[f"exact for {method}"] = scores[f"exact:{exact_of[method]}"]
    return times, scores


def report(detectors, fit_seconds, times, scores, names, bounds, correct, memory) -> None:
    """Print the comparison (see the module's docstring)."""
    exact_seconds = {m: statistics.median(times[f"exact for {m}"]) for m in detectors}
    for method, det in detectors.items():
        speedups = [e / s for e, s in zip(times[f"exact for {method}"], times[method], strict=True)]
        extra = f", exact fallback for {100 * det.fallback_rate_:.2f}% of lookups" if method == "lsh" else ""
        print(
            f"  {method:<6} fit {fit_seconds[method]:6.1f} s   scoring {statistics.median(times[method]):7.2f} s "
            f"(exact {exact_seconds[method]:7.2f} s)   speed-up {statistics.median(speedups):6.1f}x{extra}"
        )
    split = {k: {n: v[bounds[i] : bounds[i + 1]] for i, n in enumerate(names)} for k, v in scores.items()}
    print(f"\n  {'OOD set':<16} {'method':<6} {'AUROC':>8} {'exact':>8} {'|difference|':>13}")
    for name in [*names[1:], "misclassified"]:
        for method in detectors:
            pair = [split[method], split[f"exact for {method}"]]
            if name == "misclassified":
                a, e = (auroc(s[names[0]][correct], s[names[0]][~correct]) for s in pair)
            else:
                a, e = (auroc(s[names[0]], s[name]) for s in pair)
            print(f"  {name:<16} {method:<6} {a:8.4f} {e:8.4f} {abs(a - e):13.4f}")
    first = next(iter(memory.values()))
    print(
        f"\n  peak resident memory, fitting on {first['references']:,} references and scoring "
        f"{first['queries']:,} queries in one call (a fresh process per method):"
    )
    for method, m in memory.items():
        print(f"  {method:<6} {m['peak']:5.2f} GB   (the process before fitting: {m['before']:.2f} GB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a trained mnist-cnn run (au train / au demo)")
    parser.add_argument("--layer", default="fc1")
    parser.add_argument("--queries", type=int, default=10000, help="queries per set")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--all-ood", action="store_true", help="also Gaussian noise, animal-mnist and digits")
    parser.add_argument("--memory-child", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--features", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    tune_malloc()
    if args.memory_child:
        return memory_child(args.memory_child, args.features)
    if args.run is None:
        parser.error("--run is required")
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
    reference = features(model, data.load("mnist", "train"), args.layer)[0]
    queries, correct = {}, None
    for k, (spec, split) in sets.items():
        dataset = sample(data.load(spec, split), args.queries, 0)
        queries[k], preds = features(model, dataset, args.layer)
        correct = preds == dataset.labels if correct is None else correct
    names = list(queries)
    bounds = np.cumsum([0, *(len(q) for q in queries.values())])
    everything = np.concatenate(list(queries.values()))

    detectors, fit_seconds = {}, {}
    for method in METHODS:
        start = time.perf_counter()
        detectors[method] = ParzenLSH(method=method).fit(reference)
        fit_seconds[method] = time.perf_counter() - start
    same = all(np.array_equal(d.bandwidths_, detectors["lsh"].bandwidths_) for d in detectors.values())
    print(
        f"parzen_lsh on {args.layer}: {len(reference):,} references, {len(everything):,} queries, "
        f"{detectors['lsh'].partitions} partitions x {detectors['lsh'].partitionings} partitionings, "
        f"{torch.get_num_threads()} threads, {args.rounds} round(s); bandwidths "
        f"{'identical' if same else 'differ'} across methods"
    )
    times, scores = time_scorings(detectors, everything, args.rounds)
    with tempfile.TemporaryDirectory() as folder:
        np.save(Path(folder) / "reference.npy", reference)
        np.save(Path(folder) / "queries.npy", everything)
        memory = {method: peak_memory(method, Path(folder)) for method in METHODS}
    report(detectors, fit_seconds, times, scores, names, bounds, correct, memory)


if __name__ == "__main__":
    main()
