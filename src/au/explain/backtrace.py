"""Low-density backtrace: in which partitions of neurons is an input unfamiliar, and which pixels make it so.

``parzen_lsh`` estimates a log-density per partition of a layer's neurons. For one input:

1. **Where.** Each partition's log-density becomes a z-score against the held-out training inputs'
   log-densities in that partition; the partitions of lowest z are where the input is least covered.
   (The held-out inputs also chose each partition's bandwidth, so their log-densities are a little
   optimistic and z leans a little low; the ranking of partitions is unaffected.)
2. **Who is near.** The input's nearest training examples in each such partition (faiss, exact L2
   in the partition's standardised coordinates), shown as images with their ids.
3. **Which pixels.** The partition's novelty ``-log p_S`` is attributed to the pixels with
   Integrated Gradients (Sundararajan et al. 2017, arXiv 1703.01365, through captum) along the
   straight path from the input's nearest training example in that partition to the input. By
   completeness the map sums to ``novelty(x) - novelty(neighbour)`` (``novelty_gain``): what the
   input's pixels add to its unfamiliarity beyond the closest familiar image.
"""

from __future__ import annotations

import faiss
import numpy as np
import torch
from captum.attr import IntegratedGradients
from torch import nn

from au.activations.hooks import capture
from au.data import ImageDataset
from au.data.dataset import to_tensor
from au.detectors.base import Detector  # the registry's density (au.detectors.registry.DENSITY), fitted
from au.explain.config import BacktraceConfig
from au.explain.density import layer_features
from au.models.layers import eval_mode


def partition_z(
    density: Detector, features: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(log-density, held-out mean, held-out std, z) of one input (1, d) in every partition: four (R, P) arrays.

    Partitionings with fewer partitions than the widest one hold NaN where they have none.
    """
    log_density = density.partition_log_densities(features, method="exact")[0]
    held = density.heldout_partition_log_densities_
    mean, std = held.mean(axis=0), held.std(axis=0, ddof=1)
    present = np.zeros(log_density.shape, dtype=bool)
    for r, parts in enumerate(density.partitionings_):
        present[r, : len(parts)] = True
    z = np.where(present, (log_density - mean) / np.where(std > 0, std, 1.0), np.nan)
    return log_density, mean, std, z


def nearest(density: Detector, features: np.ndarray, r: int, p: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(distances (k,), fitted-row indices (k,)) of the input's ``k`` nearest references in partition (r, p)."""
    ref = np.ascontiguousarray(density.reference_[:, density.partitionings_[r][p]], dtype=np.float32)
    index = faiss.IndexFlatL2(ref.shape[1])
    index.add(ref)
    query = density.partition_coordinates(features, r, p).astype(np.float32)
    d2, rows = index.search(query, min(k, len(ref)))
    return np.sqrt(np.maximum(d2[0], 0.0)).astype(np.float64), density.reference_index_[rows[0]]


def novelty(model: nn.Module, density: Detector, layer: str, r: int, p: int):
    """``images (N, C, H, W) -> -log p_S(features of layer)`` (N,), differentiable: the function IG attributes."""

    def forward(x: torch.Tensor) -> torch.Tensor:
        with capture(model, [layer], "avg", detach=False) as out:
            model(x)
            return -density.partition_log_density_torch(out[layer].double(), r, p).float()

    return forward


def backtrace_input(
    model: nn.Module,
    density: Detector,
    fitted: ImageDataset,
    image: np.ndarray,
    layer: str,
    config: BacktraceConfig,
) -> list[dict]:
    """The ``config.partitions`` partitions of lowest z for ``image`` (uint8 (H, W, C)), lowest first.

    Each is a dict: partitioning, partition, neurons, log_density, heldout_mean, heldout_std, z,
    neighbours (ids in ``fitted``, nearest first), neighbour_distances, neighbour_rows,
    novelty_gain and map (C, H, W) float32.
    """
    features, _ = layer_features(model, image[None], layer)
    log_density, mean, std, z = partition_z(density, features)
    present = int(np.isfinite(z).sum())
    order = np.argsort(np.where(np.isnan(z), np.inf, z), axis=None, kind="stable")[
        : min(config.partitions, present)
    ]
    x = to_tensor(image[None])
    parts = []
    with eval_mode(model):
        for flat in order:
            r, p = (int(i) for i in np.unravel_index(flat, z.shape))
            distances, rows = nearest(density, features, r, p, config.neighbours)
            baseline = to_tensor(fitted.images[rows[:1]])
            f = novelty(model, density, layer, r, p)
            ig = IntegratedGradients(f)
            attribution = ig.attribute(x.clone(), baselines=baseline, n_steps=config.ig_steps)
            with torch.no_grad():
                gain = float(f(x)[0] - f(baseline)[0])
            parts.append(
                {
                    "partitioning": r,
                    "partition": p,
                    "neurons": density.partition_neurons(r, p).astype(np.int32),
                    "log_density": float(log_density[r, p]),
                    "heldout_mean": float(mean[r, p]),
                    "heldout_std": float(std[r, p]),
                    "z": float(z[r, p]),
                    "neighbours": [str(i) for i in fitted.ids[rows]],
                    "neighbour_distances": distances.tolist(),
                    "neighbour_rows": rows,
                    "novelty_gain": gain,
                    "map": attribution.detach()[0].float().numpy(),
                }
            )
    return parts
