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
    ident: dict,
) -> ScoredSet:
    """Record ``layer`` and the logits of ``dataset`` into ``out`` (or reuse that recording); read them back."""
    layers = [layer] if layer == "logits" else [layer, "logits"]
    record(
        model,
        dataset,
        out,
        RecordConfig(layers=tuple(layers), pool="avg", dtype="float32", batch_size=batch_size),
        model_name=ident.get("model"),
        weights_sha256=ident["weights_sha256"],
        run_dir=ident.get("run"),
    )
    recording = activations.open(out)
    feats = recording.layer(layer)
    logits = feats if layer == "logits" else recording.layer("logits")
    if not np.array_equal(feats.ids, dataset.ids):
        raise AUError(f"recording {out} does not hold the examples of {dataset.name!r} in order")
    return ScoredSet(
        name=dataset.name,
        split=dataset.split,
        is_ood=is_ood,
        ids=feats.ids,
        labels=feats.labels,
        correct=feats.correct & ~is_ood,
        inputs=Inputs(
            logits=np.asarray(logits.values, dtype=np.float32),
            features=np.asarray(feats.values, dtype=np.float32),
            images=dataset.images,
            pred=feats.pred,
            labels=feats.labels,
        ),
        recording=Path(out),
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
    feats = recording.layer(layer)
    logits = feats if layer == "logits" else recording.layer("logits")
    keep = np.flatnonzero(~np.isin(feats.ids, exclude))[:limit]
    position = {example_id: i for i, example_id in enumerate(train.ids)}
    missing = [i for i in feats.ids[keep] if i not in position]
    if missing:
        raise AUError(f"--acts {acts} holds examples that are not in {train.name!r} (e.g. {missing[0]!r})")
    rows = np.array([position[i] for i in feats.ids[keep]], dtype=np.int64)
    return ScoredSet(
        name=train.name,
        split=train.split,
        is_ood=False,
        ids=feats.ids[keep],
        labels=feats.labels[keep],
        correct=feats.correct[keep],
        inputs=Inputs(
            logits=np.asarray(logits.values[keep], dtype=np.float32),
            features=np.asarray(feats.values[keep], dtype=np.float32),
            images=train.images[rows],
            pred=feats.pred[keep],
            labels=feats.labels[keep],
        ),
        recording=Path(acts),
    )
