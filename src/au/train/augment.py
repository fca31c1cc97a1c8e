"""Training-time augmentation: random crops of a zero-padded image and horizontal flips, seeded per step.

The standard CIFAR-10 recipe (He et al. 2016, arXiv 1512.03385, section 4.2: pad 4 pixels, take a
random 32x32 crop, flip horizontally with probability 1/2). Each step's draws come from a generator
seeded by ``(seed, step)``, so a run resumed from a checkpoint augments exactly as an uninterrupted
one, and the draws do not touch torch's global RNG (which dropout uses).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from au.train.config import AUGMENTATIONS

PAD = 4


def step_generator(seed: int, step: int) -> torch.Generator:
    """A torch generator for step ``step`` of a run seeded ``seed``."""
    return torch.Generator().manual_seed(
        int(np.random.SeedSequence([seed, step, 0xA06]).generate_state(1)[0])
    )


def crop_flip(x: torch.Tensor, generator: torch.Generator, pad: int = PAD) -> torch.Tensor:
    """Each image of ``x`` (N, C, H, W) cropped at a random offset from its ``pad``-pixel zero padding and
    flipped left-right with probability 1/2; same shape."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))  # (N, C, H + 2 pad, W + 2 pad), black borders
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None]  # (N, 1, H, 1)
    cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :]  # (N, 1, 1, W)
    cols = torch.where(flip[:, None, None, None], cols.flip(-1), cols)
    batch = torch.arange(n)[:, None, None, None]
    channels = torch.arange(x.shape[1])[None, :, None, None]
    return padded[batch, channels, rows, cols]


def augment(x: torch.Tensor, kind: str, seed: int, step: int) -> torch.Tensor:
    """``x`` (N, C, H, W) augmented as ``kind`` says (one of :data:`AUGMENTATIONS`) for step ``step``."""
    assert kind in AUGMENTATIONS, kind
    if kind == "none":
        return x
    return crop_flip(x, step_generator(seed, step))
