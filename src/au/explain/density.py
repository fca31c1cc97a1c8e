"""A layer's features for explanation, and the ``parzen_lsh`` density over the training data that ranks them.

Features are the layer's output average-pooled over space, as ``au score`` records them, so a
density fitted here is the one the scores and the leaderboard use.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from au import progress
from au.activations.hooks import capture
from au.data import ImageDataset
from au.data.dataset import to_tensor
from au.detectors import registry
from au.models.layers import check_layer, eval_mode, penultimate_layer
from au.score.sets import sample


def feature_layer(model: nn.Module, layer: str | None) -> str:
    """``layer`` checked against the model's layers, or the penultimate layer."""
    return check_layer(model, layer or penultimate_layer(model))


def layer_features(
    model: nn.Module,
    images: np.ndarray,
    layer: str,
    batch_size: int = 256,
    watch: str | None = None,
    on_batch: Callable[[torch.Tensor], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(features (N, F) float32 of ``layer``, average-pooled over space; logits (N, K) float32), in batches.

    With ``on_batch``, each batch's output of the layer ``watch``, flattened to (B, F), is handed to
    it. Hooks entered before the call (a perturbation) act on the pass.
    """
    feats, logits = [], []
    watched = [watch] if on_batch is not None else []
    with (
        eval_mode(model),
        torch.inference_mode(),
        capture(model, [layer], "avg") as out,
        capture(model, watched, "none") as raw,
    ):
        for lo in range(0, len(images), batch_size):
            logits.append(model(to_tensor(images[lo : lo + batch_size])).float().numpy().copy())
            feats.append(out[layer].float().numpy().copy())  # owned: see batch_columns (record)
            if on_batch is not None:
                on_batch(raw[watch])
    return np.concatenate(feats), np.concatenate(logits)


def fit_density(model: nn.Module, train: ImageDataset, layer: str, fit_limit: int, seed: int) -> tuple:
    """The registry's density (``parzen_lsh``) fitted on the features of at most ``fit_limit`` training examples (drawn with ``seed``).

    Returns (the fitted detector, the training examples it was fitted on).
    """
    fitted = sample(train, fit_limit, seed)
    progress.note(f"[explain] parzen_lsh density at {layer}: fitting on {len(fitted):,} training examples")
    features, _ = layer_features(model, fitted.images, layer)
    return registry.density(seed).fit(features), fitted
