"""What ``au gold`` certifies and how it checks it: frozen dataclasses, defaults in one place (light: no torch)."""

from __future__ import annotations

from dataclasses import dataclass

from au.checks import check_level
from au.detectors.registry import QUICK, check_names
from au.errors import AUError


@dataclass(frozen=True)
class GoldConfig:
    """What to certify and how to check it.

    ``epsilons``: target selective risks; ``delta``: allowed failure probability; ``n_splits``
    random calibration/test splits with ``cal_fraction`` of the inputs calibrating; ``mixed``: OOD
    sets of the mixed stream (``("all",)`` = every OOD set in the scores; empty = no mixed stream);
    ``bins``: reliability-diagram bins.
    """

    epsilons: tuple[float, ...] = (0.01, 0.02, 0.05)
    delta: float = 0.05
    n_splits: int = 200
    cal_fraction: float = 0.5
    seed: int = 0
    mixed: tuple[str, ...] = ()
    bins: int = 15

    def __post_init__(self) -> None:
        if not self.epsilons:
            raise AUError("no epsilon given; pass --epsilon 0.01,0.02 (target selective risks in (0, 1))")
        eps = tuple(sorted({check_level(e, "epsilon") for e in self.epsilons}))
        object.__setattr__(self, "epsilons", eps)
        check_level(self.delta, "delta")
        check_level(self.cal_fraction, "cal_fraction")
        if self.n_splits < 1:
            raise AUError(f"n_splits must be at least 1, got {self.n_splits}")
        if self.bins < 1:
            raise AUError(f"bins must be at least 1, got {self.bins}")
        if self.seed < 0:
            raise AUError(f"seed must be a non-negative integer, got {self.seed}")
        object.__setattr__(self, "mixed", tuple(self.mixed))


@dataclass(frozen=True)
class TrainingSizeOptions:
    """Detectors fitted for each trial's model, and at most ``limit`` random test inputs scored."""

    detectors: tuple[str, ...] = QUICK
    limit: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "detectors", check_names(self.detectors, "--ablation-detectors"))
        if self.limit is not None and self.limit < 2:
            raise AUError(f"limit must be at least 2, got {self.limit}")
