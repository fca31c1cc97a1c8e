"""A layer's features for explanation, and the ``parzen_lsh`` density over the training data that ranks them.

Features are the layer's output average-pooled over space, as ``au score`` records them, so a
density fitted here is the one the scores and the leaderboard use.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from au import progress
from au.activations.hooks import capture
from au.data import ImageDataset
from au.data.dataset import to_tensor
from au.detectors.parzen import ParzenLSH
from au.errors import AUError
from au.models.layers import eval_mode, layer_names, penultimate_layer
from au.score.sets import sample


def feature_layer(model: nn.Module, layer: str | None) -> str:
    """``layer`` checked against the model's layers, or the penultimate layer."""
    layer = layer or penultimate_layer(model)
    valid = layer_names(model)
    if layer not in valid:
        raise AUError(f"unknown layer {layer!r}; the model's layers are: {', '.join(valid)}")
    return layer


def layer_features(
    model: nn.Module, images: np.ndarray, layer: str, batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """(features (N, F) float32 of ``layer``, average-pooled over space; logits (N, K) float32)."""
    feats, logits = [], []
    with eval_mode(model), torch.inference_mode(), capture(model, [layer], "avg") as out:
        for lo in range(0, len(images), batch_size):
            logits.append(model(to_tensor(images[lo : lo + batch_size])).float().numpy())
            feats.append(out[layer].float().numpy())
    return np.concatenate(feats), np.concatenate(logits)


def fit_density(model: nn.Module, train: ImageDataset, layer: str, fit_limit: int, seed: int) -> tuple:
    """``parzen_lsh`` fitted on the features of at most ``fit_limit`` training examples (drawn with ``seed``).

    Returns (the fitted detector, the training examples it was fitted on).
    """
    fitted = sample(train, fit_limit, seed)
    progress.note(f"[explain] parzen_lsh density at {layer}: fitting on {len(fitted):,} training examples")
    features, _ = layer_features(model, fitted.images, layer)
    return ParzenLSH(seed=seed).fit(features), fitted
