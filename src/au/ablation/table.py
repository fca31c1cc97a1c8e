"""The trials table (``trials.parquet``): one row per finished trial, schema declared once here.

Every write is checked against :data:`TRIALS_SCHEMA` and replaces the file atomically, so a reader
sees the rows of the trials finished so far, never half a file. The file's metadata says whether the
sweep is complete (``au.complete``) and how many rows it will have (``au.expected_rows``);
:func:`read_trials` refuses an incomplete table unless asked for a partial one.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from au.errors import AUError
from au.tables import read_table, table_metadata, write_table

TRIALS_FILE = "trials.parquet"
FORMAT = "au-trials/1"

TRIALS_SCHEMA = pa.schema(
    [
        pa.field("kind", pa.string(), nullable=False),  # "fraction" or "class"
        pa.field(
            "fraction", pa.float64(), nullable=False
        ),  # keep-fraction of every class (1 in class sweeps)
        pa.field("ablated_class", pa.int32(), nullable=False),  # -1 when no class is shrunk alone
        pa.field("class_fraction", pa.float64()),  # keep-fraction of the ablated class (null when none)
        pa.field(
            "n_train", pa.int64(), nullable=False
        ),  # examples trained on (validation carve-out excluded)
        pa.field("n_val", pa.int64(), nullable=False),
        pa.field("n_test", pa.int64(), nullable=False),
        pa.field("n_train_ablated_class", pa.int64()),
        pa.field("trial", pa.int32(), nullable=False),
        pa.field("seed", pa.int64(), nullable=False),
        pa.field("test_accuracy", pa.float64(), nullable=False),
        pa.field("test_loss", pa.float64(), nullable=False),
        pa.field("train_accuracy", pa.float64(), nullable=False),
        pa.field("train_loss", pa.float64(), nullable=False),
        pa.field("val_accuracy", pa.float64()),
        pa.field("val_loss", pa.float64()),
        pa.field("per_class_precision", pa.list_(pa.float64()), nullable=False),  # test split, by class index
        pa.field("per_class_recall", pa.list_(pa.float64()), nullable=False),
        pa.field("per_class_n_train", pa.list_(pa.int64()), nullable=False),
        pa.field("steps", pa.int64(), nullable=False),  # optimiser steps taken
        pa.field("best_step", pa.int64(), nullable=False),  # step of the weights kept (early stopping)
        pa.field("epochs", pa.float64(), nullable=False),
        pa.field("stopped", pa.string(), nullable=False),  # "early_stopping", "max_steps" or "epochs"
        pa.field("max_steps", pa.int64()),
        pa.field("patience", pa.int64()),
        pa.field("eval_every", pa.int64()),
        pa.field("threads", pa.int32(), nullable=False),
        pa.field("wall_seconds", pa.float64(), nullable=False),
        pa.field("run_dir", pa.string(), nullable=False),  # relative to the sweep directory
    ]
)

SORT_KEYS = ("ablated_class", "class_fraction", "fraction", "trial")


def _sort_key(row: dict) -> tuple:
    return tuple(-1.0 if row[k] is None else row[k] for k in SORT_KEYS)


def write_trials(path: Path, rows: list[dict], expected_rows: int) -> None:
    """Write ``rows`` (sorted) to ``path`` atomically, checked against the schema."""
    complete = len(rows) == expected_rows
    metadata = {"au.format": FORMAT, "au.complete": str(complete).lower(), "au.expected_rows": expected_rows}
    write_table(path, sorted(rows, key=_sort_key), TRIALS_SCHEMA, metadata)


def read_trials(path: Path, allow_partial: bool = False) -> pa.Table:
    """The trials table of a sweep directory (or file); refuses an incomplete one unless ``allow_partial``."""
    path = Path(path)
    if path.is_dir():
        path = path / TRIALS_FILE
    table = read_table(path, TRIALS_SCHEMA, "au ablate")
    meta = table_metadata(table)
    if meta.get("au.format") != FORMAT:
        raise AUError(f"{path}: not an AU trials table")
    if meta.get("au.complete") != "true" and not allow_partial:
        raise AUError(
            f"{path} holds {table.num_rows} of {meta.get('au.expected_rows')} trials: the sweep is not finished; "
            "re-run the same 'au ablate' command to finish it"
        )
    return table
