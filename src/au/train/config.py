"""Training settings: one frozen dataclass, defaults in one place, saved beside the outputs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from au.errors import AUError

SCHEDULES = ("cosine", "constant")
AUGMENTATIONS = ("none", "crop-flip")
"""Training-time augmentations (:mod:`au.train.augment`)."""
ADDED_LATER = {"augment": "none"}
"""Fields added after runs were first written, with their defaults: left out of :meth:`TrainConfig.to_dict` at
the default, so the identity (and the manifest) of a run made before them stays what it was."""


@dataclass(frozen=True)
class TrainConfig:
    """How one model is trained.

    Attributes
    ----------
    keep : float in (0, 1]
        Stratified share of the training split to use (seeded, nested across fractions).
    val_fraction : float in [0, 1)
        Share of the kept examples held out as the validation carve-out (never the test split).
    seed : int
        Seeds the subset, the initial weights, the batch order and dropout. Same seed, same weights.
    epochs : int
        Passes over the kept training examples.
    max_steps : int or None
        Stop after this many optimiser steps even if ``epochs`` are not done.
    batch_size : int
    lr : float
        Adam's peak learning rate.
    weight_decay : float
    schedule : {"cosine", "constant"}
        Cosine decay of the learning rate to zero over the planned steps, or a constant rate.
    eval_every : int or None
        Steps between validation evaluations; ``None`` evaluates at the end of every epoch.
    patience : int or None
        Early stopping: stop after this many validation evaluations below the best validation
        accuracy, and restore the weights of the best evaluation (the later one on ties). ``None``
        trains the full budget.
    class_keep : tuple of (class, fraction) pairs
        Per-class keep-fractions that replace ``keep`` for those classes (class-composition ablation).
    augment : {"none", "crop-flip"}
        Training-time augmentation (:mod:`au.train.augment`): random crops of the 4-pixel zero-padded
        image and horizontal flips, seeded per step.
    """

    keep: float = 1.0
    val_fraction: float = 0.1
    seed: int = 0
    epochs: int = 3
    max_steps: int | None = None
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "cosine"
    eval_every: int | None = None
    patience: int | None = None
    class_keep: tuple[tuple[int, float], ...] = ()
    augment: str = "none"

    def __post_init__(self) -> None:
        if not 0.0 < self.keep <= 1.0:
            raise AUError(f"keep must be in (0, 1], got {self.keep}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise AUError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.epochs < 1:
            raise AUError(f"epochs must be at least 1, got {self.epochs}")
        if self.max_steps is not None and self.max_steps < 1:
            raise AUError(f"max_steps must be at least 1, got {self.max_steps}")
        if self.batch_size < 1:
            raise AUError(f"batch_size must be at least 1, got {self.batch_size}")
        if not self.lr > 0:
            raise AUError(f"lr must be positive, got {self.lr}")
        if self.weight_decay < 0:
            raise AUError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.eval_every is not None and self.eval_every < 1:
            raise AUError(f"eval_every must be at least 1, got {self.eval_every}")
        if self.patience is not None and self.patience < 1:
            raise AUError(f"patience must be at least 1, got {self.patience}")
        object.__setattr__(self, "class_keep", tuple((int(k), float(f)) for k, f in self.class_keep))
        if self.augment not in AUGMENTATIONS:
            raise AUError(f"augment must be one of {', '.join(AUGMENTATIONS)}, got {self.augment!r}")
        if self.schedule not in SCHEDULES:
            raise AUError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")

    def to_dict(self) -> dict:
        """JSON-ready: the form written to manifests."""
        values = asdict(self)
        values["class_keep"] = [list(pair) for pair in self.class_keep]
        return {k: v for k, v in values.items() if ADDED_LATER.get(k, object()) != v}

    def updated(self, **changes) -> TrainConfig:
        """A copy with ``changes`` applied; ``None`` values are ignored (handy for CLI flags)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})
