"""Read a recording back: one layer at a time, as a NumPy array with its examples' ids, labels and predictions.

>>> from au import activations
>>> rec = activations.open("acts/mnist-test")
>>> fc1 = rec.layer("fc1")          # fc1.values: (rows, 128) float16, fc1.ids / .labels / .pred / .correct: (rows,)

Only the columns asked for are read (Parquet is columnar), from memory-mapped files; a layer too big
for memory is streamed part by part with :meth:`Recording.iter_layer`. A directory whose manifest is
missing, or disagrees with its parts, is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from au import jobs
from au.errors import AUError
from au.files import sha256_file

_ROW_COLUMNS = ("example_id", "label", "pred", "correct")


@dataclass(frozen=True)
class LayerData:
    """One layer's activations and the examples they belong to, row-aligned.

    Attributes
    ----------
    values : ndarray, shape (rows, features)
        float16 or float32 as recorded.
    ids : ndarray of str, shape (rows,)
    labels, pred : ndarray of int64, shape (rows,)
    correct : ndarray of bool, shape (rows,)
    """

    name: str
    values: np.ndarray
    ids: np.ndarray
    labels: np.ndarray
    pred: np.ndarray
    correct: np.ndarray

    def __len__(self) -> int:
        return len(self.values)


def list_column_to_numpy(column: pa.ChunkedArray | pa.Array, dtype: str) -> np.ndarray:
    """A list column of equal-length rows -> (rows, width) array of ``dtype``.

    The local engine writes fixed-size lists (read without copying a single-chunk column); Spark
    writes plain lists, and float16 layers as float32 values already rounded to float16, which
    ``dtype`` restores exactly.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    flat = column.flatten()  # honours the array's offset
    fixed = pa.types.is_fixed_size_list(column.type)
    width = column.type.list_size if fixed else len(flat) // max(len(column), 1)
    values = flat.to_numpy(zero_copy_only=False).reshape(len(column), width)
    return values.astype(dtype, copy=False)


class Recording:
    """A finished recording directory: its manifest, layers and parts."""

    def __init__(self, path: Path, verify: bool = False) -> None:
        self.path = Path(path)
        self.manifest = jobs.read_manifest(self.path, "record")
        self._check(verify)

    def _check(self, verify: bool) -> None:
        total = 0
        for part in self.manifest["parts"]:
            path = self.path / part["file"]
            if not path.is_file():
                raise AUError(
                    f"{path} is missing: the recording disagrees with its manifest; record it again"
                )
            if path.stat().st_size != part["bytes"]:
                raise AUError(
                    f"{path} has {path.stat().st_size} bytes, the manifest says {part['bytes']}; record it again"
                )
            rows = pq.ParquetFile(path).metadata.num_rows
            if rows != part["rows"]:
                raise AUError(f"{path} has {rows} rows, the manifest says {part['rows']}; record it again")
            if verify and sha256_file(path) != part["sha256"]:
                raise AUError(f"{path}: SHA-256 differs from the manifest; the part was changed or damaged")
            total += rows
        if total != self.manifest["rows"]:
            raise AUError(f"{self.path}: parts hold {total} rows, the manifest says {self.manifest['rows']}")

    @property
    def num_rows(self) -> int:
        return int(self.manifest["rows"])

    @property
    def layers(self) -> list[str]:
        return [layer["name"] for layer in self.manifest["layers"]]

    @property
    def files(self) -> list[Path]:
        """The part files in row order (e.g. for DuckDB, Polars or Spark)."""
        return [self.path / p["file"] for p in self.manifest["parts"]]

    def layer_info(self, name: str) -> dict:
        for layer in self.manifest["layers"]:
            if layer["name"] == name:
                return layer
        raise AUError(
            f"layer {name!r} was not recorded in {self.path}; recorded: {', '.join(self.layers) or 'none'}"
        )

    def _column(self, name: str) -> str:
        return "logits" if name == "logits" else self.layer_info(name)["column"]

    def _dtype(self, name: str) -> str:
        return "float32" if name == "logits" else self.manifest["dtype"]

    def ids(self) -> np.ndarray:
        """Every recorded example's id, in row order (only that column is read)."""
        parts = [
            pq.read_table(path, columns=["example_id"], memory_map=True).column(0) for path in self.files
        ]
        return np.concatenate([np.asarray(c.to_numpy(zero_copy_only=False)).astype(str) for c in parts])

    def iter_layer(self, name: str) -> Iterator[LayerData]:
        """One :class:`LayerData` per part file, in row order (constant memory over the recording)."""
        column = self._column(name)
        for path in self.files:
            table = pq.read_table(path, columns=[column, *_ROW_COLUMNS], memory_map=True)
            yield LayerData(
                name=name,
                values=list_column_to_numpy(table.column(column), self._dtype(name)),
                ids=np.asarray(table.column("example_id").to_numpy(zero_copy_only=False)).astype(str),
                labels=table.column("label").to_numpy(),
                pred=table.column("pred").to_numpy(),
                correct=table.column("correct").to_numpy(zero_copy_only=False),
            )

    def layer(self, name: str) -> LayerData:
        """All rows of one layer, ``values`` of shape (rows, features); ``"logits"`` gives the model's output."""
        chunks = list(self.iter_layer(name))
        if len(chunks) == 1:
            return chunks[0]
        return LayerData(
            name=name,
            values=np.concatenate([c.values for c in chunks]),
            ids=np.concatenate([c.ids for c in chunks]),
            labels=np.concatenate([c.labels for c in chunks]),
            pred=np.concatenate([c.pred for c in chunks]),
            correct=np.concatenate([c.correct for c in chunks]),
        )

    def __repr__(self) -> str:
        return f"Recording({str(self.path)!r}, rows={self.num_rows}, layers={self.layers})"


def open(path: Path | str, verify: bool = False) -> Recording:  # noqa: A001 - the API the project names
    """Open a finished recording directory; ``verify=True`` also checks every part's SHA-256."""
    return Recording(Path(path), verify=verify)
