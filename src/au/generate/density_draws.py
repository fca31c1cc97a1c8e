"""Draws from the ``parzen_lsh`` kernel around training points of high and of low density (``au decode``).

:func:`kernel_draws` samples a fitted density's (``parzen_lsh``, :data:`au.detectors.registry.DENSITY`) Gaussian kernel around
given anchor activations; :func:`density_rows` picks the anchors - the held-out training points (not
among the kernel's centres) of highest and of lowest log-density - and decodes one draw around each
into the ``high_density`` and ``low_density`` rows of ``decoded.parquet`` (:mod:`au.generate.decode_tables`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from au.detectors.base import Detector  # the registry's density (au.detectors.registry.DENSITY), fitted
from au.generate.decode_tables import table_rows
from au.generate.decoder import decode, to_uint8

if TYPE_CHECKING:  # annotations only: the job imports this module
    from au.generate.decode_job import LayerInput, Rows, Scorer


def kernel_draws(
    density: Detector, layer: LayerInput, anchors: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """One draw from ``density``'s Gaussian kernel around each anchor activation (k, F): shape (k, F).

    Parzen (1962) windows: each draw takes one of the density's random partitionings at random and
    adds, in every partition S of it, noise N(0, h_S^2 I) in the standardised coordinates the kernel
    lives in (each neuron centred and scaled by its training deviation); neurons that never vary keep
    the anchor's value. A map's density reads its spatial average, so the draw's shift of each
    channel's average is added to every position of that channel: the drawn map's average is exactly a
    draw from the kernel around the anchor's.
    """
    base = layer.density_features(anchors).astype(np.float64)  # (k, d)
    active, mean, scale = density.active_, density.mean_, density.scale_
    z = (base[:, active] - mean) / scale
    for i, r in enumerate(rng.integers(len(density.partitionings_), size=len(base))):
        for p, idx in enumerate(density.partitionings_[r]):
            z[i, idx] += density.bandwidths_[r, p] * rng.standard_normal(len(idx))
    shift = np.zeros_like(base)
    shift[:, active] = mean + scale * z - base[:, active]
    anchors = np.asarray(anchors, dtype=np.float64)
    if layer.is_map:
        return (anchors.reshape(len(base), layer.shape[0], -1) + shift[:, :, None]).reshape(anchors.shape)
    return anchors + shift


def density_rows(
    decoder, scorer: Scorer, layer: LayerInput, x_train, train: Rows, density, config, index: int
) -> dict:
    """Decoded kernel draws around the ``samples`` held-out training points of highest and of lowest log-density."""
    held = np.setdiff1d(np.arange(len(x_train)), density.reference_index_)  # not among the kernel's centres
    held_density = density.score_samples(layer.density_features(x_train[held]))
    k = min(config.samples, len(held) // 2)
    order = np.argsort(-held_density, kind="stable")
    rng = np.random.default_rng([config.seed, index, 1])
    out = {"rows": [], "summary": {"samples": k, "heldout_training_points": len(held)}}
    for kind, chosen in (("high_density", order[:k]), ("low_density", order[::-1][:k])):
        anchors = held[chosen]
        targets = kernel_draws(density, layer, x_train[anchors], rng)
        images = to_uint8(decode(decoder, targets))
        scored = scorer(images, targets)
        sources = [[train.ids[a]] for a in anchors]
        out["rows"] += table_rows(layer.name, kind, images, scored, sources, label=train.labels[anchors])
        out[kind] = {"images": images, "scored": scored, "anchor_log_density": held_density[chosen]}
        out["summary"] |= {
            f"{kind}_anchor_log_density": float(held_density[chosen].mean()) if k else None,
            f"{kind}_target_log_density": float(scored["target_log_density"].mean()) if k else None,
            f"{kind}_decoded_log_density": float(scored["decoded_log_density"].mean()) if k else None,
            f"{kind}_msp": float(scored["probs"].max(axis=1).mean()) if k else None,  # maximum softmax
        }
    return out
