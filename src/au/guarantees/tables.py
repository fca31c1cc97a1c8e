"""The two tables ``au gold`` writes, each with one declared schema checked on every write.

``splits.parquet``: one row per (stream, entry, epsilon, split) of the split check.
``training_size.parquet``: one row per (ablation trial, detector, epsilon).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from au.errors import AUError
from au.manifest import atomic_path

SPLITS_FILE = "splits.parquet"
TRAINING_SIZE_FILE = "training_size.parquet"

SPLITS_SCHEMA = pa.schema(
    [
        pa.field("stream", pa.string(), nullable=False),  # "in" or "mixed"
        pa.field("entry", pa.string(), nullable=False),  # detector, or detector@layer
        pa.field("epsilon", pa.float64(), nullable=False),
        pa.field("split", pa.int32(), nullable=False),
        pa.field("certified", pa.bool_(), nullable=False),
        pa.field("threshold", pa.float64()),  # null when nothing is certified (nothing accepted)
        pa.field("risk_bound", pa.float64(), nullable=False),
        pa.field("cal_coverage", pa.float64(), nullable=False),
        pa.field("coverage", pa.float64(), nullable=False),  # on the split's test part
        pa.field("test_risk", pa.float64(), nullable=False),
        pa.field("violated", pa.bool_(), nullable=False),  # test_risk > epsilon
    ]
)

TRAINING_SIZE_SCHEMA = pa.schema(
    [
        pa.field("run_dir", pa.string(), nullable=False),  # relative to the sweep directory
        pa.field("kind", pa.string(), nullable=False),  # the sweep's kind: "fraction" or "class"
        pa.field(
            "fraction", pa.float64(), nullable=False
        ),  # keep-fraction (of the ablated class in a class sweep)
        pa.field("ablated_class", pa.int32(), nullable=False),  # -1 in a fraction sweep
        pa.field("trial", pa.int32(), nullable=False),
        pa.field("n_train", pa.int64(), nullable=False),
        pa.field("test_accuracy", pa.float64(), nullable=False),  # on the scored test inputs
        pa.field("detector", pa.string(), nullable=False),
        pa.field("epsilon", pa.float64(), nullable=False),
        pa.field("coverage", pa.float64(), nullable=False),  # first split's test part
        pa.field("coverage_mean", pa.float64(), nullable=False),  # over all splits
        pa.field("coverage_std", pa.float64(), nullable=False),
        pa.field("violation_rate", pa.float64(), nullable=False),
        pa.field("aurc", pa.float64(), nullable=False),
        pa.field("score_mean", pa.float64(), nullable=False),  # mean score of the test inputs
    ]
)


def write_table(path: Path, rows: list[dict], schema: pa.Schema) -> None:
    """Write ``rows`` to ``path`` atomically, checked against ``schema``."""
    path = Path(path)
    try:
        table = pa.Table.from_pylist(rows, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError) as e:  # a programming error, not a user's
        raise AssertionError(f"rows do not match the schema of {path.name}: {e}") from e
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read_table(path: Path, schema: pa.Schema) -> pa.Table:
    """A table written by :func:`write_table`, refused if its columns are not ``schema``'s."""
    path = Path(path)
    if not path.is_file():
        raise AUError(f"{path} not found; run 'au gold' first")
    table = pq.read_table(path)
    if table.schema.remove_metadata() != schema:
        raise AUError(f"{path} does not have the expected columns; re-run 'au gold' into a new directory")
    return table
