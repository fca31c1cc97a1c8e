"""The scores table (``scores.parquet``), declared once: fixed row columns, then one float64 column per detector.

One row per scored input::

    dataset      string   the scored set's spec
    split        string   its split
    example_id   string   the example's stable id in that set
    label        int64    its label in its own dataset's classes (-1 when it has none)
    pred         int64    the model's prediction
    correct      bool     pred == label for in-distribution inputs; false for OOD inputs
    is_ood       bool     whether the set is out-of-distribution
    <detector>   float64  one column per detector, named after it: higher = more in-distribution

Written and read only through :func:`write_scores` and :func:`read_scores_table`, which check
the columns; :func:`au.tables.spark_schema_ddl` gives the Spark DDL.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from au.errors import AUError
from au.tables import read_table, table_metadata, write_table

SCORES_FILE = "scores.parquet"
FORMAT = "au-scores/1"
ROW_FIELDS = (
    pa.field("dataset", pa.string(), nullable=False),
    pa.field("split", pa.string(), nullable=False),
    pa.field("example_id", pa.string(), nullable=False),
    pa.field("label", pa.int64(), nullable=False),
    pa.field("pred", pa.int64(), nullable=False),
    pa.field("correct", pa.bool_(), nullable=False),
    pa.field("is_ood", pa.bool_(), nullable=False),
)
ROW_COLUMNS = tuple(f.name for f in ROW_FIELDS)


def scores_schema(detectors) -> pa.Schema:
    """The table's schema for these detector columns."""
    clash = [d for d in detectors if d in ROW_COLUMNS]
    assert not clash, f"detector names {clash} are row columns"
    return pa.schema([*ROW_FIELDS, *(pa.field(d, pa.float64(), nullable=False) for d in detectors)])


def write_scores(path: Path, columns: dict[str, np.ndarray], detectors) -> None:
    """Write the row columns and one score column per detector, checked against :func:`scores_schema`."""
    write_table(path, columns, scores_schema(detectors), {"au.format": FORMAT})


def read_scores_table(path: Path) -> pa.Table:
    """A scores table, refused unless its columns are the row columns followed by float64 scores."""
    path = Path(path)
    try:
        names = pq.read_schema(path).names
    except (pa.ArrowInvalid, OSError):
        names = []
    detectors = names[len(ROW_COLUMNS) :] if tuple(names[: len(ROW_COLUMNS)]) == ROW_COLUMNS else []
    table = read_table(path, scores_schema(detectors), "au score")
    if table_metadata(table).get("au.format") != FORMAT:
        raise AUError(f"{path}: not an AU scores table; re-run 'au score'")
    return table


def detector_columns(table: pa.Table) -> list[str]:
    """The score columns of a scores table."""
    return table.column_names[len(ROW_COLUMNS) :]
