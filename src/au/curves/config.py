"""Settings of a learning-curve analysis (``au curve``): one frozen dataclass, defaults in one place."""

from __future__ import annotations

from dataclasses import dataclass

from au.errors import AUError


@dataclass(frozen=True)
class CurveOptions:
    """Settings of the analysis (``au curve`` flags)."""

    delta: float = 0.05
    targets: tuple[float, ...] = (0.99, 0.995)
    holdout_max: float = 0.2
    bootstrap: int = 1000
    level: float = 0.95
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.delta < 1.0:
            raise AUError(f"delta must be in (0, 1), got {self.delta}")
        for t in self.targets:
            if not 0.0 < t < 1.0:
                raise AUError(f"target accuracy {t} must be in (0, 1)")
        if not 0.0 < self.holdout_max <= 1.0:
            raise AUError(f"holdout fraction limit must be in (0, 1], got {self.holdout_max}")
        if self.bootstrap < 10:
            raise AUError(f"bootstrap needs at least 10 resamples, got {self.bootstrap}")
