"""What runs inside Spark's Python workers: the model, loaded once per worker, and the recorder.

A model reaches the workers in two pieces: its architecture, as a copy on PyTorch's ``meta``
device (no weights, a few kilobytes in the task closure), and its weights, as safetensors bytes in
one broadcast variable (sent to each executor once, not with every task). A worker builds the
model on first use and keeps it in :data:`_MODELS`, keyed by the weights' SHA-256; with
``spark.python.worker.reuse`` on, every later task of the job - and of later jobs with the same
weights - finds it there.

:func:`record_batches` is the body of ``mapInArrow``: Arrow batches of encoded images in, Arrow
batches of the activations table out, one batch of the forward pass per Arrow batch. It computes
each batch with :func:`au.activations.record_job.batch_columns`, the local engine's own code.
"""

from __future__ import annotations

import copy
import io
import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch
from torch import nn

from au.activations.hooks import capture
from au.activations.reader import list_column_to_numpy
from au.activations.record_job import batch_columns
from au.activations.schema import LayerSpec
from au.allocator import tune_malloc
from au.data.images_table import decode_image, example_ids

_MODELS: dict[str, nn.Module] = {}


def one_core() -> None:
    """Set up a Spark task's Python worker as ``au`` sets up its own process, for the one core Spark gives a task.

    One torch thread, and glibc's malloc thresholds raised (:mod:`au.allocator`, once per process):
    the CLI raises them in its own process, and a worker that kept the defaults paid page faults
    for every batch's activation buffers - recording MNIST with ``mnist-cnn``, its forward passes
    took 1.7x as long.
    """
    torch.set_num_threads(1)
    tune_malloc()


@dataclass(frozen=True)
class ShippedModel:
    """A model as the workers receive it: ``skeleton`` (meta device), the broadcast weights, their SHA-256."""

    skeleton: nn.Module
    weights: object  # pyspark Broadcast of safetensors bytes
    sha256: str

    def load(self) -> nn.Module:
        """The model with its weights, built once per worker process and then reused."""
        model = _MODELS.get(self.sha256)
        if model is None:
            from safetensors.torch import load

            model = copy.deepcopy(self.skeleton).to_empty(device="cpu")
            params = dict(model.named_parameters())
            with torch.no_grad():
                for name, tensor in load(self.weights.value).items():
                    (params[name] if name in params else model.get_buffer(name)).copy_(tensor)
            model.eval()
            _MODELS.clear()  # one model per worker: a new job's weights replace the last one's
            _MODELS[self.sha256] = model
        return model


def ship(spark, model: nn.Module, sha256: str) -> ShippedModel:
    """Broadcast ``model``'s weights (parameters and every buffer) once; its architecture goes with the tasks."""
    from safetensors.torch import save

    tensors = {
        name: t.detach().contiguous().clone()
        for name, t in itertools.chain(model.named_parameters(), model.named_buffers())
    }
    skeleton = copy.deepcopy(model).to("meta")
    return ShippedModel(skeleton, spark.sparkContext.broadcast(save(tensors)), sha256)


def list_array(values: np.ndarray) -> pa.ListArray:
    """(B, F) values -> a list<float32> column (Spark has no fixed-size lists and no float16)."""
    rows, width = values.shape
    offsets = pa.array(np.arange(rows + 1, dtype=np.int32) * width, type=pa.int32())
    return pa.ListArray.from_arrays(offsets, pa.array(values.reshape(-1).astype(np.float32, copy=False)))


def _ids(table: pa.Table, labels: np.ndarray, split: str, classes: tuple[str, ...]) -> np.ndarray:
    """The rows' example ids by the images table's one rule, each row named under its own split."""
    names = table.column_names
    splits = np.asarray(table.column("split").to_pylist() if "split" in names else [split] * len(labels))
    ids = np.empty(len(labels), dtype=object)
    for value in np.unique(splits):
        rows = np.flatnonzero(splits == value)
        ids[rows] = example_ids(
            str(value),
            labels[rows],
            classes,
            source_index=table.column("source_index").take(rows).to_pylist()
            if "source_index" in names
            else None,
            example_id=table.column("example_id").take(rows).to_pylist() if "example_id" in names else None,
        )
    return ids.astype(str)


