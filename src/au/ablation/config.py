"""Settings of one data-ablation sweep: a frozen dataclass, defaults in one place, saved in the sweep's manifest."""

from __future__ import annotations

from dataclasses import dataclass, field

from au.errors import AUError
from au.train.config import TrainConfig

DEFAULT_FRACTIONS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
MIN_EVAL_STEPS = 50
"""Validation happens every epoch, but never more often than every this many steps: on a subset of
60 examples an epoch is one step, and a validation loss measured every step mostly measures noise."""

SWEEP_TRAINING = TrainConfig(
    epochs=500, max_steps=3000, batch_size=64, lr=1e-3, schedule="constant", patience=5, val_fraction=0.1
)
"""How each trial trains: Adam at a constant rate (a decaying schedule would favour the long runs of
large subsets), early stopping on the trial's own validation carve-out after 5 evaluations below its
best accuracy, best weights restored, within a budget of 3,000 steps."""


@dataclass(frozen=True)
class SweepConfig:
    """A data-ablation sweep: one model per (fraction, trial), or per (class fraction, trial).

    Attributes
    ----------
    model : str
        Registry name of the architecture (or a label for a model factory given in Python).
    data : str
        Dataset spec; the training split is subsetted, the test split is used whole.
    fractions : tuple of float in (0, 1]
        Keep-fractions of every class (ignored by a class sweep).
    trials : int
        Trials per fraction; trial ``t`` uses seed ``seed + t``, so its subsets are nested.
    seed : int
    ablate_class : int or None
        Class-composition ablation: shrink this class alone to each of ``class_fractions`` while
        every other class stays whole.
    class_fractions : tuple of float in (0, 1]
    training : TrainConfig
        Per-trial training (``keep``, ``seed``, ``class_keep`` and ``eval_every`` are set per trial).
    """

    model: str
    data: str
    fractions: tuple[float, ...] = DEFAULT_FRACTIONS
    trials: int = 3
    seed: int = 0
    ablate_class: int | None = None
    class_fractions: tuple[float, ...] = ()
    training: TrainConfig = field(default_factory=lambda: SWEEP_TRAINING)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fractions", tuple(float(f) for f in self.fractions))
        object.__setattr__(self, "class_fractions", tuple(float(f) for f in self.class_fractions))
        if self.trials < 1:
            raise AUError(f"trials must be at least 1, got {self.trials}")
        values = self.class_fractions if self.ablate_class is not None else self.fractions
        what = "class fraction" if self.ablate_class is not None else "fraction"
        if not values:
            raise AUError(f"the sweep needs at least one {what}")
        for f in values:
            if not 0.0 < f <= 1.0:
                raise AUError(f"{what} {f} is outside (0, 1]; fractions must be in (0, 1]")
        if len(set(values)) != len(values):
            raise AUError(f"{what}s repeat: {', '.join(map(str, values))}")
        if self.ablate_class is not None and self.ablate_class < 0:
            raise AUError(f"class index {self.ablate_class} is out of range: classes are numbered from 0")

    @property
    def kind(self) -> str:
        """``"fraction"`` (shrink every class) or ``"class"`` (shrink one class)."""
        return "fraction" if self.ablate_class is None else "class"

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "data": self.data,
            "kind": self.kind,
            "fractions": list(self.fractions) if self.ablate_class is None else [],
            "trials": self.trials,
            "seed": self.seed,
            "ablate_class": self.ablate_class,
            "class_fractions": list(self.class_fractions),
            "training": self.training.to_dict(),
        }
