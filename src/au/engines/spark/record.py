"""``au record --engine spark``: the same activations table, computed by Spark's workers and written by its committer.

The job is the local engine's ``record`` job - same identity fields, manifest fields and reader -
with Spark in the middle::

    OUT/incomplete.json       the protocol's marker (au.jobs), written before Spark starts
    OUT/spark/part-*.parquet  written by Spark's output committer; spark/_SUCCESS once committed
    OUT/manifest.json         written last by AU: the parts in row order, their rows and SHA-256,
                              and the schema they hold (layers as list<float32>)

Input is an images table (:mod:`au.data.images_table`: ``au export`` writes one; CIFAR-shaped
tables are read as they are). Rows keep the table's order: each row's position in its file
(Spark's ``_metadata.row_index``) range-partitions the rows and sorts them within a partition,
and partition ``i`` is written as part ``i``. The workers build the model once each
(:mod:`au.engines.spark.worker`); no activation passes through the driver.

A job killed while Spark runs is re-run from the start (Spark's committer discards the
uncommitted attempt); one killed after the commit and before the manifest is finished from the
committed parts. Either way the result is the table an uninterrupted run writes, and until
``manifest.json`` exists the directory is refused by every reader.
"""

from __future__ import annotations

import functools
import math
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from torch import nn

from au import jobs, progress
from au.activations.config import RecordConfig
from au.activations.record_job import check_record_inputs, manifest_record
from au.data.dataset import ImageDataset
from au.data.images_table import check_images_table, decode_image, example_ids
from au.data.sources.parquet import table_class_names
from au.engines.spark.session import check_spark, session, ship_code, task_progress
from au.engines.spark.worker import record_batches, ship
from au.errors import AUError
from au.files import sha256_file
from au.models.weights import model_identity, state_sha256
from au.tables import spark_schema_ddl

SPARK_DIR = "spark"
ROWS_PER_TASK = 8192


def record_spark(
    model: nn.Module,
    table: Path | str,
    out: Path | str,
    config: RecordConfig = RecordConfig(),
    *,
    split: str = "all",
    master: str = "local[2]",
    model_name: str | None = None,
    weights_sha256: str | None = None,
    run_dir: str | None = None,
    rows_per_task: int = ROWS_PER_TASK,
) -> dict:
    """Record ``config.layers`` of ``model`` on the ``split`` rows of the images ``table`` into ``out`` with Spark.

    Parameters mirror :func:`au.activations.record_job.record`; ``split`` selects rows by the table's
    ``split`` column (``"all"``: every row), ``master`` is the Spark master URL, and each Spark task
    records at most ``rows_per_task`` rows. Returns the manifest.
    """
    check_spark(master)  # Java and the master first: a bad one is one line, and nothing is written
    table, out = Path(table), Path(out)
    sample, positions = _table_rows(table, split, config.limit)
    _, specs, num_outputs, schema = check_record_inputs(model, sample, config)
    n = len(positions)
    identity = {
        "model": model_name or model_identity(model)["au.model"],
        "weights_sha256": weights_sha256 or state_sha256(model),
        "dataset": sample.name,
        "split": split,
        "rows": n,
        "data_sha256": sha256_file(table),
        "layers": [s.to_dict() for s in specs],
        "dtype": config.dtype,
        "batch_size": config.batch_size,
    }
    job = jobs.Job("record", out, identity, f"recording of {identity['model']} on {sample.name} ({split})")
    if (done := jobs.finished(job)) is not None:
        progress.note(f"{out}: this recording is already complete; nothing to do")
        return done
    with session(master, "au record", arrow_batch=config.batch_size) as spark:
        claim = jobs.claim(job)
        started = time.perf_counter()
        committed = (claim.path(SPARK_DIR) / "_SUCCESS").is_file()
        if not committed:
            parts = max(spark.sparkContext.defaultParallelism, math.ceil(n / rows_per_task))
            rows = _rows_frame(spark, table, split, int(positions[-1]), parts)
            shipped = ship(spark, model, identity["weights_sha256"])
            ship_code(*model.modules())
            body = functools.partial(
                record_batches,
                model=shipped,
                specs=specs,
                pool=config.pool,
                dtype=config.dtype,
                channels=sample.images.shape[3],
                classes=sample.class_names,
                constants={"dataset": sample.name, "split": split},
                schema=_arrow_schema(schema),
            )
            with task_progress(spark, f"record {split} (spark)", n):
                rows.mapInArrow(body, spark_schema_ddl(schema)).write.mode("overwrite").parquet(
                    str(claim.path(SPARK_DIR))
                )
        engine = {"name": "spark", "master": master, "spark": spark.version, "resumed_committed": committed}
    written = _committed_parts(claim.out, n)
    record_ = manifest_record(
        identity, run_dir, num_outputs, config, written, _stored_schema(claim.out, written), engine=engine,
        seconds=time.perf_counter() - started,
    )  # fmt: skip
    return claim.finish(record_)


