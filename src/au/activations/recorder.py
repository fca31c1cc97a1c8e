"""Record layer activations to a directory of Parquet parts, streaming, resumable, manifest last.

Layout of a recording directory::

    part-00000.parquet ...   contiguous runs of rows; each part holds whole batches
    recording-incomplete.json  the recording's identity, while it is under way
    manifest.json            written last: model, data, layers, dtype, rows, and each part's rows and SHA-256

Batches go to disk as they are computed: a part is flushed when its buffered values pass
``part_bytes`` or its rows pass ``part_rows``, written under a temporary name and renamed when
complete. A recording killed at any
moment and re-run with the same arguments keeps its complete parts, continues at the next batch
(batches are the same as in an uninterrupted run, so the values are identical) and ends with
exactly one row per example.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch import nn

from au import progress
from au.activations.hooks import capture, resolve_layers
from au.activations.schema import LayerSpec, pooled_features, recording_schema
from au.data.dataset import ImageDataset, ids_sha256, to_tensor
from au.errors import AUError
from au.manifest import check_job_dir, environment, job_key, now, write_json
from au.models.layers import check_model_input, eval_mode, layer_output_shapes
from au.models.weights import model_identity, sha256_file, state_sha256

MANIFEST = "manifest.json"
INCOMPLETE = "recording-incomplete.json"
FORMAT = "au-activations/1"
PART_BYTES = 64 << 20
PART_ROWS = 65536


@dataclass(frozen=True)
class RecordConfig:
    """How to record: which layers, pooled how, stored in which dtype, in batches of what size."""

    layers: tuple[str, ...] | str = "all"
    pool: str = "avg"
    dtype: str = "float16"
    batch_size: int = 256
    limit: int | None = None
    part_bytes: int = PART_BYTES
    part_rows: int = PART_ROWS

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise AUError(f"batch size must be at least 1, got {self.batch_size}")
        if self.limit is not None and self.limit < 1:
            raise AUError(f"--limit must be at least 1, got {self.limit}")


def _part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def _existing_parts(out: Path) -> list[dict]:
    """Complete parts from an interrupted recording, in order and contiguous from row 0."""
    parts, expected_start = [], 0
    index = 0
    while (out / _part_name(index)).is_file():
        path = out / _part_name(index)
        try:
            meta = pq.ParquetFile(path).metadata
            start = int(meta.metadata[b"au.start_row"])
        except Exception:  # a part that cannot be read is redone
            break
        if start != expected_start:
            break
        parts.append({"file": path.name, "rows": meta.num_rows, "start_row": start})
        expected_start += meta.num_rows
        index += 1
    for stray in out.glob("part-*.parquet"):  # parts after a gap or damage are redone
        if stray.name not in {p["file"] for p in parts}:
            stray.unlink()
    for tmp in out.glob(".part-*.tmp"):
        tmp.unlink()
    return parts


class _PartWriter:
    """Buffers batches and writes them as parts of at most ``part_bytes`` of values or ``part_rows`` rows.

    Parts are written in the calling thread: a background writer was measured slower on 2 cores
    (recording 10,000 pooled MNIST rows: 1.11x bare inference against 1.07x), as its Python work
    contends for the GIL with the forward passes and the cores are busy anyway. ``constants`` are
    columns with one value for every row (dataset, split).
    """

    def __init__(
        self,
        out: Path,
        schema: pa.Schema,
        part_bytes: int,
        part_rows: int,
        parts: list[dict],
        constants: dict,
    ) -> None:
        self.out, self.schema, self.part_bytes, self.part_rows = out, schema, part_bytes, part_rows
        self.constants = constants
        self.parts = parts
        self.next_start = sum(p["rows"] for p in parts)
        self.buffer: list[dict[str, np.ndarray]] = []
        self.buffered_bytes = self.buffered_rows = 0

    def add(self, columns: dict[str, np.ndarray]) -> None:
        self.buffer.append(columns)
        self.buffered_bytes += sum(v.nbytes for v in columns.values())
        self.buffered_rows += len(columns["label"])
        if self.buffered_bytes >= self.part_bytes or self.buffered_rows >= self.part_rows:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        buffer, start = self.buffer, self.next_start
        rows = sum(len(b["label"]) for b in buffer)
        part = {"file": _part_name(len(self.parts)), "rows": rows, "start_row": start}
        self.parts.append(part)
        self.next_start += rows
        self.buffer, self.buffered_bytes, self.buffered_rows = [], 0, 0
        self._write(buffer, part)

    def _write(self, buffer: list[dict[str, np.ndarray]], part: dict) -> None:
        """Encode, write under a temporary name, rename; then note the part's size and SHA-256."""
        start, rows, name = part["start_row"], part["rows"], part["file"]
        arrays = []
        for field in self.schema:
            if field.name in self.constants:
                arrays.append(pa.repeat(pa.scalar(self.constants[field.name], field.type), rows))
                continue
            values = np.concatenate([b[field.name] for b in buffer])
            if pa.types.is_fixed_size_list(field.type):
                flat = pa.array(values.reshape(-1), type=field.type.value_type)
                arrays.append(pa.FixedSizeListArray.from_arrays(flat, type=field.type))
            else:
                arrays.append(pa.array(values, type=field.type))
        table = pa.Table.from_arrays(arrays, schema=self.schema.with_metadata({"au.start_row": str(start)}))
        tmp = self.out / f".{name}.tmp"
        pq.write_table(
            table,
            tmp,
            compression="zstd",
            compression_level=1,
            use_dictionary=list(self.constants),  # dictionary-encoding floats would only cost time
            write_statistics=[
                "example_id",
                "label",
                "pred",
                "correct",
            ],  # min/max of a list column is useless
        )
        tmp.replace(self.out / name)
        part.update(bytes=(self.out / name).stat().st_size, sha256=sha256_file(self.out / name))


