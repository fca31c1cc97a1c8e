"""Settings of ``au explain`` and ``au perturb``: frozen dataclasses, defaults in one place (light: no torch).

Each is checked when it is built, so a bad value is refused before any model is loaded or any file
written; the method and selection names live here so that the CLI lists them without importing captum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from au.checks import check_at_least_one, check_choices
from au.errors import AUError

METHODS = ("saliency", "guided_backprop", "deconvnet", "integrated_gradients", "smoothgrad", "gradcam")
"""Attribution methods, in the order they are drawn (:mod:`au.explain.methods` implements each via captum)."""

SELECTIONS = ("correct", "wrong", "lowest-density", "highest-density")


def check_methods(methods) -> tuple[str, ...]:
    """``methods`` as a tuple of known names, none twice; or one line naming what exists."""
    return check_choices(methods, METHODS, "--methods", "method")


def check_seed(seed: int) -> int:
    if not isinstance(seed, int) or seed < 0:
        raise AUError(f"--seed must be an integer >= 0, got {seed!r}")
    return seed


def check_target(target: str | int) -> str | int:
    """``"pred"``, ``"label"`` or a class index (as int or text)."""
    if isinstance(target, str) and target not in ("pred", "label"):
        try:
            target = int(target)
        except ValueError:
            raise AUError(f"--target must be pred, label or a class index, got {target!r}") from None
    if isinstance(target, int) and target < 0:
        raise AUError(f"--target: a class index is 0 or more, got {target}")
    return target


@dataclass(frozen=True)
class ExplainConfig:
    """What ``au explain`` attributes, and how.

    Inputs: the ``ids`` given, else the first ``limit`` inputs of the split, or - with ``select`` -
    the ``limit`` inputs that are correct, wrong, or of the lowest / highest ``parzen_lsh``
    log-density at ``layer`` (the penultimate layer by default), the density fitted on at most
    ``fit_limit`` training examples.

    Methods: Integrated Gradients integrates ``ig_steps`` steps from a black image (200: on
    mnist-cnn the maps' sums miss ``f(x) - f(0)`` by up to 2.3% at 50 steps, 0.5% at 200); SmoothGrad
    averages ``smoothgrad_samples`` gradients under Gaussian noise of standard deviation
    ``smoothgrad_noise`` (inputs lie in [0, 1]; the paper's 10-20% of the range); Grad-CAM reads
    ``gradcam_layer`` (by default the last ``Conv2d``'s activation, e.g. ``conv2_relu``).
    """

    methods: tuple[str, ...] = METHODS
    target: str | int = "pred"
    limit: int = 8
    ids: tuple[str, ...] | None = None
    select: str | None = None
    layer: str | None = None
    fit_limit: int = 10000
    gradcam_layer: str | None = None
    ig_steps: int = 200
    smoothgrad_samples: int = 25
    smoothgrad_noise: float = 0.15
    signed_saliency: bool = False
    batch_size: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "methods", check_methods(self.methods))
        object.__setattr__(self, "target", check_target(self.target))
        if self.select is not None and self.select not in SELECTIONS:
            raise AUError(f"--select must be one of {', '.join(SELECTIONS)}, got {self.select!r}")
        if self.ids is not None and self.select is not None:
            raise AUError("--ids and --select both choose the inputs; give one of them")
        if self.ids is not None and not self.ids:
            raise AUError("--ids lists no example id")
        check_at_least_one(self, "limit", "fit_limit", "ig_steps", "smoothgrad_samples", "batch_size")
        check_seed(self.seed)
        if not 0 < self.smoothgrad_noise <= 1:
            raise AUError(f"smoothgrad_noise must be in (0, 1], got {self.smoothgrad_noise}")


@dataclass(frozen=True)
class Unit:
    """A unit of ``layer``: neuron or channel ``channel``, at (``y``, ``x``) when one position of a map."""

    layer: str
    channel: int
    y: int | None = None
    x: int | None = None

    @property
    def text(self) -> str:
        """The unit's column value in ``units.parquet``: ``CHANNEL`` or ``CHANNEL:Y:X``."""
        return str(self.channel) if self.y is None else f"{self.channel}:{self.y}:{self.x}"

    def __str__(self) -> str:
        return f"{self.layer}:{self.text}"


def parse_unit(text: str) -> Unit:
    """``LAYER:CHANNEL`` or ``LAYER:CHANNEL:Y:X`` (the layer name may itself hold dots)."""
    parts = text.strip().split(":")
    try:
        numbers = [int(p) for p in parts[1:]]
    except ValueError:
        numbers = []
    if len(parts) not in (2, 4) or not parts[0] or len(numbers) != len(parts) - 1 or min(numbers) < 0:
        raise AUError(
            f"--unit {text!r}: write LAYER:CHANNEL or LAYER:CHANNEL:Y:X with indices >= 0, e.g. conv2:5"
        )
    return Unit(parts[0], *numbers)


@dataclass(frozen=True)
class UnitsConfig:
    """Unit projection: the ``top`` inputs of a recording that activate each unit most, projected back."""

    units: tuple[str, ...]
    top: int = 9
    bins: int = 50

    def __post_init__(self) -> None:
        if not self.units:
            raise AUError("--unit: name at least one unit as LAYER:CHANNEL or LAYER:CHANNEL:Y:X")
        parsed = [parse_unit(text) for text in self.units]
        if len(set(parsed)) != len(parsed):  # as units: "fc1:3" and " fc1:3" are one
            raise AUError("--unit names a unit twice; list each once")
        if self.top < 1:
            raise AUError(f"--top must be at least 1, got {self.top}")


@dataclass(frozen=True)
class BacktraceConfig:
    """Low-density backtrace of one input: its ``partitions`` least-covered neuron partitions at ``layer``.

    The density is ``parzen_lsh`` fitted on at most ``fit_limit`` training examples; each partition
    shows the input's ``neighbours`` nearest training examples in it.
    """

    example_id: str
    layer: str | None = None
    partitions: int = 3
    neighbours: int = 5
    fit_limit: int = 10000
    ig_steps: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        check_at_least_one(self, "partitions", "neighbours", "fit_limit", "ig_steps")
        check_seed(self.seed)


@dataclass(frozen=True)
class PerturbConfig:
    """``au perturb``: perturb one layer's activations and measure what changes downstream.

    Gaussian noise of ``sigma`` times each unit's standard deviation over the training set, for
    every ``sigmas``; and, when given, ``zero`` (units set to 0), ``scale`` (units times
    ``factor``) and ``top_units`` (the K units of highest mean training activation set to 0).
    Units of a conv layer are channels. Detectors (default: those that read features or logits
    among the registry's quick ones) are fitted on at most ``fit_limit`` unperturbed training
    examples at ``detector_layer`` (the penultimate layer by default); ``limit`` caps the test inputs.
    """

    layer: str
    sigmas: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
    zero: tuple[int, ...] | None = None
    scale: tuple[tuple[int, ...], float] | None = None
    top_units: int | None = None
    detectors: tuple[str, ...] | None = None
    detector_layer: str | None = None
    fit_limit: int = 10000
    limit: int | None = None
    batch_size: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.sigmas or any(s < 0 for s in self.sigmas):
            raise AUError(f"--sigmas must be numbers >= 0, got {','.join(map(str, self.sigmas)) or 'none'}")
        if self.zero is not None and not self.zero:
            raise AUError("--zero lists no unit")
        if self.scale is not None and not self.scale[0]:
            raise AUError("--scale lists no unit; write UNITS:FACTOR, e.g. 3,7:0.5")
        if self.top_units is not None and self.top_units < 1:
            raise AUError(f"--top-units must be at least 1, got {self.top_units}")
        check_at_least_one(self, "fit_limit", "batch_size")
        check_seed(self.seed)
        if self.scale is not None and not math.isfinite(self.scale[1]):
            raise AUError(f"--scale: the factor must be a finite number, got {self.scale[1]}")
        if self.limit is not None and self.limit < 1:
            raise AUError(f"--limit must be at least 1, got {self.limit}")
