"""``au record``: record layer activations to a directory of Parquet parts, streaming, resumable.

Layout of a recording directory::

    part-00000.parquet ...   contiguous runs of rows; each part holds whole batches (au.activations.parts)
    incomplete.json          the job's identity, while it is under way (au.jobs)
    manifest.json            written last: model, data, layers, dtype, rows, and each part's rows and SHA-256

Batches go to disk as they are computed: a part is flushed when its buffered values pass
``part_bytes`` or its rows pass ``part_rows``. A recording killed at any moment and re-run with the
same arguments keeps its complete parts, continues at the next batch (batches are the same as in an
uninterrupted run, so the values are identical) and ends with exactly one row per example.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from au import jobs, progress
from au.activations.config import RecordConfig
from au.activations.hooks import capture, resolve_layers
from au.activations.parts import PartWriter, existing_parts, with_checksums
from au.activations.schema import LayerSpec, pooled_features, recording_schema
from au.data.dataset import ImageDataset, ids_sha256, to_tensor
from au.errors import AUError
from au.models.layers import check_model_input, eval_mode, layer_output_shapes
from au.models.weights import model_identity, state_sha256


def layer_specs(
    model: nn.Module, input_shape: tuple[int, int, int], layers: list[str], pool: str
) -> list[LayerSpec]:
    """What each of ``layers`` outputs (without the batch axis) and how it is stored under ``pool``."""
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
    n, specs, num_outputs, schema = check_record_inputs(model, data, config)
    identity = {
        "model": model_name or model_identity(model)["au.model"],
        "weights_sha256": weights_sha256 or state_sha256(model),
        **_data_identity(data, n),
        "layers": [s.to_dict() for s in specs],
        "dtype": config.dtype,
        "batch_size": config.batch_size,
    }
    label = f"recording of {identity['model']} on {data.name} ({data.split})"
    claim = jobs.claim(jobs.Job("record", out, identity, label))
    if claim.done:
        progress.note(f"{out}: this recording is already complete; nothing to do")
        return claim.manifest

    writer = PartWriter(
        claim.out,
        schema,
        config.part_bytes,
        config.part_rows,
        existing_parts(claim.out),
        {"dataset": data.name, "split": data.split},
    )
    start, started = writer.next_start, time.perf_counter()
    _record_batches(model, data, n, specs, config, writer, show_progress)
    record_ = manifest_record(
        identity,
        run_dir,
        num_outputs,
        config,
        with_checksums(claim.out, writer.parts),
        schema,
        resumed_from_row=start,
        seconds=time.perf_counter() - started,
    )
    return claim.finish(record_)


def manifest_record(
    identity: dict,
    run_dir: str | None,
    num_outputs: int,
    config: RecordConfig,
    parts: list[dict],
    schema,
    **extra,
) -> dict:
    """A recording's manifest (beside the protocol's own fields), whichever engine wrote its parts."""
    return {
        "model": {"name": identity["model"], "weights_sha256": identity["weights_sha256"], "run": run_dir},
        "dataset": {
            "spec": identity["dataset"],
            "split": identity["split"],
            "rows": identity["rows"],
            "data_sha256": identity["data_sha256"],
        },
        "layers": identity["layers"],
        "num_classes": num_outputs,
        "dtype": config.dtype,
        "pool": config.pool,
        "batch_size": config.batch_size,
        "rows": identity["rows"],
        "parts": parts,
        "schema": schema.to_string(show_schema_metadata=False),
        **extra,
    }


def check_record_inputs(model: nn.Module, data: ImageDataset, config: RecordConfig):
    """(rows to record, layer specs, the model's outputs, the table's schema), or one line saying what is wrong."""
    n = min(len(data), config.limit) if config.limit else len(data)
    if n == 0:
        raise AUError(f"dataset {data.name!r} ({data.split}) has no examples to record")
    if tuple(data.input_shape) != tuple(getattr(model, "input_shape", data.input_shape)):
        raise AUError(
            f"dataset {data.name!r} has images of shape {data.image_shape} (H, W, C) but the model takes "
            f"{tuple(model.input_shape)} (C, H, W)"
        )
    specs = layer_specs(model, data.input_shape, resolve_layers(model, config.layers), config.pool)
    num_outputs = check_model_input(model, data)
    schema = recording_schema(specs, num_outputs, config.dtype)
    if any(s.column == "logits" for s in specs):
        _check_logits_layer(model, data)
    return n, specs, num_outputs, schema


def _data_identity(data: ImageDataset, n: int) -> dict:
    """Which examples are recorded: the dataset, its split and the hash of its first ``n`` examples."""
    sha = data.fingerprint() if n == len(data) else ids_sha256(data.ids[:n])
    return {"dataset": data.name, "split": data.split, "rows": n, "data_sha256": sha}


def _check_logits_layer(model: nn.Module, data: ImageDataset) -> None:
    """A layer named ``logits`` is recorded as the logits column: it must be the model's output."""
    with eval_mode(model), torch.inference_mode(), capture(model, ["logits"], "none") as outputs:
        logits = model(to_tensor(data.images[:1])).float()
        if not torch.equal(outputs["logits"].reshape(logits.shape).float(), logits):
            raise AUError("layer 'logits' is not the model's output; rename it to record it")


def _record_batches(
    model: nn.Module,
    data: ImageDataset,
    n: int,
    specs: list[LayerSpec],
    config: RecordConfig,
    writer: PartWriter,
    show_progress: bool,
) -> None:
    """Forward the examples from ``writer.next_start`` to ``n`` in batches; hand each batch's columns to ``writer``."""
    torch_dtype = torch.float16 if config.dtype == "float16" else torch.float32
    hooked = [s.name for s in specs if s.column != "logits"]
    start = writer.next_start
    with (
        eval_mode(model),
        torch.inference_mode(),
        capture(model, hooked, config.pool) as outputs,
        progress.bar(n, f"record {data.split}", "img", enabled=show_progress, initial=start) as bar,
    ):
        for lo in range(start, n, config.batch_size):
            hi = min(lo + config.batch_size, n)
            columns = batch_columns(
                model, data.images[lo:hi], data.labels[lo:hi], data.ids[lo:hi], specs, outputs, torch_dtype
            )
            writer.add(columns)
            bar.update(hi - lo)
        writer.flush()


def batch_columns(
    model: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    ids: np.ndarray,
    specs: list[LayerSpec],
    outputs: dict[str, torch.Tensor],
    torch_dtype: torch.dtype,
) -> dict[str, np.ndarray]:
    """One batch's columns of the activations table (every engine's): forward ``images`` under ``capture``.

    ``outputs`` is the dict :func:`au.activations.hooks.capture` fills; layer columns are (B, F) in ``torch_dtype``.
    The columns are copies that own their memory. A buffered view of a tensor pins that tensor's
    heap block among the forward passes' freed activation buffers, so the heap cannot shrink:
    buffering views of 60,000 MNIST rows of ``fc1`` and the logits kept 2.2 GB resident.
    """
    logits = model(to_tensor(images)).float()  # (B, K)
    pred = logits.argmax(dim=1).numpy().copy()
    columns = {
        "example_id": ids,
        "label": labels,
        "pred": pred,
        "correct": (pred == labels) & (labels >= 0),
        "logits": logits.numpy().copy(),
    }
    for spec in specs:
        if spec.column != "logits":
            columns[spec.column] = outputs[spec.name].to(torch_dtype).numpy().copy()  # (B, F)
    return columns
