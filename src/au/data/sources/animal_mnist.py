"""Animal-MNIST: 10,000 28x28 animal silhouettes from PyPI's ``animal-mnist==0.4``.

The package stores its arrays as gzipped pickles; they are read with AU's restricted unpickler
(never ``pickle.load``) and without importing the package, which would pull in TensorFlow.
The source has no train/test split: its only split is ``all``.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np

from au.data.dataset import ImageDataset
from au.data.safe_pickle import safe_loads
from au.data.spec import DataSpec
from au.errors import AUError

# The class order given in the package's description; labels 0..9 follow it.
CLASSES = ("Bear", "Bird", "Cat", "Cow", "Dog", "Elephant", "Giraffe", "Horse", "Sheep", "Zebra")
IMAGES_FILE = "animal_data_version_3.gz"
LABELS_FILE = "animal_label_version_3.gz"


def _package_dir() -> Path | None:
    found = importlib.util.find_spec("animal_mnist")
    if found is None or not found.submodule_search_locations:
        return None
    return Path(list(found.submodule_search_locations)[0]) / "data" / "Animal_MNIST"


def _read(path: Path) -> np.ndarray:
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise AUError(f"{path}: cannot read ({e}); reinstall animal-mnist") from None
    array = safe_loads(data, str(path))
    if not isinstance(array, np.ndarray):
        raise AUError(f"{path}: expected a NumPy array, found {type(array).__name__}")
    return array


def load_animal_mnist(spec: DataSpec, split: str) -> ImageDataset:
    directory = Path(spec.path) if spec.path else _package_dir()
    if directory is None:
        raise AUError(
            "dataset 'animal-mnist': the package animal-mnist is not installed; run "
            "'pip install --no-deps animal-mnist==0.4' or pass its data folder: animal-mnist:PATH"
        )
    if not (directory / IMAGES_FILE).is_file() or not (directory / LABELS_FILE).is_file():
        raise AUError(f"dataset {spec.text!r}: {IMAGES_FILE} and {LABELS_FILE} not found in {directory}")
    images = _read(directory / IMAGES_FILE)
    labels = _read(directory / LABELS_FILE)
    if images.ndim != 3 or images.dtype != np.uint8 or labels.shape != (len(images),):
        raise AUError(
            f"{directory}: expected uint8 images (N, 28, 28) and N labels, got {images.dtype} {images.shape} "
            f"and labels {labels.shape}"
        )
    return ImageDataset(
        images=np.ascontiguousarray(images[..., None]),
        labels=labels.astype(np.int64),
        ids=np.array([f"all-{i:05d}" for i in range(len(images))]),
        class_names=CLASSES,
        name=spec.text,
        split=split,
    )
