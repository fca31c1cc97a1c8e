"""``au score --engine spark``: the detectors fitted and scored by Spark's workers, over recordings.

Input is recordings (``au record``, either engine): the training split's, and one per scored
set. The job is a ``score`` job - same ``scores.parquet``, same manifest metrics - whose
detectors run where the rows are, each in the way it declares (``scale_out``,
:mod:`au.detectors.base`), with its own code on every chunk:

* ``"rows"`` (msp, energy): fitted on the training rows' count and width, scored row by row;
* ``"statistics"`` (Mahalanobis): each pass's statistics (class counts and sums, then the Gram
  matrix of class-centred rows) computed per partition by the workers and added up by Spark in
  a tree (:func:`_reduce_statistics`) - arrays of d x d values, never rows; the driver receives
  the totals only - then scored row by row;
* ``"neighbours"`` (kNN, Parzen): every block of scored rows meets every block of training rows
  in one task (``cogroup``), which builds faiss indexes over its training block: kNN's k nearest
  of each block merge into the exact k-th neighbour; Parzen's kernel sums over each block - DEANN's
  estimate from the block's own index and sample by default, exact with ``method="exact"`` - add
  up, in log space, to the sum over all training rows.

Detectors that read images, or that need all training rows in one process (or parameters that
do, :meth:`~au.detectors.base.Detector.check_scale_out`), are refused with one line before the
directory is claimed. Scores agree with the local engine's within floating-point summation order,
and Parzen's DEANN estimate with the local one's within its sampling error (the README gives the
measured differences). Only scores - one float per row and detector - and the recordings' id,
label and prediction columns reach the driver.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from au import activations, jobs, progress
from au.detectors import registry
from au.engines.spark import worker
from au.engines.spark.session import check_spark, session
from au.errors import AUError
from au.score.config import ScoreConfig
from au.score.schema import SCORES_FILE, read_scores_table, write_scores
from au.score.score_job import evaluate

REFERENCE_BLOCK = 32768
QUERY_BLOCK = 16384


def score_spark(
    train_acts: Path | str,
    sets: list[tuple[Path | str, bool]],
    out: Path | str,
    config: ScoreConfig = ScoreConfig(),
    *,
    master: str = "local[2]",
    weights_sha256: str | None = None,
    model_name: str | None = None,
    run_dir: str | None = None,
) -> dict:
    """Fit ``config.detectors`` on the recording ``train_acts``; score each ``(recording, is_ood)`` of ``sets``.

    The fitting rows are chosen as the local engine chooses them from a training recording
    (``au score --acts``): ``config.val_size`` rows drawn with ``config.seed`` are left out, then
    the first ``config.fit_limit``. Writes ``out/scores.parquet`` and the manifest; returns it.
    """
    check_spark(master)  # Java and the master first: a bad one is one line, and nothing is written
    train, recs = activations.open(train_acts), [(activations.open(p), ood) for p, ood in sets]
    layer, detectors = _check_inputs(train, recs, config, weights_sha256)
    fit_rows = _fitting_rows(train, config)
    identity = {
        "weights_sha256": train.manifest["model"]["weights_sha256"],
        "train_acts": [str(train_acts), train.manifest["job_key"]],
        "sets": [[str(r.path), r.manifest["job_key"], ood] for r, ood in recs],
        "layer": layer,
        "config": asdict(config),
        "engine": "spark",
    }
    job = jobs.Job("score", Path(out), identity, f"scoring of {model_name or 'a model'} at {layer} (spark)")
    if (done := jobs.finished(job)) is not None:
        progress.note(f"{out}: these scores are already complete; nothing to do")
        return done
    with session(master, "au score") as spark:
        claim = jobs.claim(job)
        reference = _frame(spark, train, layer, 0).where(_rows_filter(fit_rows))
        queries = functools.reduce(
            lambda a, b: a.unionByName(b), [_frame(spark, r, layer, k) for k, (r, _) in enumerate(recs)]
        )
        columns, report = {}, {}
        for det in detectors:
            progress.note(f"[score] {det.name}: fitting on {len(fit_rows):,} training rows with Spark")
            start = time.perf_counter()
            _fit(det, reference, _column(det, layer), _width(train, _column(det, layer)), fit_rows)
            fitted = time.perf_counter() - start
            columns[det.name] = _scores(spark, det, reference, queries, _column(det, layer), recs, fit_rows)
            report[det.name] = {
                "consumes": det.consumes.input,
                "score_unit": det.score_unit,
                "seconds": {"fit_seconds": fitted, "score_seconds": time.perf_counter() - start - fitted},
                "fitted": det.fitted_summary(),
            }
        engine = {"name": "spark", "master": master, "spark": spark.version}
    write_scores(claim.path(SCORES_FILE), {**_row_columns(recs), **columns}, config.detectors)
    metrics = evaluate(read_scores_table(claim.path(SCORES_FILE)), config.detectors)
    record_ = {
        "model": {"name": model_name, "weights_sha256": identity["weights_sha256"], "run": run_dir},
        "layer": layer,
        "in_distribution": {"train": train.manifest["dataset"]["spec"], "n_fit": len(fit_rows), "n_val": config.val_size},
        "sets": [_set_record(r, ood) for r, ood in recs],
        "config": asdict(config),
        "engine": engine,
        "detectors": {name: {**metrics[name], **report[name]} for name in config.detectors},
    }  # fmt: skip
    return claim.finish(record_, outputs=[SCORES_FILE])


def scalable_detectors() -> tuple[str, ...]:
    """The registered detectors this engine can fit and score: what ``--detectors all`` means here."""
    return tuple(name for name in registry.NAMES if registry.detector_class(name).scale_out is not None)


def _check_inputs(train, recs, config: ScoreConfig, weights: str | None):
    """(the feature layer, unfitted detectors), or one line on what cannot be scored this way."""
    if config.limit is not None:
        raise AUError("--limit is not available with --engine spark; record the rows to score instead")
    if train.manifest["dataset"]["split"] not in ("train", "all"):
        raise AUError(
            f"{train.path} records the {train.manifest['dataset']['split']!r} split; give the training split's recording"
        )
    layers = [name for name in train.layers if name != "logits"]
    layer = config.layer or (layers[0] if len(layers) == 1 else None)
    if layer is None:
        raise AUError(f"{train.path} records several layers ({', '.join(layers)}); choose one with --layer")
    for rec in [train, *(r for r, _ in recs)]:
        if weights is not None and rec.manifest["model"]["weights_sha256"] != weights:
            raise AUError(
                f"{rec.path} was recorded with other weights than this run's; record it from this run"
            )
        if layer != "logits":
            rec.layer_info(layer)  # one line when the layer was not recorded
    detectors = []
    for name in config.detectors:
        det = registry.build(name, None, config.params.get(name))
        if det.scale_out is None or det.consumes.input == "images":
            raise AUError(
                f"detector {name!r} needs all training rows (or the images) in one process; "
                "drop it from --detectors or use --engine local"
            )
        det.check_scale_out()  # its parameters, before the output directory is claimed
        detectors.append(det)
    return layer, detectors


def _fitting_rows(train, config: ScoreConfig) -> np.ndarray:
    """Row positions of the training recording to fit on (only its id column is read)."""
    n = train.num_rows
    if n < config.val_size + 2:
        raise AUError(f"{train.path} has {n} rows, too few for a {config.val_size}-example validation set")
    held = np.random.default_rng(config.seed).permutation(n)[: config.val_size]
    return np.flatnonzero(~np.isin(np.arange(n), held))[: config.fit_limit]


def _rows_filter(rows: np.ndarray):
    """A Spark condition keeping the row positions ``rows`` (ascending): a range minus the few left out."""
    from pyspark.sql import functions as F

    gaps = np.setdiff1d(np.arange(rows[0], rows[-1] + 1), rows)
    keep = F.col("_row").between(int(rows[0]), int(rows[-1]))
    return keep & ~F.col("_row").isin(gaps.tolist()) if len(gaps) else keep


def _column(detector, layer: str) -> str:
    return "logits" if detector.consumes.input == "logits" else layer


def _frame(spark, rec, layer: str, index: int):
    """A recording's rows as (_set, _row, label, pred, logits, layer), ``_row`` its position in the recording."""
    from pyspark.sql import functions as F

    starts = {p["file"].rsplit("/", 1)[-1]: p["start_row"] for p in _parts_with_starts(rec)}
    start_of = F.create_map(*[F.lit(x) for kv in starts.items() for x in kv])
    file_name = F.regexp_extract(F.col("_metadata.file_path"), r"[^/]+$", 0)
    columns = ["label", "pred", "logits"] + ([rec.layer_info(layer)["column"]] if layer != "logits" else [])
    frame = spark.read.parquet(*[str(p) for p in rec.files])
    return frame.select(
        F.lit(index).cast("int").alias("_set"),
        (start_of[file_name] + F.col("_metadata.row_index")).cast("bigint").alias("_row"),
        *columns,
    )


