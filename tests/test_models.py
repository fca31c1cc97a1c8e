"""Registered models: named layers, no in-place ReLU, no module used twice, shapes as documented."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from au import AUError
from au.models import MODELS, build_model, layer_names, layer_output_shapes


@pytest.mark.parametrize("name", list(MODELS))
def test_every_leaf_module_runs_exactly_once(name):
    model = build_model(name)
    calls: dict[str, int] = {}
    handles = [
        module.register_forward_hook(lambda m, i, o, n=n: calls.__setitem__(n, calls.get(n, 0) + 1))
        for n, module in model.named_modules()
        if n and not list(module.children())
    ]
    try:
        out = model(torch.rand(2, *MODELS[name].input_shape))
    finally:
        for h in handles:
            h.remove()
    assert out.shape == (2, 10)
    assert calls == {n: 1 for n in layer_names(model)}


@pytest.mark.parametrize("name", list(MODELS))
def test_no_inplace_relu_and_meaningful_names(name):
    model = build_model(name)
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    assert relus and not any(m.inplace for m in relus)
    names = layer_names(model)
    assert {"conv1", "conv2", "fc1", "logits"} <= set(names)
    assert not any(n.isdigit() for n in names)


def test_mnist_cnn_shapes():
    shapes = layer_output_shapes(build_model("mnist-cnn"), (1, 28, 28))
    assert shapes["conv1"] == (32, 26, 26) and shapes["conv2"] == (64, 24, 24)
    assert shapes["flatten"] == (9216,) and shapes["fc1"] == (128,) and shapes["logits"] == (10,)


def test_models_adapt_to_input_shape_and_classes():
    model = build_model("mnist-cnn", (3, 32, 32), num_classes=4)
    assert model(torch.rand(1, 3, 32, 32)).shape == (1, 4)
    model = build_model("alexnet-cifar", (1, 28, 28), num_classes=3)  # 28 is not a multiple of 8: floors
    assert model(torch.rand(1, 1, 28, 28)).shape == (1, 3)


def test_same_seed_same_init_and_global_rng_untouched():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = build_model("mnist-cnn", seed=5)
    after = torch.rand(1)
    b = build_model("mnist-cnn", seed=5)
    assert torch.equal(before, after)
    assert all(
        torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def test_unknown_model():
    with pytest.raises(AUError, match="known: mnist-cnn"):
        build_model("resnet")


def test_shape_hooks_are_removed_on_failure():
    model = build_model("mnist-cnn")
    with pytest.raises(RuntimeError):
        layer_output_shapes(model, (1, 5, 5))
    assert all(not m._forward_hooks for m in model.modules())
