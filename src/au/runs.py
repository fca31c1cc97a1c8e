"""Run directories: what a finished training run holds, and how to load it back.

A run directory is complete exactly when ``manifest.json`` exists: it is written last, after the
weights it describes. While a run is under way the directory holds ``run-incomplete.json`` (the
job's identity) and a checkpoint instead; neither is ever mistaken for a finished run.

Files of a complete run::

    manifest.json        model, data, config, metrics, library versions, weights SHA-256
    weights.safetensors  the trained weights (never a pickle)
    per_class.csv        test precision, recall, F1 and support per class
    history.json         per-epoch losses and accuracies, and every step's loss
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from au.data import ImageDataset, ids_sha256
from au.errors import AUError
from au.manifest import read_json

MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
PER_CLASS = "per_class.csv"
HISTORY = "history.json"
INCOMPLETE = "run-incomplete.json"
RUN_FORMAT = "au-run/1"


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
    path = Path(path)
    if not path.is_dir():
        raise AUError(f"run directory {path} does not exist; pass the --out of an 'au train' run")
    if not (path / MANIFEST).is_file():
        if (path / INCOMPLETE).is_file():
            raise AUError(
                f"run {path} is incomplete (training was interrupted); re-run the same 'au train' command to finish it"
            )
        raise AUError(f"{path} is not an AU run directory (no {MANIFEST})")
    manifest = read_json(path / MANIFEST, "run manifest")
    if manifest.get("format") != RUN_FORMAT:
        raise AUError(f"{path / MANIFEST}: not an AU run manifest (format {manifest.get('format')!r})")
    return manifest


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

    path = Path(path)
    manifest = read_manifest(path)
    if model is None:
        name = manifest["model"]
        from au.models.registry import MODELS

        if name not in MODELS:
            raise AUError(
                f"run {path} was trained with the model {name!r}, which is not in AU's registry; "
                "pass that model: load_run(path, model=MyModel())"
            )
        model = build_model(name, tuple(manifest["input_shape"]), manifest["num_classes"])
    load_weights(model, path / WEIGHTS, expected_sha256=manifest["weights"]["sha256"])
    model.eval()
    return Run(path=path, manifest=manifest, model=model)
