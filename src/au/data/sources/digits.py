"""scikit-learn's bundled 8x8 digits (1,797 images), scaled to 0..255 and resized to 28x28.

A small, offline, MNIST-like set of a different origin: useful as near-distribution data.
The source has no train/test split: its only split is ``all``.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from au.data.dataset import ImageDataset
from au.data.spec import DataSpec


def load_digits(spec: DataSpec, split: str) -> ImageDataset:
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    size = spec.shape_option("size", (28, 28))[:2]
    small = np.clip(np.rint(bunch.images * (255.0 / 16.0)), 0, 255).astype(
        np.uint8
    )  # (N, 8, 8), 0..16 -> 0..255
    images = np.stack(
        [
            np.asarray(Image.fromarray(im).resize((size[1], size[0]), Image.Resampling.BILINEAR))
            for im in small
        ]
    )
    return ImageDataset(
        images=images[..., None],
        labels=bunch.target.astype(np.int64),
        ids=np.array([f"all-{i:04d}" for i in range(len(images))]),
        class_names=tuple(str(d) for d in range(10)),
        name=spec.text,
        split=split,
    )
