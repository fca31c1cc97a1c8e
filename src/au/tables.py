"""AU's Parquet tables: each schema declared once, checked on every write and every read.

A table module declares its ``pyarrow.Schema`` (or a function that builds it, for tables whose
columns follow the data: one per recorded layer, one per detector) next to the code that writes it;
these helpers do the rest. The schema also gives the table's Spark DDL (:func:`spark_schema_ddl`),
so pyarrow, pandas, DuckDB and Spark all read the same columns without sidecar code.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from au.errors import AUError
from au.files import atomic_path


def write_table(path: Path, rows: list[dict] | dict, schema: pa.Schema, metadata: dict | None = None) -> None:
    """Write rows (a list of dicts) or columns (a dict of arrays) to ``path`` atomically, as ``schema``.

    ``metadata`` goes in the footer. Rows that do not fit the schema are a programming error, not a
    user's: they raise ``AssertionError``.
    """
    path = Path(path)
    try:
        if isinstance(rows, dict):
            table = pa.table({f.name: pa.array(rows[f.name], f.type) for f in schema}, schema=schema)
        else:
            table = pa.Table.from_pylist(rows, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError) as e:
        raise AssertionError(f"rows do not match the schema of {path.name}: {e}") from e
    if metadata:
        table = table.replace_schema_metadata({str(k): str(v) for k, v in metadata.items()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read_table(path: Path, schema: pa.Schema, make: str) -> pa.Table:
    """A table written by :func:`write_table`, refused if its columns are not ``schema``'s.

    ``make`` is the command that writes such a table (``"au gold"``), for the messages.
    """
    path = Path(path)
    if not path.is_file():
        raise AUError(f"{path} not found; run '{make}' first")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise AUError(f"{path}: not a readable Parquet file ({e}); re-run '{make}'") from None
    if _columns(table.schema) != _columns(schema):
        raise AUError(f"{path} does not have the expected columns; re-run '{make}' into a new directory")
    return table


def _columns(schema: pa.Schema) -> list[tuple[str, pa.DataType]]:
    """Names and types: what a reader relies on (other writers, pandas among them, mark every column nullable)."""
    return [(f.name, f.type) for f in schema]


def table_metadata(table: pa.Table) -> dict[str, str]:
    """The table's footer metadata as text."""
    return {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}


_SPARK_TYPES = {
    pa.string(): "STRING",
    pa.int32(): "INT",
    pa.int64(): "BIGINT",
    pa.bool_(): "BOOLEAN",
    pa.float16(): "FLOAT",
    pa.float32(): "FLOAT",
    pa.float64(): "DOUBLE",
}


def _spark_type(t: pa.DataType) -> str:
    if pa.types.is_list(t) or pa.types.is_fixed_size_list(t):
        return f"ARRAY<{_spark_type(t.value_type)}>"
    return _SPARK_TYPES[t]


def spark_schema_ddl(schema: pa.Schema) -> str:
    """The same columns as a Spark DDL string (lists become ARRAY, float16 becomes FLOAT)."""
    return ", ".join(f"`{f.name}` {_spark_type(f.type)}" for f in schema)
