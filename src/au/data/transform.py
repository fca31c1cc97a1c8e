"""Options every dataset spec takes, applied after loading: ``size=HxW``, ``channels=1|3``, ``classes=...``.

They make the colour OOD sets and the open-set protocol specs, not code:

* ``mnist:size=32x32:channels=3``: MNIST upsampled (bilinear) and repeated over three channels, an
  OOD set for a CIFAR-10 model;
* ``cifar10:FILE:channels=1:size=28x28``: CIFAR-10 in greyscale (ITU-R 601 luma), for an MNIST model;
* ``cifar10:FILE:classes=0-5`` and ``cifar10:FILE:classes=6-9``: the open-set split (Neal et al. 2018,
  arXiv 1804.00504's protocol on CIFAR-10: train on 6 classes, the other 4 are OOD). Classes are
  given by index or name, as ranges (``0-5``) or lists (``0,2,airplane``); the kept examples are
  relabelled 0..k-1 in the order given, with their class names.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from au.data.dataset import NO_LABEL, ImageDataset
from au.data.spec import DataSpec
from au.errors import AUError

OPTIONS = ("size", "channels", "classes")


def apply(data: ImageDataset, spec: DataSpec) -> ImageDataset:
    """``data`` with the spec's ``classes``, ``channels`` and ``size`` options applied, in that order."""
    if spec.option("classes") is not None:
        data = select_classes(data, spec)
    images = data.images
    channels = spec.option("channels")
    if channels is not None:
        images = to_channels(images, spec.int_option("channels", 0), spec.text)
    if spec.option("size") is not None:
        h, w = spec.shape_option("size", images.shape[1:3])[:2]
        images = resize(images, h, w)
    if images is data.images:
        return data
    return ImageDataset(
        images=images,
        labels=data.labels,
        ids=data.ids,
        class_names=data.class_names,
        name=data.name,
        split=data.split,
    )


def resize(images: np.ndarray, h: int, w: int) -> np.ndarray:
    """uint8 images (N, H0, W0, C) resized to (N, h, w, C), bilinear with antialiasing (PIL)."""
    if images.shape[1:3] == (h, w):
        return images
    out = np.empty((len(images), h, w, images.shape[3]), dtype=np.uint8)
    for i, im in enumerate(images):
        plane = im[..., 0] if im.shape[2] == 1 else im
        small = np.asarray(Image.fromarray(plane).resize((w, h), Image.Resampling.BILINEAR))
        out[i] = small.reshape(h, w, -1)
    return out


def to_channels(images: np.ndarray, channels: int, where: str) -> np.ndarray:
    """Grey images repeated over 3 channels, or colour images to grey (ITU-R 601 luma, as PIL's "L")."""
    if channels not in (1, 3):
        raise AUError(f"dataset {where!r}: option channels must be 1 or 3, got {channels}")
    have = images.shape[3]
    if have == channels:
        return images
    if channels == 3:
        return np.repeat(images, 3, axis=3)
    luma = images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., None]


def parse_classes(text: str, class_names: tuple[str, ...], where: str) -> list[int]:
    """``0-5``, ``0,2,7`` or class names -> class indices, in the order given; one line for an unknown class."""
    chosen: list[int] = []
    for part in text.split(","):
        part = part.strip()
        low, dash, high = part.partition("-")
        if dash and low.isdigit() and high.isdigit():
            chosen += list(range(int(low), int(high) + 1))
        elif part.isdigit():
            chosen.append(int(part))
        else:
            chosen.append(class_names.index(part) if part in class_names else -1)
        if not all(0 <= k < len(class_names) for k in chosen):
            raise AUError(
                f"dataset {where!r}: class {part!r} in classes={text} is not one of its {len(class_names)} classes "
                f"(0-{len(class_names) - 1}: {', '.join(class_names)})"
            )
    if len(set(chosen)) != len(chosen):
        raise AUError(f"dataset {where!r}: classes={text} names a class twice")
    return chosen


def select_classes(data: ImageDataset, spec: DataSpec) -> ImageDataset:
    """The examples of the spec's ``classes``, relabelled 0..k-1 in the order given."""
    if not data.has_labels:
        raise AUError(f"dataset {spec.text!r} has no labels: option classes needs a labelled dataset")
    chosen = parse_classes(spec.option("classes") or "", data.class_names, spec.text)
    new_label = np.full(len(data.class_names), NO_LABEL, dtype=np.int64)
    new_label[chosen] = np.arange(len(chosen))
    keep = np.flatnonzero(new_label[data.labels] >= 0)
    return ImageDataset(
        images=data.images[keep],
        labels=new_label[data.labels[keep]],
        ids=data.ids[keep],
        class_names=tuple(data.class_names[k] for k in chosen),
        name=data.name,
        split=data.split,
    )
