"""The sets ``au score`` fits on and scores: recorded once, read back as the detectors' inputs.

Each set's layer features and logits are recorded (an ``au record`` job under the scores
directory's ``acts/``), so re-running a scoring reuses them; the images come from the dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from au import activations
from au.activations.config import RecordConfig
from au.activations.record_job import record
from au.data import ImageDataset
from au.detectors.inputs import Inputs
from au.errors import AUError


@dataclass
class ScoredSet:
    """One set's rows - name, split, ids, labels, correctness - and the detectors' inputs for them."""

    name: str
    split: str
    is_ood: bool
    ids: np.ndarray
    labels: np.ndarray
    correct: np.ndarray
    inputs: Inputs
    recording: Path | None = None

    def __len__(self) -> int:
        return len(self.ids)


def check_shape(model: nn.Module, dataset: ImageDataset, role: str) -> None:
    """``dataset``'s images have the model's input shape, or one line saying how to get them."""
    want = tuple(getattr(model, "input_shape", dataset.input_shape))
    if tuple(dataset.input_shape) != want:
        c, h, w = want
        raise AUError(
            f"{role} set {dataset.name!r} has images of shape {dataset.image_shape} (H, W, C) but the model "
            f"takes {h}x{w}x{c}; choose a dataset of that shape (noise sets take shape={h}x{w}x{c})"
        )


def sample(dataset: ImageDataset, limit: int | None, seed: int) -> ImageDataset:
    """At most ``limit`` examples, drawn at random with ``seed`` and kept in dataset order."""
    if limit is None or limit >= len(dataset):
        return dataset
    idx = np.sort(np.random.default_rng(seed).choice(len(dataset), limit, replace=False))
    return dataset.subset(idx)


def record_set(
    model: nn.Module,
    dataset: ImageDataset,
    out: Path,
    layer: str,
    is_ood: bool,
    batch_size: int,
    model_record: dict,
) -> ScoredSet:
    """Record ``layer`` and the logits of ``dataset`` into ``out`` (or reuse that recording); read them back.

    ``model_record``: the model's ``name``, ``weights_sha256`` and ``run``, for the recording's manifest.
    """
    layers = [layer] if layer == "logits" else [layer, "logits"]
    record(
        model,
        dataset,
        out,
        RecordConfig(layers=tuple(layers), pool="avg", dtype="float32", batch_size=batch_size),
        model_name=model_record["name"],
        weights_sha256=model_record["weights_sha256"],
        run_dir=model_record["run"],
    )
    feats, logits = _read(activations.open(out), layer)
    if not np.array_equal(feats.ids, dataset.ids):
        raise AUError(f"recording {out} does not hold the examples of {dataset.name!r} in order")
    return _scored_set(dataset, is_ood, feats, logits, slice(None), dataset.images, Path(out))


def _read(recording: activations.Recording, layer: str) -> tuple:
    """(``layer``'s rows, the logits' rows) of a recording."""
    feats = recording.layer(layer)
    return feats, feats if layer == "logits" else recording.layer("logits")


def _scored_set(dataset, is_ood: bool, feats, logits, rows, images, recording: Path) -> ScoredSet:
    """The ``rows`` of a recorded layer and its logits as one set's detector inputs (features as float32)."""
    return ScoredSet(
        name=dataset.name,
        split=dataset.split,
        is_ood=is_ood,
        ids=feats.ids[rows],
        labels=feats.labels[rows],
        correct=feats.correct[rows] & ~is_ood,
        inputs=Inputs(
            logits=np.asarray(logits.values[rows], dtype=np.float32),
            features=np.asarray(feats.values[rows], dtype=np.float32),
            images=images,
            pred=feats.pred[rows],
            labels=feats.labels[rows],
        ),
        recording=recording,
    )


def recorded_training_set(
    acts: Path, layer: str, train: ImageDataset, weights: str, exclude: np.ndarray, limit: int | None
) -> ScoredSet:
    """The training rows of a user's recording (``--acts``), minus the ``exclude`` ids, at most ``limit``.

    Checked against the run (same weights), the split (the training split of ``train``'s dataset)
    and the layer; the images are ``train``'s rows of the same ids.
    """
    recording = activations.open(acts)
    m = recording.manifest
    if m["model"].get("weights_sha256") != weights:
        raise AUError(
            f"--acts {acts} was recorded with other weights than this run's; record it from this run"
        )
    if m["dataset"]["split"] != "train" or m["dataset"]["spec"] != train.name:
        raise AUError(
            f"--acts {acts} holds {m['dataset']['spec']!r} ({m['dataset']['split']}), not the training split of "
            f"{train.name!r}; record the training split"
        )
    if layer != "logits" and layer not in recording.layers:
        raise AUError(f"--acts {acts} has no layer {layer!r}; it has {', '.join(recording.layers)}")
    feats, logits = _read(recording, layer)
    keep = np.flatnonzero(~np.isin(feats.ids, exclude))[:limit]
    position = {example_id: i for i, example_id in enumerate(train.ids)}
    missing = [i for i in feats.ids[keep] if i not in position]
    if missing:
        raise AUError(f"--acts {acts} holds examples that are not in {train.name!r} (e.g. {missing[0]!r})")
    images = train.images[np.array([position[i] for i in feats.ids[keep]], dtype=np.int64)]
    return _scored_set(train, False, feats, logits, keep, images, Path(acts))
