"""Settings of the confident classifier's GAN (``au train --confident``): one frozen dataclass, defaults here."""

from __future__ import annotations

import math
from dataclasses import dataclass

from au.errors import AUError


@dataclass(frozen=True)
class ConfidentConfig:
    """How the GAN beside the classifier is trained.

    Attributes
    ----------
    beta : float >= 0
        Weight of the KL term in the classifier's and the generator's losses (the paper's code: 0.1
        on CIFAR-10, 1 on SVHN). 0 trains a plain GAN beside an ordinary classifier (a control).
    gan_steps : int >= 1
        Discriminator-and-generator updates per classifier step (1, as in the released code).
    nz : int
        Length of the generator's noise vector.
    width : int
        ``ngf = ndf``: the channels of the GAN's first (last) layer.
    gan_lr : float
        Adam's learning rate for the generator and the discriminator.
    samples : int
        Generated samples written to the run directory (``generated.parquet``) at the end.
    """

    beta: float = 0.1
    gan_steps: int = 1
    nz: int = 100
    width: int = 64
    gan_lr: float = 2e-4
    samples: int = 2000

    def __post_init__(self) -> None:
        if not (math.isfinite(self.beta) and self.beta >= 0):
            raise AUError(f"beta must be a number >= 0 (the weight of the KL term), got {self.beta}")
        for name in ("gan_steps", "nz", "width", "samples"):
            if getattr(self, name) < 1:
                raise AUError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.gan_lr > 0:
            raise AUError(f"gan_lr must be positive, got {self.gan_lr}")
