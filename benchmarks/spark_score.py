"""parzen_lsh on Spark local[2] against the local detector: DEANN per block of training rows, and exact.

Features: ``mnist-cnn``'s fc1 layer (the run's weights), recorded by the local engine on the 60,000
MNIST training images (the references: ``--val-size`` rows left out as ``au score`` leaves them out,
then a detector's own held-out rows), and on ``--queries`` rows of MNIST's test split
(in-distribution) and of Fashion-MNIST's (OOD). Four scorings of the same queries:

* **spark deann** - :func:`au.engines.spark.score.score_spark` with parzen_lsh's defaults: the
  bandwidths chosen by the held-out likelihood summed exactly over chunks, then DEANN's estimate
  (arXiv 2107.02736) over each block of 32,768 training rows, the blocks' sums added;
* **spark exact** - the same with ``method="exact"``;
* **local deann** - ``ParzenLSH()`` fitted on the same rows in this process (its bandwidths chosen
  by DEANN's estimate of that likelihood);
* **local exact** - that detector scored with ``method="exact"`` (the exact sum at its bandwidths).

Printed: each scoring's seconds (Spark's include its fit), the largest absolute score difference
of spark deann from local deann and from local exact (and of local deann from local exact, the
local estimate's own error), and each AUROC (MNIST test against Fashion-MNIST) with its
difference from local deann's and local exact's. Recordings are kept in ``--out`` and reused.

    python benchmarks/spark_score.py --run RUN_DIR [--queries 10000] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from au import activations, data
from au.activations import RecordConfig, record
from au.detectors.parzen import ParzenLSH
from au.engines.spark.score import _fitting_rows, score_spark
from au.engines.spark.session import session
from au.ood import auroc
from au.score.config import ScoreConfig
from au.score.schema import read_scores_table
from au.train import load_run

MASTER = "local[2]"


def _record(run, out: Path, queries: int) -> dict[str, Path]:
    """fc1 and the logits of MNIST's training split and of ``queries`` test rows of MNIST and Fashion-MNIST."""
    config = RecordConfig(layers=("fc1", "logits"), pool="avg", dtype="float32")
    weights = run.manifest["weights"]["sha256"]
    paths = {}
    for name, spec, split, limit in (
        ("train", "mnist", "train", None),
        ("mnist", "mnist", "test", queries),
        ("fashion", "fashion-mnist", "test", queries),
    ):
        paths[name] = out / f"acts-{name}"
        rec = replace(config, limit=limit)
        record(
            run.model, data.load(spec, split), paths[name], rec, weights_sha256=weights, show_progress=False
        )
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="an mnist-cnn run directory")
    parser.add_argument("--queries", type=int, default=10000, help="test rows of MNIST and of Fashion-MNIST")
    parser.add_argument("--val-size", type=int, default=1000)
    parser.add_argument(
        "--out", type=Path, help="where recordings and scores go (default: a temporary folder)"
    )
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="au-spark-score-"))
    paths = _record(load_run(args.run), out, args.queries)
    train = activations.open(paths["train"])
    sets = [(paths["mnist"], False), (paths["fashion"], True)]
    n_in = activations.open(paths["mnist"]).num_rows
    config = ScoreConfig(detectors=("parzen_lsh",), layer="fc1", val_size=args.val_size)
    fit_rows = _fitting_rows(train, config)
    queries = np.concatenate([activations.open(p).layer("fc1").values for p, _ in sets])
    print(
        f"{len(fit_rows):,} fitted training rows; {n_in:,} MNIST test and {len(queries) - n_in:,} Fashion-MNIST rows"
    )

    scores, seconds = {}, {}
    start = time.perf_counter()
    local = ParzenLSH().fit(train.layer("fc1").values[fit_rows])
    scores["local deann"] = local.score_samples(queries)
    seconds["local deann"] = time.perf_counter() - start
    start = time.perf_counter()
    scores["local exact"] = local.partition_log_densities(queries, method="exact").sum(axis=2).mean(axis=1)
    seconds["local exact"] = time.perf_counter() - start

    with session(MASTER, "au spark_score benchmark") as spark:
        spark.range(1).count()  # the JVM and its first Python worker, outside the timings
        for method in ("deann", "exact"):
            name, folder = f"spark {method}", out / f"scores-{method}-{time.time_ns()}"
            cfg = replace(config, params={"parzen_lsh": {"method": method}})
            start = time.perf_counter()
            score_spark(paths["train"], sets, folder, cfg, master=MASTER)
            seconds[name] = time.perf_counter() - start
            scores[name] = read_scores_table(folder / "scores.parquet").column("parzen_lsh").to_numpy()

    def area(s: np.ndarray) -> float:
        return auroc(s[:n_in], s[n_in:])

    print(f"{'scoring':<12} {'seconds':>8} {'AUROC':>8} {'-local deann':>13} {'-local exact':>13}")
    for name, s in scores.items():
        print(f"{name:<12} {seconds[name]:8.1f} {area(s):8.5f} {area(s) - area(scores['local deann']):+13.5f} "
              f"{area(s) - area(scores['local exact']):+13.5f}")  # fmt: skip
    diff = {
        "spark deann - local deann": scores["spark deann"] - scores["local deann"],
        "spark deann - local exact": scores["spark deann"] - scores["local exact"],
        "local deann - local exact": scores["local deann"] - scores["local exact"],
        "spark exact - local exact": scores["spark exact"] - scores["local exact"],
    }
    for name, d in diff.items():
        print(f"largest |{name}|: {np.abs(d).max():.4g} (median {np.median(np.abs(d)):.3g})")
    print(f"log-densities: median {np.median(scores['local exact']):.1f}; recordings and scores in {out}")


if __name__ == "__main__":
    main()