def _table_rows(table: Path, split: str, limit: int | None) -> tuple[ImageDataset, np.ndarray]:
    """(the first row of ``split`` as a one-image dataset for the input checks, the rows to record).

    Rows are positions in the file; only the ``split`` column is read to find them.
    """
    info = check_images_table(table)
    if "split" in info["columns"]:
        splits = pq.read_table(table, columns=["split"]).column(0).to_numpy(zero_copy_only=False)
        positions = np.flatnonzero(splits == split) if split != "all" else np.arange(len(splits))
        if not len(positions):
            have = ", ".join(sorted(set(splits.tolist())))
            raise AUError(f"{table} has no rows of split {split!r}; it has: {have} (choose with --split)")
    elif split != "all":
        raise AUError(f"{table} has no split column; record it with --split all")
    else:
        positions = np.arange(info["rows"])
    positions = positions[:limit] if limit else positions
    return _first_row(table, int(positions[0]), info, split), positions


def _first_row(table: Path, position: int, info: dict, split: str) -> ImageDataset:
    """The row at ``position`` as a one-image dataset named ``parquet:TABLE``, for the input checks."""
    file = pq.ParquetFile(table)
    group, start = 0, 0
    while start + file.metadata.row_group(group).num_rows <= position:
        start += file.metadata.row_group(group).num_rows
        group += 1
    row = file.read_row_group(group).slice(position - start, 1)
    labels = (
        row.column("label").to_numpy().astype(np.int64) if "label" in row.column_names else np.array([-1])
    )
    classes = table_class_names(table, info)
    names = row.column_names
    ids = example_ids(
        row.column("split")[0].as_py() if "split" in names else split,
        labels,
        classes,
        source_index=row.column("source_index").to_pylist() if "source_index" in names else None,
        example_id=row.column("example_id").to_pylist() if "example_id" in names else None,
    )
    image = decode_image(row.column("image")[0].as_py(), info["channels"], f"{table} row {position}")
    return ImageDataset(image[None], labels, ids, classes, f"parquet:{table}", split)


def _rows_frame(spark, table: Path, split: str, last: int, partitions: int):
    """The rows to record, in file order, range-partitioned into ``partitions`` ordered tasks."""
    from pyspark.sql import functions as F

    frame = spark.read.parquet(str(table))
    keep = [
        c
        for c in ("example_id", "split", "label", "label_name", "source_index", "image")
        if c in frame.columns
    ]
    frame = frame.select(*keep, F.col("_metadata.row_index").alias("_row"))
    if split != "all":
        frame = frame.where(F.col("split") == split)
    frame = frame.where(F.col("_row") <= last)
    return frame.repartitionByRange(partitions, "_row").sortWithinPartitions("_row")


def _arrow_schema(schema: pa.Schema) -> pa.Schema:
    """The recording schema as Spark passes it through Arrow: plain lists of float32."""
    return pa.schema(
        [
            pa.field(f.name, pa.list_(pa.float32())) if pa.types.is_fixed_size_list(f.type) else f
            for f in schema
        ]
    )


def _stored_schema(out: Path, parts: list[dict]) -> pa.Schema:
    """The schema Spark's part files hold (read from their footers), for the manifest.

    Not the local engine's: Spark writes layer columns as ``list<float32>`` (it has neither
    fixed-size lists nor float16) and every column as nullable. The parts of one commit share it;
    parts that do not are a damaged commit, recorded again by the next run.
    """
    schemas = [pq.read_schema(out / part["file"]).remove_metadata() for part in parts]
    if any(not schema.equals(schemas[0]) for schema in schemas):
        (out / SPARK_DIR / "_SUCCESS").unlink(missing_ok=True)
        raise AUError(f"{out}: Spark's part files hold different schemas; re-run the same command")
    return schemas[0]


def _committed_parts(out: Path, rows: int) -> list[dict]:
    """Spark's committed part files in partition (= row) order, with rows, bytes and SHA-256."""
    parts, start = [], 0
    for path in sorted((out / SPARK_DIR).glob("part-*.parquet")):
        count = pq.ParquetFile(path).metadata.num_rows
        if count == 0:
            continue
        parts.append(
            {
                "file": path.relative_to(out).as_posix(),
                "rows": count,
                "start_row": start,
                "bytes": path.stat().st_size,
                "sha256": sha256_file(path),
            }
        )
        start += count
    if start != rows:  # a damaged commit: the next run records again
        (out / SPARK_DIR / "_SUCCESS").unlink(missing_ok=True)
        raise AUError(f"{out}: Spark committed {start} rows, expected {rows}; re-run the same command")
    return parts
