"""Helpers for the detectors that run the model themselves: batching images and input pre-processing."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from au.data.dataset import to_tensor


def batches(images: np.ndarray, size: int) -> Iterator[torch.Tensor]:
    """Float32 tensors of ``size`` images at a time."""
    for _, x in numbered_batches(images, size):
        yield x


def numbered_batches(images: np.ndarray, size: int) -> Iterator[tuple[int, torch.Tensor]]:
    """(first row, float32 tensor) of each batch: where its results go in arrays filled batch by batch.

    Filling arrays allocated once, instead of keeping every batch's small result until a final
    concatenation, keeps those results from fragmenting the heap between the forward passes'
    large buffers.
    """
    for lo in range(0, len(images), size):
        yield lo, to_tensor(images[lo : lo + size])


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
