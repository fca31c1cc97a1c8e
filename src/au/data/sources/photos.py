"""``photo-patches``: random crops of scikit-image's bundled colour photographs, natural-image OOD inputs.

Seven photographs ship inside scikit-image (no download): astronaut, coffee, chelsea (a cat), rocket,
immunohistochemistry, hubble_deep_field and retina. Each patch is a square crop of a random
photograph at a random position and a random side between ``crop`` and twice ``crop`` pixels,
resized to ``size`` (bilinear): textures, edges and colours of real scenes, none of them an object
of CIFAR-10's classes at its scale. Options: ``n`` (default 10000), ``crop`` (the smallest side of a
crop, default 32), ``seed`` (0); the common ``size`` (default 32x32) and ``channels`` apply as
everywhere. No labels; the only split is ``all``.
"""

from __future__ import annotations

import numpy as np

from au.data.dataset import NO_LABEL, ImageDataset
from au.data.spec import DataSpec
from au.data.transform import resize
from au.errors import AUError

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "retina")


def _photos() -> list[np.ndarray]:
    try:
        from skimage import data as bundled
    except ImportError:
        raise AUError("dataset 'photo-patches' needs scikit-image (scripts/setup.sh installs it)") from None
    return [getattr(bundled, name)()[..., :3] for name in PHOTOS]


def load_photo_patches(spec: DataSpec, split: str) -> ImageDataset:
    n, crop, seed = spec.int_option("n", 10000), spec.int_option("crop", 32), spec.int_option("seed", 0)
    if n <= 0 or crop <= 0:
        raise AUError(f"dataset {spec.text!r}: n and crop must be positive, got n={n}, crop={crop}")
    photos = _photos()
    h, w = spec.shape_option("size", (32, 32))[:2]
    rng = np.random.default_rng(seed)
    images = np.empty((n, h, w, 3), dtype=np.uint8)
    sources = rng.integers(0, len(photos), size=n)
    for i, k in enumerate(sources):
        photo = photos[k]
        side = int(rng.integers(crop, 2 * crop + 1))
        side = min(side, *photo.shape[:2])
        y, x = (int(rng.integers(0, photo.shape[j] - side + 1)) for j in (0, 1))
        images[i] = resize(photo[None, y : y + side, x : x + side], h, w)[0]
    return ImageDataset(
        images=images,
        labels=np.full(n, NO_LABEL, dtype=np.int64),
        ids=np.array([f"{PHOTOS[k]}-{i:06d}" for i, k in enumerate(sources)]),
        class_names=(),
        name=spec.text,
        split=split,
    )
