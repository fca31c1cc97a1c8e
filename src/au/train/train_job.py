"""``au train``: one training run into a run directory - subset, fit, evaluate, write weights and manifest.

Re-running the same job into the same directory resumes it from its checkpoint (or, when it is
finished, returns it untouched); a different job is refused, so nothing already written is damaged.
The directory's files are described in :mod:`au.train.rundir`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from au import jobs, progress
from au.data.dataset import ImageDataset, ids_sha256
from au.data.subsets import keep_subset
from au.errors import AUError
from au.models.weights import model_identity, state_sha256
from au.train.config import TrainConfig
from au.train.evaluation import Evaluation, evaluate
from au.train.loop import STATE_FILE, FitResult, Trainer, fit
from au.train.rundir import HISTORY, PER_CLASS, WEIGHTS, load_run, write_run_files


@dataclass
class RunResult:
    """A finished run: its directory, manifest, trained model and (when trained now) test evaluation."""

    path: Path
    manifest: dict
    model: nn.Module
    test: Evaluation | None
    skipped: bool


def job_identity(
    model: nn.Module,
    train: ImageDataset,
    test: ImageDataset,
    config: TrainConfig,
    model_name: str,
    trainer: Trainer | None = None,
) -> dict:
    """Everything that determines a run's result; two jobs with equal identities give equal weights.

    A trainer with an identity of its own (the confident classifier's GAN) adds it under ``trainer``.
    """
    extra = trainer.identity() if trainer is not None else {}
    return {
        **({"trainer": extra} if extra else {}),
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
    trainer: Trainer | None = None,
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
        The run directory (see :mod:`au.train.rundir` for its files).
    model_name : str, optional
        Registry name (recorded so ``load_run`` can rebuild the model); defaults to the class path.
    data_spec : str, optional
        The dataset spec, recorded in the manifest; defaults to ``train_split.name``.
    trainer : Trainer, optional
        What each step does, for trainings beyond Adam on cross-entropy (e.g. the confident classifier
        of :class:`au.generate.ConfidentTrainer`); its identity joins the job's, its files the run's.
    """
    model_name = model_name or getattr(model, "au_name", None) or model_identity(model)["au.model"]
    data_spec = data_spec or train_split.name
    if train_split.image_shape != test_split.image_shape:
        raise AUError(
            f"train images are {train_split.image_shape} but test images are {test_split.image_shape} (H, W, C)"
        )
    subset = keep_subset(
        train_split.labels, config.keep, config.seed, config.val_fraction, dict(config.class_keep) or None
    )
    trainer = trainer or Trainer(model, config)
    identity = job_identity(model, train_split, test_split, config, model_name, trainer)
    claim = jobs.claim(jobs.Job("train", out, identity, f"run of {model_name} on {data_spec}"))
    if claim.done:
        progress.note(f"{out}: this run is already complete; nothing to do")
        return RunResult(claim.out, claim.manifest, load_run(claim.out, model).model, None, skipped=True)

    train = train_split.subset(subset.train, "train")
    val = train_split.subset(subset.val, "val")
    started = time.perf_counter()
    fitted = fit(
        model, train, config, val if len(val) else None, state_dir=claim.out, job_key=claim.job.key,
        show_progress=show_progress, trainer=trainer,
    )  # fmt: skip
    test_eval = evaluate(model, test_split, show=show_progress)
    train_eval = evaluate(model, train, show=show_progress)
    wall = time.perf_counter() - started

    weights_sha = write_run_files(
        claim.out, model, test_eval.per_class_rows(test_split.class_names), fitted.history
    )
    extra_files, extra_record = trainer.write(claim.out, fitted.history)
    record = {
        "model": model_name,
        "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
        "input_shape": list(train_split.input_shape),
        "num_classes": int(test_eval.support.shape[0]),
        "class_names": list(train_split.class_names),
        "data": _data_record(data_spec, train_split, test_split, train, val),
        "config": config.to_dict(),
        "training": _training_record(fitted, wall),
        "metrics": _metrics(fitted, test_eval, train_eval),
        "weights": {"file": WEIGHTS, "sha256": weights_sha},
        **extra_record,
    }
    outputs = (WEIGHTS, PER_CLASS, HISTORY, *extra_files)
    manifest = claim.finish(record, outputs=outputs, scratch=(STATE_FILE,))
    model.eval()
    return RunResult(claim.out, manifest, model, test_eval, skipped=False)


def _data_record(spec: str, train_split: ImageDataset, test_split: ImageDataset, train, val) -> dict:
    """What the run was trained and tested on: sizes, and hashes of the splits and of the training subset."""
    return {
        "spec": spec,
        "n_train": len(train),
        "n_val": len(val),
        "n_test": len(test_split),
        "train_split_sha256": train_split.fingerprint(),
        "test_split_sha256": test_split.fingerprint(),
        "train_ids_sha256": ids_sha256(train.ids),
        "train_class_counts": train.class_counts().tolist(),
    }


def _training_record(fitted: FitResult, wall: float) -> dict:
    seconds = fitted.history["seconds"]
    return {
        "steps": fitted.steps,
        "epochs": fitted.epochs,
        "stopped": fitted.stopped,
        "best_step": fitted.best_step,
        "resumed_from_step": fitted.resumed_from_step,
        "train_seconds": seconds[-1] if seconds else 0.0,
        "wall_seconds": wall,
    }


def _metrics(fitted: FitResult, test_eval: Evaluation, train_eval: Evaluation) -> dict:
    h = fitted.history
    return {
        "test_accuracy": test_eval.accuracy,
        "test_loss": test_eval.loss,
        "train_accuracy": train_eval.accuracy,
        "train_loss": train_eval.loss,
        "val_accuracy": h["val_accuracy"][-1] if h["val_accuracy"] else None,
        "val_loss": h["val_loss"][-1] if h["val_loss"] else None,
    }
