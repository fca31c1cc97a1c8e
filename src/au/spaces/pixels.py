"""Raw pixels: each image flattened to H*W*C values in [0, 1] - the space with no learning at all."""

from __future__ import annotations

import numpy as np


class Pixels:
    """Images (N, H, W, C) uint8 -> float32 (N, H*W*C) in [0, 1]."""

    name = "pixels"

    def fit(self, images: np.ndarray) -> Pixels:
        return self

    def transform(self, images: np.ndarray) -> np.ndarray:
        return images.reshape(len(images), -1).astype(np.float32) / 255.0
