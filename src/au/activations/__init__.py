"""Activations: record any named layers of any model to Parquet, streaming and resumable, and read them back.

>>> from au import activations
>>> activations.record(model, data, "acts/mnist-test", activations.RecordConfig(layers=("fc1",)))
>>> fc1 = activations.open("acts/mnist-test").layer("fc1")   # values (rows, 128), ids, labels, pred
"""

from au.activations.hooks import capture, pool_output, resolve_layers
from au.activations.reader import LayerData, Recording, open
from au.activations.recorder import RecordConfig, record
from au.activations.schema import LayerSpec, recording_schema, spark_schema_ddl

__all__ = [
    "LayerData",
    "LayerSpec",
    "RecordConfig",
    "Recording",
    "capture",
    "open",
    "pool_output",
    "record",
    "recording_schema",
    "resolve_layers",
    "spark_schema_ddl",
]
