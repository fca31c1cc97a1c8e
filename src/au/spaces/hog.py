"""Histograms of oriented gradients (Dalal & Triggs 2005), via scikit-image's ``skimage.feature.hog``.

Cells of 4x4 pixels (a 28x28 image has 7x7 cells, 32x32 has 8x8), 9 unsigned orientations, blocks of
2x2 cells with L2-Hys normalisation; colour images take, per pixel, the channel of largest gradient
(scikit-image's ``channel_axis``), as Dalal & Triggs do.
"""

from __future__ import annotations

import numpy as np

from au import progress


class HOG:
    """Images (N, H, W, C) uint8 -> float32 (N, d) HOG descriptors."""

    name = "hog"

    def __init__(self, cell: int = 4, orientations: int = 9, block: int = 2) -> None:
        self.cell, self.orientations, self.block = cell, orientations, block

    def fit(self, images: np.ndarray) -> HOG:
        return self

    def transform(self, images: np.ndarray) -> np.ndarray:
        from skimage.feature import hog

        colour = images.shape[3] == 3
        out = []
        with progress.bar(len(images), "hog", "img") as pbar:
            for image in images:
                pbar.update(1)
                out.append(
                    hog(
                        image if colour else image[..., 0],
                        orientations=self.orientations,
                        pixels_per_cell=(self.cell, self.cell),
                        cells_per_block=(self.block, self.block),
                        channel_axis=-1 if colour else None,
                        feature_vector=True,
                    ).astype(np.float32)
                )
        return np.stack(out)
