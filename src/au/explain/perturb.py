"""Perturbing one layer's activations during the forward pass, and what follows downstream.

A forward hook on the layer replaces its output (N, *shape) by a perturbed copy, so every later
layer - the detectors' feature layer and the logits among them - sees the perturbation:

* ``noise``: ``a + sigma * std * e`` with ``e ~ N(0, 1)`` drawn per element, ``std`` each unit's
  standard deviation over the training examples (per element of a conv map);
* ``zero`` / ``top-units``: chosen units (channels of a conv layer) set to 0;
* ``scale``: chosen units multiplied by a factor.

The noise of batch ``lo`` of setting ``k`` is drawn from a generator seeded with ``(seed, k, lo)``:
the same seed gives the same numbers, whatever else ran before.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from au.data import ImageDataset
from au.explain.density import layer_features


@dataclass(frozen=True)
class Setting:
    """One perturbation: its kind, sigma (noise), units (None: all) and factor (zero: 0, scale: the factor)."""

    kind: str
    sigma: float | None = None
    units: tuple[int, ...] | None = None
    factor: float | None = None

    @property
    def units_text(self) -> str:
        return "all" if self.units is None else ",".join(str(u) for u in self.units)


@dataclass
class LayerStats:
    """Over the training examples: each element's mean and std (the layer's shape), each unit's mean activation."""

    mean: torch.Tensor
    std: torch.Tensor
    unit_means: np.ndarray


@dataclass
class Pass:
    """What a forward pass gave: the detectors' features (N, F), the logits (N, K) and the predictions (N,)."""

    features: np.ndarray
    logits: np.ndarray

    @property
    def pred(self) -> np.ndarray:
        return self.logits.argmax(axis=1)


def forward(
    model: nn.Module,
    data: ImageDataset,
    detector_layer: str,
    batch_size: int,
    layer: str | None = None,
    on_batch=None,
) -> Pass:
    """The detectors' inputs and the logits of every input (:func:`au.explain.density.layer_features`);
    with ``on_batch``, each batch's output of ``layer`` is handed to it."""
    return Pass(
        *layer_features(model, data.images, detector_layer, batch_size, watch=layer, on_batch=on_batch)
    )


def layer_statistics(
    model: nn.Module,
    data: ImageDataset,
    layer: str,
    detector_layer: str,
    shape: tuple[int, ...],
    batch_size: int,
) -> tuple[Pass, LayerStats]:
    """One pass over ``data``: the detectors' unperturbed inputs, and the perturbed layer's statistics."""
    total = torch.zeros(int(np.prod(shape)), dtype=torch.float64)
    squares = torch.zeros_like(total)

    def add(batch: torch.Tensor) -> None:
        flat = batch.double()
        total.add_(flat.sum(0))
        squares.add_((flat * flat).sum(0))

    clean = forward(model, data, detector_layer, batch_size, layer, on_batch=add)
    n = len(data)
    mean = total / n
    std = ((squares / n - mean * mean).clamp_min(0) * n / max(n - 1, 1)).sqrt()
    unit_means = mean.reshape(shape[0], -1).mean(dim=1).numpy()
    return clean, LayerStats(mean.reshape(shape).float(), std.reshape(shape).float(), unit_means)


@contextmanager
def perturbed(
    model: nn.Module, layer: str, setting: Setting, stats: LayerStats, seed: int, index: int
) -> Iterator[None]:
    """Within the block, ``layer``'s output is perturbed by ``setting`` (``index``: the setting's number, for the noise seed).

    The hook counts the rows it has seen, so each batch's noise is seeded by its first row.
    """
    seen = [0]

    def hook(_module, _inputs, output: torch.Tensor) -> torch.Tensor:
        out = output.clone()
        if setting.kind == "noise":
            if setting.sigma:
                state = np.random.SeedSequence([seed, index, seen[0]]).generate_state(1)[0]
                rng = torch.Generator().manual_seed(int(state))
                out += setting.sigma * stats.std * torch.randn(out.shape, generator=rng, dtype=out.dtype)
        else:
            units = torch.as_tensor(setting.units, dtype=torch.int64)
            out[:, units] = out[:, units] * float(setting.factor)
        seen[0] += len(output)
        return out

    handle = model.get_submodule(layer).register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def perturbed_pass(
    model: nn.Module,
    data: ImageDataset,
    layer: str,
    detector_layer: str,
    setting: Setting,
    stats: LayerStats,
    seed: int,
    index: int,
    batch_size: int,
) -> Pass:
    """The detectors' inputs and the logits of ``data`` with ``layer`` perturbed by ``setting``."""
    with perturbed(model, layer, setting, stats, seed, index):
        return forward(model, data, detector_layer, batch_size)
