"""AU's one in-memory form of an image dataset.

Every loader returns an :class:`ImageDataset`; every later stage (training, recording, scoring)
takes one. A researcher's own data enters AU by building one directly::

    ImageDataset(images=x, labels=y, ids=ids, class_names=("cat", "dog"), name="pets", split="train")
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch

from au.errors import AUError

NO_LABEL = -1
"""Label of an example that has none (noise images, unlabelled data)."""


def ids_sha256(ids) -> str:
    """SHA-256 of example ids joined by newlines: which examples, in which order (manifests record it)."""
    return hashlib.sha256("\n".join(np.asarray(ids).tolist()).encode()).hexdigest()


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """Images with labels, class names and a stable id per example.

    Attributes
    ----------
    images : ndarray of uint8, shape (N, H, W, C)
        Pixel values 0..255, channels last (C is 1 for grey, 3 for colour).
    labels : ndarray of int64, shape (N,)
        Class index in ``0 .. len(class_names) - 1``, or ``NO_LABEL`` (-1) for unlabelled images.
    ids : ndarray of str, shape (N,)
        A stable, unique id per example (e.g. ``"train-00042"`` or a file's relative path): it
        names the same example across runs, subsets and recorded tables.
    class_names : tuple of str
        Names of the classes, indexed by label.
    name : str
        The dataset spec it was loaded from (``"mnist"``, ``"npz:my.npz"``, ...).
    split : str
        ``"train"``, ``"test"``, ``"val"`` or ``"all"`` for sources without splits.
    """

    images: np.ndarray
    labels: np.ndarray
    ids: np.ndarray
    class_names: tuple[str, ...]
    name: str
    split: str
    _fingerprint: list = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = f"dataset {self.name!r} ({self.split})"
        x, y, ids = self.images, self.labels, self.ids
        if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 4:
            got = f"{getattr(x, 'dtype', type(x).__name__)} array of shape {getattr(x, 'shape', '?')}"
            raise AUError(f"{where}: images must be a uint8 array of shape (N, H, W, C), got {got}")
        if x.shape[3] not in (1, 3):
            raise AUError(f"{where}: images must have 1 or 3 channels (last axis), got {x.shape[3]}")
        if not isinstance(y, np.ndarray) or y.dtype != np.int64 or y.shape != (len(x),):
            raise AUError(
                f"{where}: labels must be an int64 array of shape ({len(x)},), "
                f"got {getattr(y, 'dtype', type(y).__name__)} of shape {getattr(y, 'shape', '?')}"
            )
        if not isinstance(ids, np.ndarray) or ids.dtype.kind != "U" or ids.shape != (len(x),):
            raise AUError(f"{where}: ids must be a str array of shape ({len(x)},)")
        if len(y):
            low, high = int(y.min()), int(y.max())
            if low < NO_LABEL or high >= len(self.class_names):
                raise AUError(
                    f"{where}: labels range over {low}..{high} but there are "
                    f"{len(self.class_names)} class names; labels must be -1 (none) or 0..{len(self.class_names) - 1}"
                )
        if len(np.unique(ids)) != len(ids):
            raise AUError(f"{where}: example ids are not unique")

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        return (
            f"ImageDataset(name={self.name!r}, split={self.split!r}, n={len(self)}, "
            f"shape={self.image_shape}, classes={self.num_classes})"
        )

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of one image."""
        return tuple(int(s) for s in self.images.shape[1:])  # type: ignore[return-value]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W): the shape a model sees for one image."""
        h, w, c = self.image_shape
        return (c, h, w)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def has_labels(self) -> bool:
        return bool(len(self.labels)) and bool((self.labels >= 0).all())

    def subset(self, indices: np.ndarray, split: str | None = None) -> ImageDataset:
        """The examples at ``indices`` (in that order), keeping their ids."""
        indices = np.asarray(indices, dtype=np.int64)
        return ImageDataset(
            images=self.images[indices],
            labels=self.labels[indices],
            ids=self.ids[indices],
            class_names=self.class_names,
            name=self.name,
            split=split or self.split,
        )

    def class_counts(self) -> np.ndarray:
        """Examples per class, shape (num_classes,)."""
        labelled = self.labels[self.labels >= 0]
        return np.bincount(labelled, minlength=self.num_classes)

    def fingerprint(self) -> str:
        """SHA-256 of images, labels and ids: two datasets with equal fingerprints are the same data."""
        if not self._fingerprint:
            h = hashlib.sha256()
            h.update(str(self.images.shape).encode())
            h.update(np.ascontiguousarray(self.images).data)
            h.update(np.ascontiguousarray(self.labels).data)
            h.update("\n".join(self.ids.tolist()).encode())
            self._fingerprint.append(h.hexdigest())
        return self._fingerprint[0]


def to_tensor(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 images (N, H, W, C) -> float32 tensor (N, C, H, W) in [0, 1]: AU's model input.

    Every AU model takes this form; normalisation, where a model wants it, is the model's first layer.
    """
    x = torch.as_tensor(images)
    if x.dtype != torch.uint8 or x.ndim != 4:
        raise AUError(f"to_tensor expects uint8 images of shape (N, H, W, C), got {x.dtype} {tuple(x.shape)}")
    return x.permute(0, 3, 1, 2).to(torch.float32).div_(255.0).contiguous()