def _parts_with_starts(rec) -> list[dict]:
    parts, start = [], 0
    for part in rec.manifest["parts"]:
        parts.append({**part, "start_row": start})
        start += part["rows"]
    return parts


def _width(rec, column: str) -> int:
    """Values per row of a recorded column."""
    return int(rec.manifest["num_classes"] if column == "logits" else rec.layer_info(column)["features"])


def _fit(det, reference, column: str, width: int, fit_rows: np.ndarray) -> None:
    """Run the detector's statistics passes over the training rows until it says it is fitted.

    Each pass's statistics are added up by Spark (:func:`_reduce_statistics`): the driver receives
    one set of totals, never one per partition.
    """
    step = 0
    while True:
        body = functools.partial(
            worker.statistics_batches, detector=det, step=step, column=column, fit_rows=fit_rows
        )
        statistics = reference.mapInArrow(body, worker.STATISTICS_SCHEMA)
        if det.fit_statistics(step, _reduce_statistics(statistics, det), width):
            return
        step += 1


FAN_IN = 16
"""Partitions' statistics one Spark task of the tree aggregation adds up (:func:`_reduce_statistics`)."""


def _reduce_statistics(statistics, det) -> dict[str, np.ndarray]:
    """The totals of ``statistics`` - (key, npy) rows, one per key and partition - added up by Spark in a tree.

    Each level shuffles the rows into FAN_IN times fewer partitions and combines each partition's
    rows key by key (:func:`au.engines.spark.worker.combine_statistics_batches`, the detector's
    ``combine_statistics``), until one partition is left: its one row per key is what the driver
    receives. ``treeAggregate`` would end with a driver-side reduce over the last level's results.
    """
    combine = functools.partial(worker.combine_statistics_batches, detector=det)
    parts = statistics.rdd.getNumPartitions()
    while True:
        parts = max(1, math.ceil(parts / FAN_IN))
        statistics = statistics.repartition(parts).mapInArrow(combine, worker.STATISTICS_SCHEMA)
        if parts == 1:
            return {key: worker.from_npy(value) for key, value in statistics.collect()}


