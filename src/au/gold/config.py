"""What ``au gold`` certifies and how it checks it: frozen dataclasses, defaults in one place (light: no torch)."""

from __future__ import annotations

from dataclasses import dataclass

from au.checks import check_level
from au.detectors.registry import QUICK, check_names
from au.errors import AUError

METHODS = ("ltt", "sgr", "both")
"""``au gold --method``: Learn then Test (arXiv 2110.01052), SGR (arXiv 1705.08500), or both side by side."""


@dataclass(frozen=True)
class GoldConfig:
    """What to certify and how to check it.

    ``epsilons``: target selective risks; ``delta``: allowed failure probability; ``n_splits``
    random calibration/test splits with ``cal_fraction`` of the inputs calibrating; ``mixed``: OOD
    sets of the mixed stream (``("all",)`` = every OOD set in the scores; empty = no mixed stream);
    ``bins``: reliability-diagram bins.

    ``method``: the certificate - ``"ltt"`` (Learn then Test, fixed sequence), ``"sgr"`` or
    ``"both"`` side by side. ``fit_fraction`` of each calibration part is its fitting part, which
    never certifies: Learn then Test orders its thresholds there and ``combo`` is fitted there.
    ``combo``: the entries the combined score combines (``("all",)``: every entry, when there are
    two or more; empty: no combined score). ``population_fraction``: on streams of at least
    ``population_min`` inputs the check is repeated certifying on this share of the inputs and
    measuring on all the rest, a large held-out population (``None``: not repeated).
    """

    epsilons: tuple[float, ...] = (0.01, 0.02, 0.05)
    delta: float = 0.05
    n_splits: int = 200
    cal_fraction: float = 0.5
    seed: int = 0
    mixed: tuple[str, ...] = ()
    bins: int = 15
    method: str = "ltt"
    fit_fraction: float = 0.2
    combo: tuple[str, ...] = ("all",)
    population_fraction: float | None = 0.1
    population_min: int = 10_000

    @property
    def methods(self) -> tuple[str, ...]:
        """The certificates computed, in the order the report shows them."""
        return ("sgr", "ltt") if self.method == "both" else (self.method,)

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
        if self.method not in METHODS:
            raise AUError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        check_level(self.fit_fraction, "fit_fraction")
        object.__setattr__(self, "combo", tuple(self.combo))
        if self.population_fraction is not None:
            check_level(self.population_fraction, "population_fraction")
        if self.population_min < 1:
            raise AUError(f"population_min must be at least 1, got {self.population_min}")


@dataclass(frozen=True)
class TrainingSizeOptions:
    """Detectors fitted for each trial's model, at most ``limit`` random test inputs scored, and the
    certified coverage ``target`` whose training-data need is predicted (:mod:`au.gold.needed_data`)."""

    detectors: tuple[str, ...] = QUICK
    limit: int | None = None
    target: float = 0.95

    def __post_init__(self) -> None:
        object.__setattr__(self, "detectors", check_names(self.detectors, "--ablation-detectors"))
        if self.limit is not None and self.limit < 2:
            raise AUError(f"limit must be at least 2, got {self.limit}")
        check_level(self.target, "target coverage")
