"""Seeded noise images: obvious out-of-distribution inputs of any shape and count.

``noise-gaussian``: pixels ~ N(127.5, 64^2), rounded and clipped to 0..255.
``noise-uniform``: pixels uniform on 0..255.
Options: ``n`` (count, default 10000), ``shape`` (HxW or HxWxC, default 28x28x1), ``seed`` (0).
Images have no labels (label -1). The only split is ``all``.
"""

from __future__ import annotations

import numpy as np

from au.data.dataset import NO_LABEL, ImageDataset
from au.data.spec import DataSpec
from au.errors import AUError

DEFAULT_SHAPE = (28, 28, 1)


def noise_shape(spec: DataSpec) -> tuple[int, int, int]:
    shape = spec.shape_option("shape", DEFAULT_SHAPE)
    if len(shape) == 2:
        shape = (*shape, 1)
    if len(shape) != 3 or shape[2] not in (1, 3):
        raise AUError(f"dataset {spec.text!r}: shape must be HxW or HxWxC with C 1 or 3, got {shape}")
    return shape  # type: ignore[return-value]


def load_noise(spec: DataSpec, split: str) -> ImageDataset:
    n = spec.int_option("n", 10000)
    seed = spec.int_option("seed", 0)
    if n <= 0:
        raise AUError(f"dataset {spec.text!r}: n must be positive, got {n}")
    shape = noise_shape(spec)
    rng = np.random.default_rng(seed)
    if spec.name == "noise-gaussian":
        pixels = rng.normal(127.5, 64.0, size=(n, *shape))
    else:
        pixels = rng.integers(0, 256, size=(n, *shape))
    images = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    return ImageDataset(
        images=images,
        labels=np.full(n, NO_LABEL, dtype=np.int64),
        ids=np.array([f"all-{i:06d}" for i in range(n)]),
        class_names=(),
        name=spec.text,
        split=split,
    )
