"""CIFAR-10 from the official ``cifar-10-batches-py`` folder or from a Parquet file of encoded images.

``cifar10:PATH`` where PATH is either

* the folder of the official Python release (``data_batch_1`` .. ``data_batch_5``, ``test_batch``,
  ``batches.meta``): pickles, read with AU's restricted unpickler; or
* a ``.parquet`` file with columns ``image`` (PNG/JPEG bytes), ``label`` (int) and ``split``
  (``train``/``test``), optionally ``label_name`` and ``source_index``.

No copy ships with a package, so the path is required.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from au.data.dataset import ImageDataset
from au.data.safe_pickle import safe_loads
from au.data.spec import DataSpec
from au.errors import AUError

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


def _path(spec: DataSpec) -> Path:
    if not spec.path:
        raise AUError(
            "dataset 'cifar10' needs a path: cifar10:PATH, where PATH is the official cifar-10-batches-py "
            "folder or a Parquet file with columns image, label, split"
        )
    path = Path(spec.path)
    if not path.exists():
        raise AUError(
            f"dataset {spec.text!r}: {path} does not exist; pass a cifar-10-batches-py folder or a .parquet file"
        )
    return path


def _batch_file(path: Path) -> dict:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise AUError(f"{path}: cannot read ({e})") from None
    batch = safe_loads(data, str(path), encoding="bytes")
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise AUError(f"{path}: not a CIFAR-10 batch (expected a dict with data and labels)")
    return batch


def _load_batches(folder: Path, spec: DataSpec, split: str) -> ImageDataset:
    images, labels, ids = [], [], []
    for name in _BATCHES[split]:
        file = folder / name
        if not file.is_file():
            raise AUError(f"dataset {spec.text!r}: {file} not found; pass the cifar-10-batches-py folder")
        batch = _batch_file(file)
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise AUError(f"{file}: data must have shape (N, 3072), got {data.shape}")
        images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(np.asarray(batch[b"labels"], dtype=np.int64))
        names = batch.get(b"filenames")
        for i in range(len(data)):
            fname = names[i].decode("utf-8", "replace") if names is not None else f"{i:05d}"
            ids.append(f"{split}/{name}/{fname}")
    classes = CLASSES
    meta = folder / "batches.meta"
    if meta.is_file():
        names = _batch_file_meta(meta)
        if names:
            classes = names
    return ImageDataset(
        images=np.ascontiguousarray(np.concatenate(images)),
        labels=np.concatenate(labels),
        ids=np.array(ids),
        class_names=classes,
        name=spec.text,
        split=split,
    )


def _batch_file_meta(path: Path) -> tuple[str, ...]:
    meta = safe_loads(path.read_bytes(), str(path), encoding="bytes")
    names = meta.get(b"label_names") if isinstance(meta, dict) else None
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names) if names else ()


def _load_parquet(path: Path, spec: DataSpec, split: str) -> ImageDataset:
    """One split of a Parquet file of encoded images; ids and class names as :mod:`au.data.images_table` makes them."""
    import pyarrow.parquet as pq

    from au.data.images_table import class_names_of, decode_image, example_ids

    try:
        schema = pq.read_schema(path)
    except Exception as e:  # pyarrow raises several types for non-Parquet files
        raise AUError(f"{path}: not a readable Parquet file ({e})") from None
    missing = {"image", "label", "split"} - set(schema.names)
    if missing:
        raise AUError(f"{path}: missing column(s) {sorted(missing)}; the file needs image, label and split")
    columns = [c for c in ("image", "label", "split", "label_name", "source_index") if c in schema.names]
    table = pq.read_table(path, columns=columns, filters=[("split", "=", split)])
    if table.num_rows == 0:
        raise AUError(f"{path}: no rows with split == {split!r}")
    labels = np.asarray(table.column("label").to_numpy(), dtype=np.int64)
    blobs = table.column("image").to_pylist()
    images = np.stack([decode_image(b, 3, f"{path} ({split} row {i})") for i, b in enumerate(blobs)])
    classes = CLASSES
    if "label_name" in table.column_names:
        classes = class_names_of(labels, table.column("label_name").to_pylist(), CLASSES)
    source_index = table.column("source_index").to_pylist() if "source_index" in table.column_names else None
    ids = example_ids(split, labels, classes, source_index=source_index)
    return ImageDataset(
        images=images, labels=labels, ids=ids, class_names=classes, name=spec.text, split=split
    )


def load_cifar10(spec: DataSpec, split: str) -> ImageDataset:
    path = _path(spec)
    if path.is_dir():
        return _load_batches(path, spec, split)
    return _load_parquet(path, spec, split)
