"""``imagefolder:PATH``: the user's images, one sub-folder per class.

``PATH/<class>/<image>`` gives one split, ``all``. ``PATH/train/<class>/...`` and
``PATH/test/<class>/...`` give ``train`` and ``test``. Classes are the sub-folder names in sorted
order; an example's id is its path relative to PATH. Images are grey (C=1) when every image is
grey, else RGB (C=3). All images must share one size unless the option ``size=HxW`` resizes them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from au.data.dataset import ImageDataset
from au.data.spec import DataSpec
from au.errors import AUError

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}


def _root(spec: DataSpec) -> Path:
    if not spec.path:
        raise AUError(
            "dataset 'imagefolder' needs a path: imagefolder:PATH, a folder with one sub-folder per class"
        )
    root = Path(spec.path)
    if not root.is_dir():
        raise AUError(f"dataset {spec.text!r}: {root} is not a directory")
    return root


def imagefolder_splits(spec: DataSpec) -> tuple[str, ...]:
    root = _root(spec)
    if (root / "train").is_dir() and (root / "test").is_dir():
        return ("train", "test")
    return ("all",)


def load_imagefolder(spec: DataSpec, split: str) -> ImageDataset:
    root = _root(spec)
    base = root if split == "all" else root / split
    classes = sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise AUError(
            f"dataset {spec.text!r}: {base} has no class sub-folders (expected {base}/<class>/<image>)"
        )
    files: list[tuple[Path, int]] = []
    for label, name in enumerate(classes):
        found = sorted(p for p in (base / name).rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())
        files.extend((p, label) for p in found)
    if not files:
        raise AUError(f"dataset {spec.text!r}: no image files ({', '.join(sorted(EXTENSIONS))}) under {base}")
    size = spec.option("size")
    target = spec.shape_option("size", (0, 0))[:2] if size else None
    pixels: list[np.ndarray] = []
    for path, _ in files:
        try:
            with Image.open(path) as im:
                rgb = im.convert("RGB")
                if target:
                    rgb = rgb.resize((target[1], target[0]), Image.Resampling.BILINEAR)
                pixels.append(np.asarray(rgb))
        except (UnidentifiedImageError, OSError) as e:
            raise AUError(f"{path}: cannot read image ({e}); remove it or replace it") from None
        if pixels[-1].shape != pixels[0].shape:
            raise AUError(
                f"{path}: size {pixels[-1].shape[1]}x{pixels[-1].shape[0]} differs from {files[0][0]} "
                f"({pixels[0].shape[1]}x{pixels[0].shape[0]}); add the option size=HxW to resize all images"
            )
    images = np.stack(pixels)  # (N, H, W, 3)
    grey = bool((images[..., :1] == images[..., 1:]).all())
    if grey:
        images = np.ascontiguousarray(images[..., :1])
    return ImageDataset(
        images=images,
        labels=np.array([label for _, label in files], dtype=np.int64),
        ids=np.array([p.relative_to(root).as_posix() for p, _ in files]),
        class_names=tuple(classes),
        name=spec.text,
        split=split,
    )
