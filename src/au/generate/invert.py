"""Inversion by optimisation: the input image whose activations at a layer match a target.

Mahendran & Vedaldi 2015, "Understanding deep image representations by inverting them"
(arXiv 1412.0035): for a target activation phi0 = phi(x0), find

    x* = argmin_x  ||phi(x) - phi0||^2 / ||phi0||^2  +  lambda_TV * TV_beta(x)  +  lambda_alpha * ||x - 1/2||_alpha^alpha

over images x in [0, 1], here parametrised as x = sigmoid(u) and optimised in u with Adam, from a
seeded start near uniform grey. The total variation ``TV_beta`` (beta = 2: the squared differences
of neighbouring pixels) and the alpha-norm are means over pixels, so their weights do not depend on
the image size. Each image's loss depends on its own pixels only (the model runs in eval mode), so a
batch of targets is inverted at once and each image follows the path it would follow alone.

The model is left as it was found: eval mode only for the call, hooks removed, no gradient stored in
its parameters (only the image's gradient is asked for).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from au import progress
from au.activations.hooks import capture
from au.models.layers import eval_mode

START_STD = 0.1
"""Deviation of the starting logits u: the start is grey with a little seeded noise."""


@dataclass(frozen=True)
class Inversion:
    """Inverted images and how close their activations came.

    Attributes
    ----------
    images : ndarray, shape (N, C, H, W)
        float32 in [0, 1].
    start_error, feature_error : ndarray, shape (N,)
        Relative feature error ``||phi(x) - phi0|| / ||phi0||`` of the starting image and of the result.
    seconds : float
        Wall time of the optimisation, all images together.
    """

    images: np.ndarray
    start_error: np.ndarray
    feature_error: np.ndarray
    seconds: float


def total_variation(x: torch.Tensor, beta: float = 2.0) -> torch.Tensor:
    """TV_beta of images (N, C, H, W): the mean over pixels of (dx^2 + dy^2)^(beta/2), shape (N,).

    Mahendran & Vedaldi 2015 (arXiv 1412.0035), eq. 4, with forward differences (zero past the edge).
    """
    dx = torch.zeros_like(x)
    dy = torch.zeros_like(x)
    dx[..., :, :-1] = x[..., :, 1:] - x[..., :, :-1]
    dy[..., :-1, :] = x[..., 1:, :] - x[..., :-1, :]
    squared = dx.pow(2) + dy.pow(2)
    tv = squared if beta == 2.0 else squared.clamp_min(1e-12).pow(beta / 2)
    return tv.flatten(1).mean(dim=1)


def features_of(model: torch.nn.Module, layer: str, pool: str, images: torch.Tensor) -> torch.Tensor:
    """``layer``'s output for ``images`` (N, C, H, W), pooled as recorded: (N, F), in the autograd graph."""
    with capture(model, [layer], pool, detach=False) as out:
        model(images)
    return out[layer]


def relative_error(features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """||features - targets|| / ||targets|| per row, shape (N,) (a zero target counts as norm 1e-12)."""
    return (features - targets).norm(dim=1) / targets.norm(dim=1).clamp_min(1e-12)


def invert(
    model: torch.nn.Module,
    layer: str,
    pool: str,
    targets: np.ndarray,
    image_shape: tuple[int, int, int],
    *,
    steps: int,
    lr: float,
    tv_weight: float,
    alpha: float = 6.0,
    alpha_weight: float = 0.0,
    seed: int = 0,
    batch_size: int = 64,
) -> Inversion:
    """Invert ``targets`` (N, F) - activations of ``layer`` pooled by ``pool`` - to images (N, C, H, W).

    Mahendran & Vedaldi 2015 (arXiv 1412.0035): Adam on u, x = sigmoid(u), minimising
    ``||phi(x) - phi0||^2 / ||phi0||^2 + tv_weight * TV_2(x) + alpha_weight * mean(|2x - 1|^alpha)``.
    The start u ~ N(0, 0.1^2) is drawn with ``seed``; batches of ``batch_size`` targets run together.
    """
    images, start, final = [], [], []
    started = time.perf_counter()
    g = torch.Generator().manual_seed(seed)
    with (
        eval_mode(model),
        torch.enable_grad(),
        progress.bar(len(targets) * steps, f"invert {layer}", "step") as bar,
    ):
        for lo in range(0, len(targets), batch_size):
            phi0 = torch.from_numpy(np.array(targets[lo : lo + batch_size], dtype=np.float32))
            u = (START_STD * torch.randn((len(phi0), *image_shape), generator=g)).requires_grad_()
            norm = phi0.pow(2).sum(dim=1).clamp_min(1e-12)  # (B,)
            opt = torch.optim.Adam([u], lr=lr)
            with torch.no_grad():
                start.append(relative_error(features_of(model, layer, pool, torch.sigmoid(u)), phi0))
            for _ in range(steps):
                x = torch.sigmoid(u)  # (B, C, H, W) in (0, 1)
                match = (features_of(model, layer, pool, x) - phi0).pow(2).sum(dim=1) / norm
                loss = match + tv_weight * total_variation(x)
                if alpha_weight > 0:
                    loss = loss + alpha_weight * (2 * x - 1).abs().pow(alpha).flatten(1).mean(dim=1)
                (grad,) = torch.autograd.grad(loss.sum(), u)
                u.grad = grad
                opt.step()
                bar.update(len(phi0))
            with torch.no_grad():
                x = torch.sigmoid(u)
                final.append(relative_error(features_of(model, layer, pool, x), phi0))
                images.append(x.numpy().copy())
    return Inversion(
        images=np.concatenate(images) if images else np.zeros((0, *image_shape), dtype=np.float32),
        start_error=torch.cat(start).numpy() if start else np.zeros(0),
        feature_error=torch.cat(final).numpy() if final else np.zeros(0),
        seconds=time.perf_counter() - started,
    )