def _scores(spark, det, reference, queries, column: str, recs, fit_rows: np.ndarray) -> np.ndarray:
    """Every scored row's score, in the order of the sets and of their rows."""
    if det.scale_out == "neighbours":
        parallel = spark.sparkContext.defaultParallelism
        n_ref = reference.count()
        blocks_r = max(1, math.ceil(n_ref / REFERENCE_BLOCK))
        blocks_q = max(parallel, math.ceil(sum(r.num_rows for r, _ in recs) / QUERY_BLOCK))
        from pyspark.sql import functions as F

        ref = reference.withColumn("_rb", (F.col("_row") % blocks_r).cast("int"))
        ref = ref.crossJoin(spark.range(blocks_q).select(F.col("id").cast("int").alias("_qb")))
        qs = queries.withColumn("_qb", ((F.col("_row") + F.col("_set")) % blocks_q).cast("int"))
        qs = qs.crossJoin(spark.range(blocks_r).select(F.col("id").cast("int").alias("_rb")))
        partial = worker.partial_groups(det, column, fit_rows)
        partials = (
            ref.groupBy("_qb", "_rb")
            .cogroup(qs.groupBy("_qb", "_rb"))
            .applyInArrow(partial, worker.PARTIAL_SCHEMA)
        )
        merge = worker.merge_groups(det)
        scored = partials.groupBy("_qb").applyInArrow(merge, worker.SCORES_SCHEMA)
    else:
        scored = queries.mapInArrow(
            functools.partial(worker.score_batches, detector=det, column=column), worker.SCORES_SCHEMA
        )
    table = scored.toArrow()
    order = np.lexsort((table.column("_row").to_numpy(), table.column("_set").to_numpy()))
    values = table.column("score").to_numpy()[order]
    if len(values) != sum(r.num_rows for r, _ in recs):
        raise AUError(
            f"detector {det.name!r}: Spark returned {len(values)} scores for {sum(r.num_rows for r, _ in recs)} rows"
        )
    return values


def _row_columns(recs) -> dict[str, np.ndarray]:
    """The scores table's row columns, read from the recordings (ids, labels, predictions; no activations)."""
    parts = {k: [] for k in ("dataset", "split", "example_id", "label", "pred", "correct", "is_ood")}
    for rec, ood in recs:
        for path in rec.files:
            t = pq.read_table(path, columns=["example_id", "label", "pred", "correct"])
            n = t.num_rows
            parts["dataset"].append(np.full(n, rec.manifest["dataset"]["spec"], dtype=object))
            parts["split"].append(np.full(n, rec.manifest["dataset"]["split"], dtype=object))
            parts["example_id"].append(
                np.asarray(t.column("example_id").to_numpy(zero_copy_only=False)).astype(str)
            )
            parts["label"].append(t.column("label").to_numpy())
            parts["pred"].append(t.column("pred").to_numpy())
            parts["correct"].append(t.column("correct").to_numpy(zero_copy_only=False) & (not ood))
            parts["is_ood"].append(np.full(n, ood))
    return {k: np.concatenate(v) for k, v in parts.items()}


def _set_record(rec, ood: bool) -> dict:
    m = rec.manifest["dataset"]
    return {
        "dataset": m["spec"],
        "split": m["split"],
        "is_ood": ood,
        "rows": rec.num_rows,
        "recording": str(rec.path),
    }
