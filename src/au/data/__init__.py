"""Datasets: every source loads offline into one in-memory form, :class:`ImageDataset`.

>>> from au import data
>>> train = data.load("mnist", "train")       # ImageDataset, images (60000, 28, 28, 1) uint8
>>> x = data.to_tensor(train.images[:8])      # float32 (8, 1, 28, 28) in [0, 1]
"""

from au.data.dataset import NO_LABEL, ImageDataset, ids_sha256, to_tensor
from au.data.registry import SOURCES, evaluation_split, load, load_train_test, splits
from au.data.spec import DataSpec, parse_spec
from au.data.subsets import Subset, keep_subset, stratified_split

__all__ = [
    "NO_LABEL",
    "SOURCES",
    "DataSpec",
    "ImageDataset",
    "Subset",
    "evaluation_split",
    "ids_sha256",
    "keep_subset",
    "load",
    "load_train_test",
    "parse_spec",
    "splits",
    "stratified_split",
    "to_tensor",
]
