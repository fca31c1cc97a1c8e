"""Capture named layers' outputs during a forward pass, pooled as they are produced.

Hooks are registered on entry and removed on exit, also when the forward pass fails; pooling happens
inside the hook, so a conv map is reduced to one value per channel before the next layer runs and
the full map is never kept.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from au.errors import AUError
from au.models.layers import layer_names


def pool_output(output: torch.Tensor, pool: str) -> torch.Tensor:
    """(N, C, *spatial) -> (N, C) by mean or max over space under ``avg`` / ``max``; else flattened (N, F)."""
    if output.ndim <= 2 or pool == "none":
        return output.reshape(output.shape[0], -1)
    spatial = tuple(range(2, output.ndim))
    if pool == "max":
        return output.amax(dim=spatial)
    return output.sum(dim=spatial).mul_(
        1.0 / math.prod(output.shape[2:])
    )  # the mean; sum is the faster kernel


def resolve_layers(model: nn.Module, requested: list[str] | str) -> list[str]:
    """Validate layer names against the model's leaf modules; ``"all"`` means every one of them."""
    valid = layer_names(model)
    if requested == "all" or requested == ["all"]:
        return valid
    names = [
        r.strip() for r in (requested.split(",") if isinstance(requested, str) else requested) if r.strip()
    ]
    if not names:
        raise AUError(f"no layers given; valid layers: {', '.join(valid)} (or 'all')")
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise AUError(f"unknown layer {unknown[0]!r}; valid layers: {', '.join(valid)} (or 'all')")
    if len(set(names)) != len(names):
        raise AUError(f"layers repeat: {', '.join(names)}")
    return names


@contextmanager
def capture(
    model: nn.Module, layers: list[str], pool: str, detach: bool = True
) -> Iterator[dict[str, torch.Tensor]]:
    """Within the block, every forward pass fills the yielded dict with ``name -> pooled output (N, F)``.

    With ``detach=False`` the pooled outputs stay in the autograd graph (for gradients w.r.t. the input).
    """
    outputs: dict[str, torch.Tensor] = {}
    handles = []

    def hook_for(name: str):
        def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            outputs[name] = pool_output(output.detach() if detach else output, pool)

        return hook

    try:
        for name in layers:
            handles.append(model.get_submodule(name).register_forward_hook(hook_for(name)))
        yield outputs
    finally:
        for handle in handles:
            handle.remove()
