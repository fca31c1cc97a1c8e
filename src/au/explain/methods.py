"""Input attributions, every one computed by captum: one small function per method, one table of them.

Each method maps a batch of inputs (N, C, H, W) and a target class per input (N,) to a map of the
same shape - Grad-CAM's has one channel - saying how each pixel bears on the target's logit.
:func:`attribute` runs the chosen methods over a dataset's images in batches, with the model in
eval mode for the duration (its ``training`` flag restored after), captum's ReLU hooks removed in
its own ``finally`` even when a forward pass fails, and guided backprop and deconvnet refused for
a model whose ReLUs captum cannot see (:mod:`au.explain.relus`).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from captum.attr import (
    Deconvolution,
    GuidedBackprop,
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    NoiseTunnel,
    Saliency,
)
from torch import nn

from au.data.dataset import to_tensor
from au.errors import AUError
from au.explain.config import ExplainConfig, check_methods
from au.explain.relus import refuse_functional_relus
from au.models.layers import eval_mode, layer_names, layer_output_shapes


def saliency(model: nn.Module, x: torch.Tensor, target: torch.Tensor, config: ExplainConfig, layer=None):
    """Gradient saliency ``|d f_t / d x|`` (Simonyan, Vedaldi & Zisserman 2014, arXiv 1312.6034): captum ``Saliency``.

    Absolute by default, as in the paper; ``config.signed_saliency`` keeps the gradient's sign.
    """
    return Saliency(model).attribute(x, target=target, abs=not config.signed_saliency)


def guided_backprop(model, x, target, config, layer=None):
    """Guided backpropagation (Springenberg et al. 2015, arXiv 1412.6806): captum ``GuidedBackprop``.

    The gradient, with negative gradients zeroed at every ReLU on the way back (as well as where the
    ReLU's input was negative).
    """
    return GuidedBackprop(model).attribute(x, target=target)


def deconvnet(model, x, target, config, layer=None):
    """Deconvnet (Zeiler & Fergus 2014, arXiv 1311.2901): captum ``Deconvolution``.

    Back through each ReLU passes ``relu(gradient)``, whatever the ReLU's input was.
    """
    return Deconvolution(model).attribute(x, target=target)


IG_CHUNK = 128
"""Path points per forward pass inside Integrated Gradients: measured on mnist-cnn (16 inputs, 200 steps),
1.5x faster than all 3,200 at once."""


def integrated_gradients(model, x, target, config, layer=None):
    """Integrated Gradients from a black image (Sundararajan, Taly & Yan 2017, arXiv 1703.01365).

    captum ``IntegratedGradients`` with ``config.ig_steps`` Gauss-Legendre steps; the maps sum to
    ``f_t(x) - f_t(0)`` up to the integration error (completeness).
    """
    ig = IntegratedGradients(model)
    return ig.attribute(
        x, baselines=torch.zeros_like(x), target=target, n_steps=config.ig_steps, internal_batch_size=IG_CHUNK
    )


def smoothgrad(model, x, target, config, layer=None):
    """SmoothGrad (Smilkov et al. 2017, arXiv 1706.03825): captum ``NoiseTunnel`` over ``Saliency``.

    The mean of the (signed) gradient over ``config.smoothgrad_samples`` copies of the input with
    Gaussian noise of standard deviation ``config.smoothgrad_noise`` (inputs lie in [0, 1]), drawn
    from torch's generator, which :func:`attribute` seeds for each batch from ``config.seed``.
    """
    return NoiseTunnel(Saliency(model)).attribute(
        x,
        nt_type="smoothgrad",
        nt_samples=config.smoothgrad_samples,
        stdevs=config.smoothgrad_noise,
        target=target,
        abs=False,
    )


def gradcam(model, x, target, config, layer=None):
    """Grad-CAM (Selvaraju et al. 2017, arXiv 1610.02391) at the map layer ``layer``: captum ``LayerGradCam``.

    ``relu(sum_k alpha_k A^k)`` with ``alpha_k`` the spatial mean of the target's gradient on
    channel k, upsampled bilinearly to the input's height and width: shape (N, 1, H, W).
    """
    cam = LayerGradCam(model, model.get_submodule(layer)).attribute(x, target=target, relu_attributions=True)
    return LayerAttribution.interpolate(cam, tuple(x.shape[2:]), "bilinear")


@dataclass(frozen=True)
class Method:
    """An attribution method: how to run it, whether its maps carry a sign, and what it needs of the model."""

    name: str
    run: Callable
    signed: bool
    needs_relu_modules: bool = False
    needs_conv_layer: bool = False


METHOD_TABLE = {
    m.name: m
    for m in (
        Method("saliency", saliency, signed=False),  # signed with config.signed_saliency
        Method("guided_backprop", guided_backprop, signed=True, needs_relu_modules=True),
        Method("deconvnet", deconvnet, signed=True, needs_relu_modules=True),
        Method("integrated_gradients", integrated_gradients, signed=True),
        Method("smoothgrad", smoothgrad, signed=True),
        Method("gradcam", gradcam, signed=False, needs_conv_layer=True),
    )
}


def is_signed(name: str, config: ExplainConfig) -> bool:
    """Whether method ``name``'s maps carry a sign under ``config`` (drawn on a diverging scale)."""
    return METHOD_TABLE[name].signed or (name == "saliency" and config.signed_saliency)


def map_layers(model: nn.Module, shapes: dict[str, tuple[int, ...]]) -> list[str]:
    """Named layers whose output is a (C, H, W) map (``shapes``: :func:`layer_output_shapes`): where Grad-CAM can look."""
    return [n for n in layer_names(model) if len(shapes.get(n, ())) == 3]


def default_gradcam_layer(model: nn.Module, shapes: dict[str, tuple[int, ...]]) -> str | None:
    """The last ``Conv2d``'s activation map: the layer right after it when that layer only applies an
    activation function (same shape, no weights), as the paper takes the rectified maps; else the conv itself."""
    convs = [n for n in map_layers(model, shapes) if isinstance(model.get_submodule(n), nn.Conv2d)]
    if not convs:
        return None
    names = layer_names(model)
    after = names.index(convs[-1]) + 1
    if after < len(names):
        nxt = names[after]
        module = model.get_submodule(nxt)
        if shapes.get(nxt) == shapes[convs[-1]] and not any(True for _ in module.parameters()):
            if type(module).__module__ == "torch.nn.modules.activation":
                return nxt
    return convs[-1]


def check_model(model: nn.Module, methods, input_shape: tuple[int, int, int], gradcam_layer: str | None):
    """Refuse what the methods cannot do with this model; return Grad-CAM's layer (None if unused)."""
    relu_methods = [name for name in methods if METHOD_TABLE[name].needs_relu_modules]
    if relu_methods:
        refuse_functional_relus(model, input_shape, " and ".join(relu_methods))
    if not any(METHOD_TABLE[name].needs_conv_layer for name in methods):
        return None
    shapes = layer_output_shapes(model, input_shape)
    if gradcam_layer is None:
        layer = default_gradcam_layer(model, shapes)
        if layer is None:
            raise AUError("gradcam needs a Conv2d layer and this model has none; leave gradcam out")
        return layer
    maps = map_layers(model, shapes)
    if gradcam_layer not in maps:
        raise AUError(
            f"--gradcam-layer {gradcam_layer!r} does not output a (C, H, W) map; the model's map layers: "
            f"{', '.join(maps) or 'none'}"
        )
    return gradcam_layer


def completeness_error(model: nn.Module, images: np.ndarray, targets: np.ndarray, maps: np.ndarray) -> float:
    """Largest ``|sum(map) - (f_t(x) - f_t(0))| / |f_t(x) - f_t(0)|`` over the inputs: how far Integrated
    Gradients' maps are from complete (0 for an exact integral)."""
    x = to_tensor(images)
    with eval_mode(model), torch.inference_mode():
        gap = (model(x) - model(torch.zeros_like(x))).double().numpy()[np.arange(len(x)), targets]
    sums = maps.reshape(len(maps), -1).astype(np.float64).sum(axis=1)
    return float(np.max(np.abs(sums - gap) / np.maximum(np.abs(gap), 1e-12))) if len(x) else 0.0


def attribute(
    model: nn.Module,
    images: np.ndarray | torch.Tensor,
    targets: np.ndarray,
    methods=None,
    config: ExplainConfig = ExplainConfig(),
    seconds: dict[str, float] | None = None,
) -> dict[str, np.ndarray]:
    """Attribution maps of ``images`` for their ``targets``, one float32 array (N, C', H, W) per method.

    Parameters
    ----------
    model : nn.Module
        Any classifier taking float32 (N, C, H, W) in [0, 1]; left in the mode it was found in.
    images : uint8 ndarray (N, H, W, C), or float32 tensor (N, C, H, W) in [0, 1]
    targets : int ndarray (N,)
        The class whose logit each input's map explains.
    methods : names from :data:`au.explain.config.METHODS` (default ``config.methods``)
    seconds : dict, optional
        Filled with each method's time in seconds.
    """
    methods = check_methods(methods or config.methods)
    x_all = to_tensor(images) if isinstance(images, np.ndarray) else images.float()
    layer = check_model(model, methods, tuple(x_all.shape[1:]), config.gradcam_layer)
    targets = torch.from_numpy(np.array(targets, dtype=np.int64))  # a copy: targets may be read-only
    out: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    timing = {m: 0.0 for m in methods}
    with eval_mode(model), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
        for lo in range(0, len(x_all), config.batch_size):
            x = x_all[lo : lo + config.batch_size].clone().requires_grad_()
            t = targets[lo : lo + config.batch_size]
            for name in methods:
                start = time.perf_counter()
                with torch.random.fork_rng(devices=[]):  # SmoothGrad's noise: per batch, from the seed
                    torch.manual_seed(int(np.random.SeedSequence([config.seed, lo]).generate_state(1)[0]))
                    maps = METHOD_TABLE[name].run(model, x, t, config, layer)
                out[name].append(maps.detach().float().numpy().copy())
                timing[name] += time.perf_counter() - start
    if seconds is not None:
        seconds.update(timing)
    return {
        m: np.concatenate(v) if v else np.zeros((0, *x_all.shape[1:]), np.float32) for m, v in out.items()
    }
