"""The activations table's schema, declared once: fixed columns, then one fixed-size list per layer.

One row per example::

    example_id  string                       the dataset's stable id
    dataset     string                       the dataset spec
    split       string                       train / test / all
    label       int64                        -1 when the dataset has no labels
    pred        int64                        argmax of the logits
    correct     bool                         pred == label (false when unlabelled)
    logits      fixed_size_list<float32>[K]  the model's output
    <layer>     fixed_size_list<float16 or float32>[F]   one column per recorded layer, named after it

A recorded layer named ``logits`` is the ``logits`` column itself (it must be the model's output).
The schema is checked on every part written; :func:`au.tables.spark_schema_ddl` gives the same
table as a Spark DDL string.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from au.activations.config import POOLS
from au.errors import AUError

FIXED_COLUMNS = ("example_id", "dataset", "split", "label", "pred", "correct", "logits")
DTYPES = {"float16": pa.float16(), "float32": pa.float32()}


@dataclass(frozen=True)
class LayerSpec:
    """A recorded layer: its name, the shape its module outputs (without the batch axis), and how it is stored."""

    name: str
    module: str
    shape: tuple[int, ...]
    pool: str
    features: int

    @property
    def column(self) -> str:
        return self.name

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "column": self.column,
            "module": self.module,
            "shape": list(self.shape),
            "pool": self.pool,
            "features": self.features,
        }


def pooled_features(shape: tuple[int, ...], pool: str) -> int:
    """Features per example after pooling: channels for conv maps under avg/max, else everything."""
    if pool not in POOLS:
        raise AUError(f"--pool must be one of {', '.join(POOLS)}, got {pool!r}")
    if len(shape) >= 2 and pool != "none":
        return int(shape[0])
    n = 1
    for s in shape:
        n *= int(s)
    return n


def recording_schema(layers: list[LayerSpec], num_classes: int, dtype: str) -> pa.Schema:
    if dtype not in DTYPES:
        raise AUError(f"--dtype must be float32 or float16, got {dtype!r}")
    fields = [
        pa.field("example_id", pa.string(), nullable=False),
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("label", pa.int64(), nullable=False),
        pa.field("pred", pa.int64(), nullable=False),
        pa.field("correct", pa.bool_(), nullable=False),
        pa.field(
            "logits", pa.list_(pa.field("element", pa.float32(), nullable=False), num_classes), nullable=False
        ),
    ]
    for layer in layers:
        if layer.column == "logits":
            continue
        if layer.column in FIXED_COLUMNS:
            raise AUError(
                f"layer {layer.name!r} has the name of a fixed column; rename the module to record it"
            )
        element = pa.field("element", DTYPES[dtype], nullable=False)
        fields.append(pa.field(layer.column, pa.list_(element, layer.features), nullable=False))
    return pa.schema(fields)
