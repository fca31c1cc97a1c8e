"""Which ReLUs of a model captum can override: guided backprop and deconvnet see only ``nn.ReLU`` modules.

captum's :class:`~captum.attr.GuidedBackprop` and :class:`~captum.attr.Deconvolution` replace the
backward pass of every ``nn.ReLU`` *module*; a functional ``F.relu`` / ``torch.relu`` /
``Tensor.relu`` call inside some other module's ``forward`` keeps its ordinary gradient, and the
map silently becomes a mixture of the method and plain gradients. :func:`functional_relus` finds
such calls by running one forward pass under a ``TorchFunctionMode`` that notes each ReLU call and
the module it happened in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from au.errors import AUError

_RELUS = {F.relu, F.relu_, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_}


class _Watch(TorchFunctionMode):
    """Notes ReLU calls made while the innermost running module is not an ``nn.ReLU``."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, nn.Module]] = []
        self.found: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in _RELUS and not (self.stack and isinstance(self.stack[-1][1], nn.ReLU)):
            where = self.stack[-1][0] if self.stack else "the model's forward"
            if where not in self.found:
                self.found.append(where)
        return func(*args, **(kwargs or {}))


def functional_relus(model: nn.Module, input_shape: tuple[int, int, int]) -> list[str]:
    """Names of the modules whose ``forward`` calls a functional ReLU (one pass of zeros; hooks removed)."""
    watch = _Watch()
    handles = []
    try:
        for name, module in model.named_modules():
            label = name or type(model).__name__
            handles.append(
                module.register_forward_pre_hook(lambda m, _i, label=label: watch.stack.append((label, m)))
            )
            handles.append(module.register_forward_hook(lambda _m, _i, _o: watch.stack.pop() and None))
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad(), watch:
                model(torch.zeros(1, *input_shape))
        finally:
            model.train(was_training)
    finally:
        for handle in handles:
            handle.remove()
    return watch.found


def refuse_functional_relus(model: nn.Module, input_shape: tuple[int, int, int], what: str) -> None:
    """One line naming where the model calls a functional ReLU, for ``what`` (guided backprop, deconvnet)."""
    found = functional_relus(model, input_shape)
    if found:
        raise AUError(
            f"{what} cannot explain this model: it calls a functional ReLU (F.relu) in {', '.join(found)}, and "
            "captum overrides only nn.ReLU modules; make each ReLU an nn.ReLU module"
        )