def record_batches(
    batches: Iterator[pa.RecordBatch],
    *,
    model: ShippedModel,
    specs: list[LayerSpec],
    pool: str,
    dtype: str,
    channels: int,
    classes: tuple[str, ...],
    constants: dict[str, str],
    schema: pa.Schema,
) -> Iterator[pa.RecordBatch]:
    """``mapInArrow``'s function: each batch of images (column ``image``) -> that batch's activation rows."""
    one_core()
    net = model.load()
    torch_dtype = torch.float16 if dtype == "float16" else torch.float32
    hooked = [s.name for s in specs if s.column != "logits"]
    with torch.inference_mode(), capture(net, hooked, pool) as outputs:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            table = pa.Table.from_batches([batch])
            images = np.stack(
                [decode_image(b, channels, "images table") for b in table.column("image").to_pylist()]
            )
            labels = (
                table.column("label").fill_null(-1).to_numpy().astype(np.int64)
                if "label" in table.column_names
                else np.full(batch.num_rows, -1, dtype=np.int64)
            )
            ids = _ids(table, labels, constants["split"], classes)
            columns = batch_columns(net, images, labels, ids, specs, outputs, torch_dtype)
            arrays = []
            for field in schema:
                if field.name in constants:
                    arrays.append(pa.repeat(pa.scalar(constants[field.name]), batch.num_rows))
                elif pa.types.is_list(field.type):
                    arrays.append(list_array(np.asarray(columns[field.name])))
                else:
                    arrays.append(pa.array(columns[field.name], type=field.type))
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)


# ---------------------------------------------------------------------------------------- scoring
# The detectors' own methods (au.detectors.base: scaling out) run on each worker's chunk of rows;
# these functions only move Arrow columns in and out.


