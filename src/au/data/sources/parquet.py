"""``parquet:FILE``: an images table (:mod:`au.data.images_table`, as ``au export`` writes it) back as a dataset.

Any Parquet file with an ``image`` column of PNG/JPEG bytes and either ``example_id`` or ``label``
and ``source_index`` is read, e.g. the CIFAR-shaped ``image, label, label_name, split,
source_index``: its rows get exactly the ids the ``cifar10`` loader gives them (one rule,
:func:`au.data.images_table.example_ids`), so ``parquet:F`` and ``cifar10:F`` name the same examples.
(Without a ``label_name`` column the two differ in class names - numbers here, CIFAR-10's names there -
and so in ids.)

Splits are the values of the ``split`` column (train, val, test first, then the others in order
of first appearance); a table without one, or whose only value is ``all``, has the split ``all``.
Class names come from the ``au.images`` metadata, else from the ``label_name`` column over the
whole file, else are the labels' numbers. Images are grey (one channel) or colour as the metadata
says, else as the first image is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from au.data.dataset import NO_LABEL, ImageDataset
from au.data.spec import DataSpec
from au.errors import AUError

_SPLIT_ORDER = {"train": 0, "val": 1, "test": 2}
"""Splits in the order the other sources give them (``all`` of several splits is their concatenation)."""


def _path(spec: DataSpec) -> Path:
    if not spec.path:
        raise AUError(
            "dataset 'parquet' needs a path: parquet:FILE, an images table written by 'au export' "
            "(or a Parquet file with columns image and example_id, or image, label and source_index)"
        )
    return Path(spec.path)


def parquet_splits(spec: DataSpec) -> tuple[str, ...]:
    """The values of the ``split`` column: train, val, test first, then others as they appear; or ("all",)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from au.data.images_table import check_images_table

    path = _path(spec)
    if "split" not in check_images_table(path)["columns"]:
        return ("all",)
    values = [v for v in pc.unique(pq.read_table(path, columns=["split"]).column("split")).to_pylist() if v]
    if not values or values == ["all"]:
        return ("all",)
    return tuple(sorted(values, key=lambda v: _SPLIT_ORDER.get(v, len(_SPLIT_ORDER))))


def table_class_names(path: Path, info: dict) -> tuple[str, ...]:
    """The table's class names, indexed by label (see the module's docstring)."""
    import pyarrow.parquet as pq

    from au.data.images_table import class_names_of

    if info["metadata"]:
        return tuple(info["metadata"]["class_names"])
    if "label" not in info["columns"]:
        return ()
    named = "label_name" in info["columns"]
    table = pq.read_table(path, columns=["label", "label_name"] if named else ["label"])
    labels = table.column("label").fill_null(NO_LABEL).to_numpy().astype(np.int64)
    names = table.column("label_name").to_pylist() if named else [str(y) for y in labels.tolist()]
    return class_names_of(labels, names)


def _decode_all(blobs: list, shape: list[int], where: str) -> np.ndarray:
    """Encoded images -> uint8 (N, H, W, C), each checked to have ``shape`` [H, W, C]."""
    from au.data.images_table import decode_image

    images = np.empty((len(blobs), *shape), dtype=np.uint8)
    for i, blob in enumerate(blobs):
        image = decode_image(blob, shape[2], f"{where} row {i}")
        if list(image.shape) != list(shape):
            raise AUError(
                f"{where} row {i}: image is {'x'.join(map(str, image.shape))}, the table's images are "
                f"{'x'.join(map(str, shape))} (H x W x C); every image of a table must have one size"
            )
        images[i] = image
    return images


def load_parquet(spec: DataSpec, split: str) -> ImageDataset:
    """The rows of ``split``: for an exported table, the ids, labels and pixels of the dataset it was exported from."""
    import pyarrow.parquet as pq

    from au.data.images_table import check_images_table, example_ids

    path = _path(spec)
    info = check_images_table(path)
    wanted = ("example_id", "split", "label", "source_index", "image")
    columns = [c for c in wanted if c in info["columns"]]
    filters = [("split", "=", split)] if "split" in columns else None
    table = pq.read_table(path, columns=columns, filters=filters)
    if table.num_rows == 0:
        raise AUError(f"{path}: no rows with split == {split!r}")
    if "label" in columns:
        labels = table.column("label").fill_null(NO_LABEL).to_numpy().astype(np.int64)
    else:
        labels = np.full(table.num_rows, NO_LABEL, dtype=np.int64)
    classes = table_class_names(path, info)
    ids = example_ids(
        split,
        labels,
        classes,
        source_index=table.column("source_index").to_pylist() if "source_index" in columns else None,
        example_id=table.column("example_id").to_pylist() if "example_id" in columns else None,
    )
    images = _decode_all(table.column("image").to_pylist(), info["shape"], f"{path} ({split})")
    return ImageDataset(
        images=images, labels=labels, ids=ids, class_names=classes, name=spec.text, split=split
    )
