"""The named layers of any ``nn.Module``, and the shape of what each one outputs."""

from __future__ import annotations

import torch
from torch import nn


def layer_names(model: nn.Module) -> list[str]:
    """Names of the model's leaf modules in registration order: the layers AU can hook."""
    return [name for name, module in model.named_modules() if name and not list(module.children())]


def layer_output_shapes(model: nn.Module, input_shape: tuple[int, int, int]) -> dict[str, tuple[int, ...]]:
    """Output shape (without the batch axis) of every leaf layer, from one forward pass of zeros.

    Hooks are removed and the model's ``training`` flag restored even if the forward pass fails.
    """
    shapes: dict[str, tuple[int, ...]] = {}
    handles = []

    def remember(name: str):
        def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            shapes.setdefault(name, tuple(output.shape[1:]))

        return hook

    was_training = model.training
    try:
        for name, module in model.named_modules():
            if name and not list(module.children()):
                handles.append(module.register_forward_hook(remember(name)))
        model.eval()
        with torch.inference_mode():
            model(torch.zeros(1, *input_shape))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return shapes


def weighted_layers(model: nn.Module) -> list[str]:
    """Named layers with weights of their own, before ``logits`` (all of them when there is no ``logits``)."""
    names = layer_names(model)
    names = names[: names.index("logits")] if "logits" in names else names
    return [n for n in names if any(True for _ in model.get_submodule(n).parameters(recurse=False))]
