"""Helpers for the detectors that run the model themselves: batching images and input pre-processing."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from au.data.dataset import to_tensor


def batches(images: np.ndarray, size: int) -> Iterator[torch.Tensor]:
    for lo in range(0, len(images), size):
        yield to_tensor(images[lo : lo + size])


def sign_step(
    x: torch.Tensor, objective: Callable[[torch.Tensor], torch.Tensor], epsilon: float
) -> torch.Tensor:
    """x - epsilon * sign(d objective / dx): one signed gradient step that *decreases* ``objective``.

    Only the input's gradient is computed; the model's parameters collect none.
    """
    if epsilon == 0:
        return x.detach()
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(objective(x).sum(), x)
    return (x - epsilon * grad.sign()).detach()
