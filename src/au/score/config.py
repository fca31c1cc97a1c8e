"""What ``au score`` fits and scores: one frozen dataclass, defaults in one place (light: no torch)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from au.detectors.registry import NAMES, check_names
from au.errors import AUError
from au.spaces.names import NAMES as SPACE_NAMES

DEFAULT_OOD = ("fashion-mnist", "animal-mnist", "digits", "noise-gaussian", "noise-uniform")


@dataclass(frozen=True)
class ScoreConfig:
    """What to fit and score.

    Attributes
    ----------
    detectors : tuple of str
        Names in :data:`au.detectors.registry.NAMES` (default: all of them).
    layer : str or None
        The feature detectors' layer; default: the model's penultimate layer.
    limit : int or None
        Score at most this many random inputs of each set.
    fit_limit : int or None
        Fit on at most this many training examples.
    val_size : int
        In-distribution validation examples drawn from the training split (0: none), for the
        detectors that use validation data.
    batch_size : int
        Recording batch size.
    seed : int
        Seeds the validation draw and the ``limit`` samples.
    params : dict
        Per-detector constructor parameters, ``{"knn": {"k": 10}}``.
    space : str or None
        A feature space other than the network's (:mod:`au.spaces`: pixels, hog, orb, brisk) for the
        feature detectors; the model still gives the logits and the predictions.
    """

    detectors: tuple[str, ...] = NAMES
    layer: str | None = None
    limit: int | None = None
    fit_limit: int | None = None
    val_size: int = 1000
    batch_size: int = 256
    seed: int = 0
    params: dict = field(default_factory=dict)
    space: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "detectors", check_names(self.detectors))
        for key, value in (
            ("limit", self.limit),
            ("fit_limit", self.fit_limit),
            ("batch_size", self.batch_size),
        ):
            if value is not None and value < 1:
                raise AUError(f"{key} must be at least 1, got {value}")
        if self.val_size < 0:
            raise AUError(f"val_size must be at least 0, got {self.val_size}")
        if self.seed < 0:
            raise AUError(f"seed must be a non-negative integer, got {self.seed}")
        if self.space is not None and self.space not in SPACE_NAMES:
            raise AUError(f"unknown feature space {self.space!r}; known: {', '.join(SPACE_NAMES)}")
        if self.space is not None and self.layer is not None:
            raise AUError("a feature space replaces the layer: give --space or --layer, not both")
        bad = set(self.params) - set(self.detectors)
        if bad:
            raise AUError(f"parameters given for detector(s) not chosen: {', '.join(sorted(bad))}")

    def to_dict(self) -> dict:
        """JSON-ready, for identities and manifests; ``space`` only when set, so scores made before it existed
        keep their identity."""
        values = asdict(self)
        if values["space"] is None:
            del values["space"]
        return values