def _inputs(
    table: pa.Table, detector, column: str
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(what ``detector`` consumes, labels when it needs them, predictions when it needs them) of ``table``."""
    x = list_column_to_numpy(table.column(column), "float32")
    labels = table.column("label").to_numpy() if detector.consumes.labels else None
    pred = table.column("pred").to_numpy() if detector.consumes.predictions else None
    return x, labels, pred


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def from_npy(data: bytes) -> np.ndarray:
    """An array written by a worker (``np.save`` bytes; never a pickle)."""
    return np.load(io.BytesIO(data), allow_pickle=False)


STATISTICS_SCHEMA = "key STRING, value BINARY"


def statistics_batches(
    batches: Iterator[pa.RecordBatch], *, detector, step: int, column: str, fit_rows: np.ndarray
):
    """``mapInArrow``: one partition's statistics for pass ``step``, combined over its batches, as (key, npy) rows.

    ``fit_rows``: the recording positions of the training rows fitted on, ascending; a row's
    position among them is what the detector sees as its row number.
    """
    totals: dict[str, np.ndarray] | None = None
    for batch in batches:
        if batch.num_rows:
            table = pa.Table.from_batches([batch])
            x, labels, _ = _inputs(table, detector, column)
            rows = np.searchsorted(fit_rows, table.column("_row").to_numpy())
            chunk = detector.chunk_statistics(x, labels, step, rows)
            totals = chunk if totals is None else detector.combine_statistics(totals, chunk)
    if totals:
        yield _statistics_batch(totals)


def combine_statistics_batches(batches: Iterator[pa.RecordBatch], *, detector):
    """``mapInArrow``: a partition's (key, npy) rows of statistics, combined key by key, as one row per key."""
    totals: dict[str, np.ndarray] = {}
    for batch in batches:
        for key, value in zip(
            batch.column("key").to_pylist(), batch.column("value").to_pylist(), strict=True
        ):
            totals = detector.combine_statistics(totals, {key: from_npy(value)})
    if totals:
        yield _statistics_batch(totals)


def _statistics_batch(totals: dict[str, np.ndarray]) -> pa.RecordBatch:
    keys = list(totals)
    return pa.RecordBatch.from_pydict(
        {"key": keys, "value": [_npy(totals[k]) for k in keys]},
        schema=pa.schema([("key", pa.string()), ("value", pa.binary())]),
    )


SCORES_SCHEMA = "_set INT, _row BIGINT, score DOUBLE"
_SCORES = pa.schema([("_set", pa.int32()), ("_row", pa.int64()), ("score", pa.float64())])


def score_batches(batches: Iterator[pa.RecordBatch], *, detector, column: str):
    """``mapInArrow``: each row's score by a fitted ``"rows"`` or ``"statistics"`` detector."""
    for batch in batches:
        if batch.num_rows:
            table = pa.Table.from_batches([batch])
            x, _, pred = _inputs(table, detector, column)
            scores = pa.array(detector.score_samples(x, pred=pred))
            yield pa.RecordBatch.from_arrays(
                [batch.column("_set"), batch.column("_row"), scores], schema=_SCORES
            )


PARTIAL_SCHEMA = "_set INT, _row BIGINT, _qb INT, partial BINARY"


def partial_groups(detector, column: str, fit_rows: np.ndarray):
    """``cogroup(...).applyInArrow``'s function: one block of queries against one block of training rows.

    (A closure with type hints: pyspark infers the kind of UDF from them.)
    """

    def partial(reference: pa.Table, queries: pa.Table) -> pa.Table:
        return _partial(reference, queries, detector, column, fit_rows)

    return partial


def _partial(reference: pa.Table, queries: pa.Table, detector, column: str, fit_rows: np.ndarray) -> pa.Table:
    empty = pa.table({"_set": pa.array([], pa.int32()), "_row": pa.array([], pa.int64()),
                      "_qb": pa.array([], pa.int32()), "partial": pa.array([], pa.binary())})  # fmt: skip
    if reference.num_rows == 0 or queries.num_rows == 0:
        return empty
    import faiss

    one_core()
    faiss.omp_set_num_threads(1)  # and a faiss index is one index per seed and thread count
    ref, _, _ = _inputs(reference, detector, column)
    x, _, _ = _inputs(queries, detector, column)
    rows = np.searchsorted(fit_rows, reference.column("_row").to_numpy())
    partial = detector.reference_partial(ref, x, rows)  # (n, m)
    return pa.table({"_set": queries.column("_set"), "_row": queries.column("_row"),
                     "_qb": queries.column("_qb"), "partial": [_npy(p) for p in partial]})  # fmt: skip


def merge_groups(detector):
    """``groupBy("_qb").applyInArrow``'s function: every block's partial results of one query block, merged."""

    def merge(partials: pa.Table) -> pa.Table:
        return _merge(partials, detector)

    return merge


def _merge(partials: pa.Table, detector) -> pa.Table:
    keys = np.stack([partials.column("_set").to_numpy(), partials.column("_row").to_numpy()], axis=1)
    order = np.lexsort((keys[:, 1], keys[:, 0]))
    queries, first, counts = np.unique(keys[order], axis=0, return_index=True, return_counts=True)
    if len(set(counts.tolist())) > 1:
        raise RuntimeError("a query is missing a block's partial result")
    blob = partials.column("partial").to_pylist()
    stacked = np.stack([from_npy(blob[i]) for i in order]).reshape(len(queries), counts[0], -1)
    scores = detector.merge_partials(stacked.transpose(1, 0, 2))
    return pa.table({"_set": pa.array(queries[:, 0], pa.int32()), "_row": pa.array(queries[:, 1], pa.int64()),
                     "score": pa.array(np.asarray(scores, dtype=np.float64))})  # fmt: skip
