"""Settings of ``au decode``: one frozen dataclass, defaults in one place (light: no torch).

Checked when built, so a bad value is refused with one line before any recording is read or any
file written; the loss names live here so that the CLI lists them without importing torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from au.errors import AUError

LOSSES = ("mse", "bce")
"""Reconstruction losses of the decoders: mean squared error, or binary cross-entropy per pixel."""

KINDS = ("test", "high_density", "low_density", "interpolation", "inversion")
"""What a row of ``decoded.parquet`` decodes: a held-out test activation, a draw from the density's kernel
around a training point of high or of low density, a point on a line between two training examples of
different classes, or a test activation inverted by optimisation instead of decoded."""


@dataclass(frozen=True)
class DecodeConfig:
    """What ``au decode`` decodes, and how.

    Decoders: one per layer of ``layers``, trained for ``steps`` Adam steps (learning rate ``lr``) on
    mini-batches of ``batch_size`` (activation, image) pairs of at most ``train_limit`` training
    examples (drawn with ``seed``), with the ``loss`` of the image in [0, 1]. 2,000 steps of 64 took
    50-70 s per layer of mnist-cnn on one CPU thread of a busy 2-core machine (``benchmarks/decode.py``).

    Evaluation: the first ``test_limit`` rows of the test recording are decoded; their pixel MSE and
    PSNR stand beside the mean training image's, and the classifier's accuracy on them beside its
    accuracy on the originals.

    Density: ``parzen_lsh`` fitted on the same training rows ranks its held-out training points by
    log-density; around each of the ``samples`` highest and ``samples`` lowest of them one vector is
    drawn from the kernel, and ``pairs`` pairs of training examples of different classes are
    interpolated at ``interpolation_steps`` points each (ends included).

    Inversion (Mahendran & Vedaldi 2015, arXiv 1412.0035): the first ``invert`` test targets are also
    inverted by ``invert_steps`` Adam steps (learning rate ``invert_lr``) on a sigmoid-parametrised
    image, with total variation weighted by ``tv_weight`` and the ``alpha``-norm of the image (centred
    on grey) weighted by ``alpha_weight`` (0 turns it off).
    """

    layers: tuple[str, ...]
    steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-3
    loss: str = "mse"
    train_limit: int = 20000
    test_limit: int = 1000
    samples: int = 16
    pairs: int = 4
    interpolation_steps: int = 8
    invert: int = 16
    invert_steps: int = 300
    invert_lr: float = 0.1
    tv_weight: float = 0.05
    alpha: float = 6.0
    alpha_weight: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        layers = (self.layers,) if isinstance(self.layers, str) else tuple(self.layers)
        object.__setattr__(self, "layers", layers)
        if not layers:
            raise AUError("--layers: name at least one recorded layer to decode")
        if len(set(layers)) != len(layers):
            raise AUError(f"--layers names a layer twice ({', '.join(layers)}); list each once")
        for name in ("steps", "batch_size", "train_limit", "test_limit", "samples", "invert_steps"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise AUError(f"{name} must be an integer of at least 1, got {getattr(self, name)!r}")
        for name in ("pairs", "invert"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise AUError(f"{name} must be an integer >= 0, got {getattr(self, name)!r}")
        if not isinstance(self.interpolation_steps, int) or self.interpolation_steps < 2:
            raise AUError(
                f"interpolation_steps must be an integer of at least 2 (both ends), got {self.interpolation_steps!r}"
            )
        for name in ("lr", "invert_lr", "alpha"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise AUError(f"{name} must be a finite number > 0, got {getattr(self, name)!r}")
        for name in ("tv_weight", "alpha_weight"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise AUError(f"{name} must be a finite number >= 0, got {getattr(self, name)!r}")
        if self.loss not in LOSSES:
            raise AUError(f"--loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise AUError(f"--seed must be an integer >= 0, got {self.seed!r}")