def layer_specs(
    model: nn.Module, input_shape: tuple[int, int, int], layers: list[str], pool: str
) -> list[LayerSpec]:
    shapes = layer_output_shapes(model, input_shape)
    return [
        LayerSpec(
            name=name,
            module=type(model.get_submodule(name)).__name__,
            shape=shapes[name],
            pool=pool if len(shapes[name]) >= 2 else "none",
            features=pooled_features(shapes[name], pool),
        )
        for name in layers
    ]


def record(
    model: nn.Module,
    data: ImageDataset,
    out: Path,
    config: RecordConfig = RecordConfig(),
    *,
    model_name: str | None = None,
    weights_sha256: str | None = None,
    run_dir: str | None = None,
    show_progress: bool = True,
) -> dict:
    """Record ``config.layers`` of ``model`` on ``data`` into the directory ``out``; return the manifest.

    Parameters
    ----------
    model : nn.Module
        Takes float32 (N, C, H, W) in [0, 1]; left in the mode it was found in, with no hooks.
    data : ImageDataset
        The examples to record (the first ``config.limit`` of them when a limit is set).
    out : Path
        The recording directory; a re-run with the same arguments resumes or returns the finished one.
    model_name, weights_sha256, run_dir : str, optional
        Recorded in the manifest (``au record`` fills them from the run directory).
    """
    out = Path(out)
    n = min(len(data), config.limit) if config.limit else len(data)
    if n == 0:
        raise AUError(f"dataset {data.name!r} ({data.split}) has no examples to record")
    if tuple(data.input_shape) != tuple(getattr(model, "input_shape", data.input_shape)):
        raise AUError(
            f"dataset {data.name!r} has images of shape {data.image_shape} (H, W, C) but the model takes "
            f"{tuple(model.input_shape)} (C, H, W)"
        )
    layers = resolve_layers(model, config.layers)
    specs = layer_specs(model, data.input_shape, layers, config.pool)
    ids_sha = ids_sha256(data.ids[:n])
    identity = {
        "model": model_name or model_identity(model)["au.model"],
        "weights_sha256": weights_sha256 or state_sha256(model),
        "dataset": data.name,
        "split": data.split,
        "rows": n,
        "data_sha256": data.fingerprint() if n == len(data) else ids_sha,
        "layers": [s.to_dict() for s in specs],
        "dtype": config.dtype,
        "batch_size": config.batch_size,
    }
    key = job_key(identity)
    finished = check_job_dir(
        out,
        key,
        MANIFEST,
        INCOMPLETE,
        "recording",
        lambda m: (
            f"recording (model {m.get('model', {}).get('name')!r}, data {m.get('dataset', {}).get('spec')!r})"
        ),
    )
    if finished is not None:
        progress.note(f"{out}: this recording is already complete; nothing to do")
        return finished

    out.mkdir(parents=True, exist_ok=True)
    write_json(out / INCOMPLETE, {"job_key": key, "identity": identity, "started": now()})
    num_outputs = check_model_input(model, data)
    schema = recording_schema(specs, num_outputs, config.dtype)
    torch_dtype = torch.float16 if config.dtype == "float16" else torch.float32
    constants = {"dataset": data.name, "split": data.split}
    writer = _PartWriter(out, schema, config.part_bytes, config.part_rows, _existing_parts(out), constants)
    start = writer.next_start
    hooked = [s.name for s in specs if s.column != "logits"]
    check_logits = any(s.column == "logits" for s in specs)
    images, labels = data.images, data.labels
    started = time.perf_counter()
    with (
        eval_mode(model),
        torch.inference_mode(),
        capture(model, hooked + (["logits"] if check_logits else []), config.pool) as outputs,
        progress.bar(n, f"record {data.split}", "img", enabled=show_progress, initial=start) as bar,
    ):
        for lo in range(start, n, config.batch_size):
            hi = min(lo + config.batch_size, n)
            logits = model(to_tensor(images[lo:hi])).float()  # (B, K)
            if check_logits and not torch.equal(outputs["logits"].reshape(logits.shape), logits):
                raise AUError("layer 'logits' is not the model's output; rename it to record it")
            pred = logits.argmax(dim=1).numpy()
            label = labels[lo:hi]
            columns = {
                "example_id": data.ids[lo:hi],
                "label": label,
                "pred": pred,
                "correct": (pred == label) & (label >= 0),
                "logits": logits.numpy(),
            }
            for spec in specs:
                if spec.column != "logits":
                    columns[spec.column] = outputs[spec.name].to(torch_dtype).numpy()  # (B, F)
            writer.add(columns)
            bar.update(hi - lo)
        writer.flush()
    parts = []
    for part in writer.parts:  # parts kept from an interrupted run have no size and checksum yet
        path = out / part["file"]
        if "sha256" not in part:
            part = {**part, "bytes": path.stat().st_size, "sha256": sha256_file(path)}
        parts.append(part)
    manifest = {
        "format": FORMAT,
        "job_key": key,
        "model": {"name": identity["model"], "weights_sha256": identity["weights_sha256"], "run": run_dir},
        "dataset": {
            "spec": data.name,
            "split": data.split,
            "rows": n,
            "data_sha256": identity["data_sha256"],
        },
        "layers": identity["layers"],
        "num_classes": num_outputs,
        "dtype": config.dtype,
        "pool": config.pool,
        "batch_size": config.batch_size,
        "rows": n,
        "parts": parts,
        "schema": schema.to_string(show_schema_metadata=False),
        "resumed_from_row": start,
        "seconds": time.perf_counter() - started,
        "environment": environment(),
        "created": now(),
    }
    write_json(out / MANIFEST, manifest)
    (out / INCOMPLETE).unlink(missing_ok=True)
    return manifest
