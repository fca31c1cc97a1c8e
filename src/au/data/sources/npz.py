"""``npz:PATH``: the user's arrays in a NumPy ``.npz`` file (read with ``allow_pickle=False``).

Arrays ``x`` (N, H, W) or (N, H, W, C) and ``y`` (N,) give the split ``all``; ``x_train``,
``y_train``, ``x_test``, ``y_test`` give ``train`` and ``test``. ``x`` is uint8 0..255, or float
in [0, 1] (scaled to 0..255). Optional: ``class_names`` (str array), ``ids`` / ``ids_train`` /
``ids_test`` (str arrays); ids default to ``<split>-<index>``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from au.data.dataset import ImageDataset
from au.data.spec import DataSpec
from au.errors import AUError


def _open(spec: DataSpec):
    if not spec.path:
        raise AUError("dataset 'npz' needs a path: npz:PATH to a .npz file with arrays x and y")
    path = Path(spec.path)
    if not path.is_file():
        raise AUError(f"dataset {spec.text!r}: {path} does not exist")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise AUError(f"{path}: not a readable .npz file without pickled objects ({e})") from None


def npz_splits(spec: DataSpec) -> tuple[str, ...]:
    with _open(spec) as f:
        keys = set(f.files)
    if {"x_train", "y_train", "x_test", "y_test"} <= keys:
        return ("train", "test")
    if {"x", "y"} <= keys:
        return ("all",)
    raise AUError(
        f"{spec.path}: needs arrays x and y (or x_train, y_train, x_test, y_test); it has {sorted(keys)}"
    )


def _images(x: np.ndarray, where: str) -> np.ndarray:
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[3] not in (1, 3):
        raise AUError(
            f"{where}: images must have shape (N, H, W) or (N, H, W, C) with C 1 or 3, got {x.shape}"
        )
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if (
        np.issubdtype(x.dtype, np.floating)
        and x.size
        and np.isfinite(x).all()
        and x.min() >= 0
        and x.max() <= 1
    ):
        return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
    if np.issubdtype(x.dtype, np.integer) and x.size and x.min() >= 0 and x.max() <= 255:
        return x.astype(np.uint8)
    raise AUError(f"{where}: images must be uint8 0..255 or float in [0, 1], got {x.dtype}")


def load_npz(spec: DataSpec, split: str) -> ImageDataset:
    suffix = "" if split == "all" else f"_{split}"
    with _open(spec) as f:
        try:
            x, y = f[f"x{suffix}"], f[f"y{suffix}"]
            names = f["class_names"] if "class_names" in f.files else None
            ids = f[f"ids{suffix}"] if f"ids{suffix}" in f.files else None
        except ValueError as e:
            raise AUError(
                f"{spec.path}: {e}; save plain numeric and str arrays (pickled objects are refused)"
            ) from None
    where = f"{spec.path} (x{suffix})"
    images = _images(x, where)
    if y.shape != (len(images),) or not np.issubdtype(y.dtype, np.integer):
        raise AUError(f"{spec.path}: y{suffix} must be {len(images)} integer labels, got {y.dtype} {y.shape}")
    labels = y.astype(np.int64)
    if names is None:
        count = int(labels.max()) + 1 if len(labels) else 0
        class_names = tuple(str(k) for k in range(count))
    else:
        class_names = tuple(str(n) for n in names.tolist())
    if ids is None:
        ids = np.array([f"{split}-{i:06d}" for i in range(len(images))])
    return ImageDataset(
        images=images,
        labels=labels,
        ids=np.asarray(ids).astype(str),
        class_names=class_names,
        name=spec.text,
        split=split,
    )
