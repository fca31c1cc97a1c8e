"""What ``au gold`` certifies and how it checks it: frozen dataclasses, defaults in one place (light: no torch)."""

from __future__ import annotations

from dataclasses import dataclass

from au.checks import check_level
from au.detectors.registry import QUICK, check_names
from au.errors import AUError

METHODS = ("ltt", "sgr", "both")
"""``au gold --method``: Learn then Test (arXiv 2110.01052), SGR (arXiv 1705.08500), or both side by side."""
COMBO_WORDS = ("auto", "all", "none")
"""``au gold --combo`` words that stand alone: every entry when they come from two or more detectors
(the default, quiet otherwise); every entry (refused when they come from fewer); no combined score."""


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
    ``combo``: the entries the combined score combines - ``("auto",)`` (default): every entry when
    they come from two or more detectors, else no combined score; ``("all",)``: every entry, and an
    error when they come from fewer than two detectors; entry names (``("msp", "knn@fc1")``), of at
    least two detectors; empty or ``("none",)``: no combined score. ``population_fraction``: on
    streams of at least ``population_min`` inputs the check is repeated certifying on this share of
    the inputs and measuring on all the rest, a large held-out population (``None``: not repeated).
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
    combo: tuple[str, ...] = ("auto",)
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
        combo = tuple(self.combo)
        word = next((w for w in COMBO_WORDS if w in combo), None)
        if word and len(combo) > 1:
            raise AUError(
                f"--combo {','.join(combo)}: {word!r} stands alone; pass one of {', '.join(COMBO_WORDS)}, "
                "or entries such as msp,knn@fc1"
            )
        object.__setattr__(self, "combo", () if combo == ("none",) else combo)
        if self.population_fraction is not None:
            check_level(self.population_fraction, "population_fraction")
        if self.population_min < 1:
            raise AUError(f"population_min must be at least 1, got {self.population_min}")


@dataclass(frozen=True)
class TrainingSizeOptions:
    """Detectors fitted for each trial's model, at most ``limit`` random test inputs scored, the
    certified coverage ``target`` whose training-data need is predicted (:mod:`au.gold.needed_data`),
    and ``held_out_max_fraction``: its held-out check fits on the sweep's keep-fractions at most this
    and predicts the larger ones (as ``au curve --holdout-max``; below the sweep's largest fraction,
    or there is nothing to hold out)."""

    detectors: tuple[str, ...] = QUICK
    limit: int | None = None
    target: float = 0.95
    held_out_max_fraction: float = 0.2

    def __post_init__(self) -> None:
        object.__setattr__(self, "detectors", check_names(self.detectors, "--ablation-detectors"))
        if self.limit is not None and self.limit < 2:
            raise AUError(f"limit must be at least 2, got {self.limit}")
        check_level(self.target, "target coverage")
        check_level(self.held_out_max_fraction, "--holdout-max")
