"""One trial of a sweep: plan it, run it, turn its run directory into a table row.

:func:`run_trial` is a pure function of its arguments - a trial spec, the sweep, the data and a
model factory - that writes one run directory and returns one row; it shares nothing with other
trials, so trials can run in any order, in other processes, or as tasks on a cluster.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from torch import nn

from au.ablation.config import MIN_EVAL_STEPS, SweepConfig
from au.data.dataset import ImageDataset
from au.data.subsets import keep_subset
from au.errors import AUError
from au.models.registry import build_model
from au.train.config import TrainConfig
from au.train.rundir import read_manifest, read_per_class
from au.train.train_job import train_run

ModelFactory = Callable[[tuple[int, int, int], int, int], nn.Module]
"""(input_shape (C, H, W), num_classes, seed) -> a freshly initialised model."""


def registry_factory(name: str) -> ModelFactory:
    """A picklable factory for a registered model."""
    return partial(_build_registered, name)


def _build_registered(name: str, input_shape: tuple[int, int, int], num_classes: int, seed: int) -> nn.Module:
    return build_model(name, input_shape, num_classes, seed=seed)


@dataclass(frozen=True)
class TrialSpec:
    """One (fraction, trial) of a sweep and the training config that realises it."""

    kind: str
    fraction: float
    ablated_class: int
    class_fraction: float | None
    trial: int
    seed: int
    config: TrainConfig

    @property
    def name(self) -> str:
        """Directory name under ``trials/``, e.g. ``f0.001-t0`` or ``c3-f0.1-t2``."""
        if self.kind == "class":
            return f"c{self.ablated_class}-f{self.class_fraction:g}-t{self.trial}"
        return f"f{self.fraction:g}-t{self.trial}"


def plan_trials(sweep: SweepConfig, train_labels) -> list[TrialSpec]:
    """Every trial of ``sweep``, smallest fraction first; checks each subset can be drawn."""
    num_classes = int(train_labels.max()) + 1
    if sweep.ablate_class is not None and sweep.ablate_class >= num_classes:
        raise AUError(
            f"--ablate-class {sweep.ablate_class} is out of range: the data has classes 0..{num_classes - 1}"
        )
    specs = []
    for trial in range(sweep.trials):
        seed = sweep.seed + trial
        if sweep.kind == "class":
            points = [(1.0, (sweep.ablate_class, f), f) for f in sweep.class_fractions]
        else:
            points = [(f, None, None) for f in sweep.fractions]
        for fraction, class_keep, class_fraction in points:
            base = sweep.training.updated(keep=fraction, seed=seed)
            if class_keep is not None:
                base = base.updated(class_keep=(class_keep,))
            subset = keep_subset(
                train_labels, fraction, seed, base.val_fraction, dict(base.class_keep) or None
            )
            per_epoch = math.ceil(len(subset.train) / base.batch_size)
            config = base.updated(eval_every=max(per_epoch, MIN_EVAL_STEPS))
            specs.append(
                TrialSpec(
                    kind=sweep.kind,
                    fraction=fraction,
                    ablated_class=-1 if sweep.ablate_class is None else sweep.ablate_class,
                    class_fraction=class_fraction,
                    trial=trial,
                    seed=seed,
                    config=config,
                )
            )
    return sorted(specs, key=lambda s: (s.class_fraction or 0.0, s.fraction, s.trial))


def run_trial(
    spec: TrialSpec,
    sweep: SweepConfig,
    sweep_dir: Path,
    train: ImageDataset,
    test: ImageDataset,
    factory: ModelFactory,
    show_progress: bool = False,
) -> dict:
    """Train one trial into ``sweep_dir/trials/<name>`` (resuming or skipping as needed); return its row."""
    run_dir = Path(sweep_dir) / "trials" / spec.name
    model = factory(train.input_shape, train.num_classes, spec.seed)
    started = time.perf_counter()
    train_run(
        model,
        train,
        test,
        spec.config,
        run_dir,
        model_name=sweep.model,
        data_spec=sweep.data,
        show_progress=show_progress,
    )
    return trial_row(spec, Path(sweep_dir), run_dir, fallback_seconds=time.perf_counter() - started)


def trial_row(spec: TrialSpec, sweep_dir: Path, run_dir: Path, fallback_seconds: float = 0.0) -> dict:
    """The table row of a finished trial, read from its run directory."""
    m = read_manifest(run_dir)
    per_class = read_per_class(run_dir)
    counts = m["data"]["train_class_counts"]
    metrics, training, config = m["metrics"], m["training"], m["config"]
    return {
        "kind": spec.kind,
        "fraction": spec.fraction,
        "ablated_class": spec.ablated_class,
        "class_fraction": spec.class_fraction,
        "n_train": m["data"]["n_train"],
        "n_val": m["data"]["n_val"],
        "n_test": m["data"]["n_test"],
        "n_train_ablated_class": counts[spec.ablated_class] if spec.ablated_class >= 0 else None,
        "trial": spec.trial,
        "seed": spec.seed,
        "test_accuracy": metrics["test_accuracy"],
        "test_loss": metrics["test_loss"],
        "train_accuracy": metrics["train_accuracy"],
        "train_loss": metrics["train_loss"],
        "val_accuracy": metrics["val_accuracy"],
        "val_loss": metrics["val_loss"],
        "per_class_precision": [float(r["precision"]) for r in per_class],
        "per_class_recall": [float(r["recall"]) for r in per_class],
        "per_class_n_train": [int(c) for c in counts],
        "steps": training["steps"],
        "best_step": training["best_step"],
        "epochs": training["epochs"],
        "stopped": training["stopped"],
        "max_steps": config["max_steps"],
        "patience": config["patience"],
        "eval_every": config["eval_every"],
        "threads": m["environment"]["torch_threads"],
        "wall_seconds": training.get("wall_seconds", fallback_seconds),
        "run_dir": run_dir.relative_to(sweep_dir).as_posix(),
    }
