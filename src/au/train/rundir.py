"""Run directories, read and written in this one place: what a finished training run holds.

A run directory is a ``train`` job's directory (:mod:`au.jobs`): complete exactly when
``manifest.json`` exists, written last, after the weights it describes. While a run is under way it
holds ``incomplete.json`` and a checkpoint (``train-state.safetensors``) instead; neither is ever
mistaken for a finished run.

Files of a complete run::

    manifest.json        model, data, config, training, metrics, weights SHA-256, library versions
    weights.safetensors  the trained weights (never a pickle)
    per_class.csv        test precision, recall, F1 and support per class
    history.json         per-epoch losses and accuracies, and every step's loss
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from au import jobs
from au.data.dataset import ImageDataset, ids_sha256
from au.errors import AUError
from au.files import write_json
from au.models.weights import save_weights

WEIGHTS = "weights.safetensors"
PER_CLASS = "per_class.csv"
HISTORY = "history.json"


@dataclass
class Run:
    """A finished run loaded back: its directory, manifest and model (in eval mode)."""

    path: Path
    manifest: dict
    model: nn.Module

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.manifest["class_names"])

    @property
    def data_spec(self) -> str:
        return self.manifest["data"]["spec"]

    def training_data(self, train_split: ImageDataset) -> ImageDataset:
        """The examples this run was fitted on: its keep-subset of ``train_split`` (validation carve-out excluded).

        Recomputed from the run's seed and fractions and checked against the ids' SHA-256 in the
        manifest, so a different training split is refused rather than silently used.
        """
        from au.data.subsets import keep_subset

        c = self.manifest["config"]
        subset = keep_subset(
            train_split.labels,
            c["keep"],
            c["seed"],
            c["val_fraction"],
            {int(k): float(v) for k, v in c.get("class_keep") or []} or None,
        )
        fitted = train_split.subset(subset.train, "train")
        if ids_sha256(fitted.ids) != self.manifest["data"].get("train_ids_sha256"):
            raise AUError(
                f"run {self.path} was not trained on a subset of {train_split.name!r} ({train_split.split}); "
                f"pass the training split it was trained on ({self.data_spec!r})"
            )
        return fitted


def read_manifest(path: Path) -> dict:
    """The manifest of a complete run directory, or a clear error saying why there is none."""
    return jobs.read_manifest(path, "train")


def load_run(path: Path, model: nn.Module | None = None) -> Run:
    """Load a finished run's weights into its registered architecture (or into ``model``).

    Parameters
    ----------
    path : Path
        A run directory written by ``au train`` / :func:`au.train.train_run`.
    model : nn.Module, optional
        Your own architecture, for runs of models not in the registry. Its weights are replaced.
    """
    from au.models import build_model, load_weights
    from au.models.registry import MODELS

    path = Path(path)
    manifest = read_manifest(path)
    if model is None:
        name = manifest["model"]
        if name not in MODELS:
            raise AUError(
                f"run {path} was trained with the model {name!r}, which is not in AU's registry; "
                "pass that model: load_run(path, model=MyModel())"
            )
        model = build_model(name, tuple(manifest["input_shape"]), manifest["num_classes"])
    load_weights(model, path / WEIGHTS, expected_sha256=manifest["weights"]["sha256"])
    model.eval()
    return Run(path=path, manifest=manifest, model=model)


def write_run_files(out: Path, model: nn.Module, per_class_rows: list[dict], history: dict) -> str:
    """The weights, per-class metrics and history of a trained run; returns the weights' SHA-256."""
    out = Path(out)
    weights_sha = save_weights(model, out / WEIGHTS)
    with open(out / PER_CLASS, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(per_class_rows[0]))
        writer.writeheader()
        writer.writerows(per_class_rows)
    write_json(out / HISTORY, history)
    return weights_sha


def read_per_class(path: Path) -> list[dict]:
    """``per_class.csv`` of a run directory: one dict per class, values as written (strings)."""
    with open(Path(path) / PER_CLASS, encoding="utf-8") as f:
        return list(csv.DictReader(f))
