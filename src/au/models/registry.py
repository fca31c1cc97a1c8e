"""Models by name. The registry is a convenience: every AU stage also takes any ``torch.nn.Module``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from au.errors import AUError
from au.models.alexnet_cifar import AlexNetCifar
from au.models.mnist_cnn import MnistCNN


@dataclass(frozen=True)
class ModelSpec:
    """A registered architecture and the training settings it was tuned with."""

    name: str
    build: Callable[[tuple[int, int, int], int], nn.Module]
    input_shape: tuple[int, int, int]
    summary: str
    train_defaults: dict = field(default_factory=dict)


MODELS: dict[str, ModelSpec] = {
    m.name: m
    for m in [
        ModelSpec(
            "mnist-cnn",
            MnistCNN,
            (1, 28, 28),
            "two 3x3 convolutions, max-pool, two fully connected layers (Keras mnist_cnn)",
            {"epochs": 4, "batch_size": 64, "lr": 2e-3},
        ),
        ModelSpec(
            "alexnet-cifar",
            AlexNetCifar,
            (3, 32, 32),
            "AlexNet-style: five convolutions with batch normalisation, three max-pools, three fully connected layers, "
            "for 32x32 colour",
            {"epochs": 15, "batch_size": 128, "lr": 1e-3, "augment": "crop-flip"},
        ),
    ]
}


def model_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise AUError(f"unknown model {name!r}; known: {', '.join(MODELS)} (see 'au models')")
    return MODELS[name]


def build_model(
    name: str, input_shape: tuple[int, int, int] | None = None, num_classes: int = 10, seed: int = 0
) -> nn.Module:
    """A freshly initialised registered model; same seed, same initial weights.

    Parameters
    ----------
    name : str
        A registry name (``au models`` lists them).
    input_shape : (C, H, W), optional
        Shape of one input; defaults to the architecture's own (1x28x28 or 3x32x32).
    num_classes : int
    seed : int
        Seeds the initialisation without disturbing the caller's global RNG.
    """
    spec = model_spec(name)
    shape = tuple(input_shape) if input_shape is not None else spec.input_shape
    if num_classes < 2:
        raise AUError(f"model {name!r}: needs at least 2 classes, got {num_classes}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            model = spec.build(shape, num_classes)
        except (RuntimeError, ValueError) as e:
            raise AUError(f"model {name!r} cannot take inputs of shape {shape} (C, H, W): {e}") from None
    model.au_name = name  # type: ignore[attr-defined]
    return model
