"""One training run into a run directory: subset, fit, evaluate, write weights and manifest last.

Re-running the same job into the same directory resumes it (or, when it is finished, returns it
untouched); a different job is refused, so nothing already written is damaged.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from au import progress
from au.data.dataset import ImageDataset, ids_sha256
from au.data.subsets import keep_subset
from au.errors import AUError
from au.manifest import check_job_dir, environment, job_key, now, write_json
from au.models.weights import model_identity, save_weights, state_sha256
from au.runs import HISTORY, INCOMPLETE, MANIFEST, PER_CLASS, RUN_FORMAT, WEIGHTS
from au.train.config import TrainConfig
from au.train.evaluate import Evaluation, evaluate
from au.train.loop import STATE_FILE, fit


@dataclass
class RunResult:
    """A finished run: its directory, manifest, trained model and (when trained now) test evaluation."""

    path: Path
    manifest: dict
    model: nn.Module
    test: Evaluation | None
    skipped: bool


def job_identity(
    model: nn.Module, train: ImageDataset, test: ImageDataset, config: TrainConfig, model_name: str
) -> dict:
    """Everything that determines a run's result; two jobs with equal identities give equal weights."""
    return {
        "model": model_name,
        "model_identity": model_identity(model),
        "initial_weights_sha256": state_sha256(model),
        "data_train_sha256": train.fingerprint(),
        "data_test_sha256": test.fingerprint(),
        "config": config.to_dict(),
    }


def train_run(
    model: nn.Module,
    train_split: ImageDataset,
    test_split: ImageDataset,
    config: TrainConfig,
    out: Path,
    *,
    model_name: str | None = None,
    data_spec: str | None = None,
    show_progress: bool = True,
) -> RunResult:
    """Train ``model`` on a keep-fraction of ``train_split``, test it on ``test_split``, write a run directory.

    Parameters
    ----------
    model : nn.Module
        Freshly initialised; trained in place. Takes (N, C, H, W) float32 in [0, 1].
    train_split, test_split : ImageDataset
        The full training split (the subset and validation carve-out are taken here) and the test split.
    config : TrainConfig
    out : Path
        The run directory (see :mod:`au.runs` for its files).
    model_name : str, optional
        Registry name (recorded so ``load_run`` can rebuild the model); defaults to the class path.
    data_spec : str, optional
        The dataset spec, recorded in the manifest; defaults to ``train_split.name``.
    """
    out = Path(out)
    model_name = model_name or getattr(model, "au_name", None) or model_identity(model)["au.model"]
    data_spec = data_spec or train_split.name
    if train_split.image_shape != test_split.image_shape:
        raise AUError(
            f"train images are {train_split.image_shape} but test images are {test_split.image_shape} (H, W, C)"
        )
    identity = job_identity(model, train_split, test_split, config, model_name)
    key = job_key(identity)
    finished = check_job_dir(
        out,
        key,
        MANIFEST,
        INCOMPLETE,
        "run",
        lambda m: f"finished run (model {m.get('model')!r}, data {m.get('data', {}).get('spec')!r})",
    )
    if finished is not None:
        from au.runs import load_run

        progress.note(f"{out}: this run is already complete; nothing to do")
        return RunResult(out, finished, load_run(out, model).model, None, skipped=True)

    subset = keep_subset(
        train_split.labels, config.keep, config.seed, config.val_fraction, dict(config.class_keep) or None
    )
    train = train_split.subset(subset.train, "train")
    val = train_split.subset(subset.val, "val")
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / INCOMPLETE, {"job_key": key, "identity": identity, "started": now()})

    started = time.perf_counter()
    result = fit(
        model,
        train,
        config,
        val if len(val) else None,
        state_dir=out,
        job_key=key,
        show_progress=show_progress,
    )
    test_eval = evaluate(model, test_split, show=show_progress)
    train_eval = evaluate(model, train, show=show_progress)
    wall = time.perf_counter() - started

    weights_sha = save_weights(model, out / WEIGHTS)
    rows = test_eval.per_class_rows(test_split.class_names)
    with open(out / PER_CLASS, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    write_json(out / HISTORY, result.history)
    manifest = {
        "format": RUN_FORMAT,
        "kind": "train",
        "job_key": key,
        "model": model_name,
        "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
        "input_shape": list(train_split.input_shape),
        "num_classes": int(test_eval.support.shape[0]),
        "class_names": list(train_split.class_names),
        "data": {
            "spec": data_spec,
            "n_train": len(train),
            "n_val": len(val),
            "n_test": len(test_split),
            "train_split_sha256": train_split.fingerprint(),
            "test_split_sha256": test_split.fingerprint(),
            "train_ids_sha256": ids_sha256(train.ids),
            "train_class_counts": train.class_counts().tolist(),
        },
        "config": config.to_dict(),
        "training": {
            "steps": result.steps,
            "epochs": result.epochs,
            "stopped": result.stopped,
            "best_step": result.best_step,
            "resumed_from_step": result.resumed_from_step,
            "train_seconds": result.history["seconds"][-1] if result.history["seconds"] else 0.0,
            "wall_seconds": wall,
        },
        "metrics": {
            "test_accuracy": test_eval.accuracy,
            "test_loss": test_eval.loss,
            "train_accuracy": train_eval.accuracy,
            "train_loss": train_eval.loss,
            "val_accuracy": result.history["val_accuracy"][-1] if result.history["val_accuracy"] else None,
            "val_loss": result.history["val_loss"][-1] if result.history["val_loss"] else None,
        },
        "weights": {"file": WEIGHTS, "sha256": weights_sha},
        "environment": environment(),
        "created": now(),
    }
    write_json(out / MANIFEST, manifest)
    for leftover in (out / STATE_FILE, out / INCOMPLETE):
        leftover.unlink(missing_ok=True)
    model.eval()
    return RunResult(out, manifest, model, test_eval, skipped=False)
