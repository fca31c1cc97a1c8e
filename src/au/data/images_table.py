"""The images table: one split of a dataset as one Parquet file of encoded images, declared once.

One row per example, in the dataset's order::

    example_id  string  not null   the example's stable id (ImageDataset.ids)
    split       string  not null   train / test / all
    label       int64   not null   class index; -1 when the example has no label
    label_name  string             the class's name; null when the label is -1
    image       binary  not null   the image as PNG (lossless): mode L when grey, RGB when colour

The footer's metadata holds, under the key ``au.images``, JSON describing the whole table::

    format       "au-images/1"
    dataset      the dataset spec it was exported from ("mnist", "noise-uniform:n=50", ...)
    split        the split it was exported from
    limit        how many of the split's examples were asked for (null: all)
    rows         rows in the table
    shape        [H, W, C] of every image
    class_names  names of the classes, indexed by label (also those with no rows)
    fingerprint  ImageDataset.fingerprint() of the rows: decoding them gives exactly that data back

Row groups hold :data:`ROW_GROUP` rows, so a Spark reader splits the file into tasks of that
size; pyarrow, pandas and DuckDB read it as it is. The file is written under a hidden temporary
name beside it and renamed when complete: a file at the final path is always whole.

Readers (the ``parquet:FILE`` source) also take tables written by others: an ``image`` column of
PNG or JPEG bytes and either an ``example_id`` column or ``label`` and ``source_index`` columns
from which :func:`example_ids` makes the id the ``cifar10`` loader gives, e.g. the "CIFAR-shaped"
table ``image, label (int8), label_name, split, source_index``.
"""

from __future__ import annotations

import io
import json
import zlib
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, UnidentifiedImageError

from au import progress
from au.data.dataset import NO_LABEL, ImageDataset
from au.errors import AUError
from au.files import atomic_path

SCHEMA = pa.schema(
    [
        pa.field("example_id", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("label", pa.int64(), nullable=False),
        pa.field("label_name", pa.string()),
        pa.field("image", pa.binary(), nullable=False),
    ]
)
METADATA_KEY = "au.images"
FORMAT = "au-images/1"
ROW_GROUP = 2048
PNG_COMPRESS_LEVEL = 1
"""zlib level: 1 is the fastest; on MNIST and CIFAR-10 images it is within 4% of the default 6's size."""
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_COLOUR_TYPES = {1: 0, 3: 2}
OPENCV_MAX_PIXELS = 32 * 32
"""The largest PNG (in pixels) :func:`decode_image` hands to OpenCV: MNIST's and CIFAR-10's sizes."""
"""PNG's colour type (IHDR byte 25; byte 24 is the bit depth) of grey and of RGB pixels, by channels."""
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")
"""Pillow modes read as one channel when a table does not say its shape."""


def encode_image(image: np.ndarray) -> bytes:
    """uint8 (H, W, C) -> PNG bytes: mode L when C is 1, RGB when C is 3."""
    plane = image[..., 0] if image.shape[2] == 1 else image
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(plane)).save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()


def decode_image(data: bytes, channels: int, where: str) -> np.ndarray:
    """PNG/JPEG (any format Pillow reads) bytes -> a writable uint8 array (H, W, ``channels``).

    ``channels`` 1 converts to grey (mode L), 3 to RGB. Bytes that are not an image raise one
    line naming ``where`` (a file and row). A small plain PNG (:func:`plain_png`) - what ``au export``
    writes of MNIST or CIFAR-10 - is decoded by OpenCV, faster than Pillow there and the same pixels
    (PNG is lossless, and nothing is converted); every other image goes through Pillow.
    """
    assert channels in (1, 3), channels
    if plain_png(data, channels):
        try:
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        except cv2.error:
            image = None
        if image is not None and image.ndim == (2 if channels == 1 else 3):
            return image[..., None] if channels == 1 else np.ascontiguousarray(image[..., ::-1])  # BGR -> RGB
    try:
        with Image.open(io.BytesIO(data)) as im:
            if channels == 1:
                return np.array(im.convert("L"))[..., None]
            return np.array(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError, TypeError, Image.DecompressionBombError) as e:
        raise AUError(
            f"{where}: cannot decode image ({e}); the image column must hold PNG or JPEG bytes"
        ) from None


def plain_png(data: bytes, channels: int) -> bool:
    """Whether ``data`` is a small, whole, plain PNG of ``channels`` 8-bit channels (grey or RGB), for OpenCV.

    Small: at most :data:`OPENCV_MAX_PIXELS` pixels; OpenCV only wins where Pillow's fixed cost per
    image dominates (per image, with this check: 28x28 grey 33 us against Pillow's 46, 32x32 RGB 49
    against 55; at 64x64 RGB Pillow is faster, 118 us against 172). Plain: IHDR, IDAT chunks and
    IEND only, every CRC right, not interlaced, and its zlib stream inflating to exactly one filter
    byte (0-4) and ``width x channels`` bytes per row. libpng, inside OpenCV, prints its own
    complaints to stderr and OpenCV turns transparency into a fourth channel; a PNG that passes
    gives it nothing to complain of, and anything else goes to Pillow, which names the damage in one
    line.
    """
    if data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR" or len(data) < 33:
        return False
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    depth, colour, interlace = data[24], data[25], data[28]
    if not 0 < width * height <= OPENCV_MAX_PIXELS or (depth, colour, interlace) != (
        8,
        PNG_COLOUR_TYPES[channels],
        0,
    ):
        return False
    pos, kinds, idat = 8, [], []
    while pos + 12 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        crc = data[pos + 8 + length : pos + 12 + length]
        if len(body) != length or len(crc) != 4 or zlib.crc32(kind + body) != int.from_bytes(crc, "big"):
            return False
        kinds.append(kind)
        if kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    if pos != len(data) or kinds[-1:] != [b"IEND"] or set(kinds[1:-1]) != {b"IDAT"}:
        return False
    stride = 1 + width * channels
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error:
        return False
    return len(raw) == height * stride and max(raw[::stride]) <= 4


def images_metadata(data: ImageDataset, limit: int | None = None) -> dict:
    """The ``au.images`` metadata of a table holding ``data`` (all of it; ``limit`` is only recorded)."""
    return {
        "format": FORMAT,
        "dataset": data.name,
        "split": data.split,
        "limit": limit,
        "rows": len(data),
        "shape": list(data.image_shape),
        "class_names": list(data.class_names),
        "fingerprint": data.fingerprint(),
    }


def _row_group(data: ImageDataset, start: int, stop: int) -> pa.Table:
    """Rows ``start:stop`` of ``data`` as a table of :data:`SCHEMA`, images encoded."""
    labels = data.labels[start:stop]
    names = [data.class_names[y] if y != NO_LABEL else None for y in labels.tolist()]
    columns = {
        "example_id": data.ids[start:stop].tolist(),
        "split": [data.split] * (stop - start),
        "label": labels,
        "label_name": names,
        "image": [encode_image(im) for im in data.images[start:stop]],
    }
    return pa.table(columns, schema=SCHEMA)


def write_images_table(
    data: ImageDataset,
    path: Path,
    *,
    limit: int | None = None,
    row_group_size: int = ROW_GROUP,
    show_progress: bool = True,
) -> dict:
    """Write ``data`` as an images table at ``path``, one row group at a time; return its metadata.

    At most one row group of encoded images is in memory. The table is written to a hidden
    temporary file beside ``path`` and renamed onto it when complete: an interrupted write leaves
    nothing at ``path`` (and, unless the process was killed, no temporary either).

    Parameters
    ----------
    data : ImageDataset
        The rows, in order; its ``name`` and ``split`` go into the metadata.
    path : Path
        The Parquet file to write; an existing file there is replaced.
    limit : int, optional
        Recorded in the metadata (``au export --limit``); ``data`` is written whole.
    row_group_size : int
        Rows per row group (the unit a Spark reader splits the file by).
    """
    path = Path(path)
    metadata = images_metadata(data, limit)
    schema = SCHEMA.with_metadata({METADATA_KEY: json.dumps(metadata)})
    bar = progress.bar(len(data), f"export {data.name} ({data.split})", "img", show_progress)
    with bar, atomic_path(path) as tmp:
        with pq.ParquetWriter(
            tmp,
            schema,
            compression="zstd",
            use_dictionary=["split", "label_name"],
            write_statistics=["example_id", "split", "label", "label_name"],
        ) as writer:
            for start in range(0, len(data), row_group_size):
                stop = min(start + row_group_size, len(data))
                writer.write_table(_row_group(data, start, stop), row_group_size=row_group_size)
                bar.update(stop - start)
    return metadata


def read_metadata(path: Path) -> dict | None:
    """The ``au.images`` metadata of the Parquet file ``path``; None when it has none (not written by AU).

    A missing file, or one that is not Parquet, is one line saying so.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise AUError(f"{path} {what}; pass an images table (a Parquet file written by 'au export')")
    try:
        schema = pq.read_schema(path)
    except Exception as e:  # pyarrow raises several types for a file that is not Parquet
        raise AUError(
            f"{path}: not a readable Parquet file ({e}); pass a file written by 'au export'"
        ) from None
    raw = (schema.metadata or {}).get(METADATA_KEY.encode())
    if raw is None:
        return None
    try:
        metadata = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        metadata = None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise AUError(
            f"{path}: its {METADATA_KEY} metadata is damaged or of another AU version; re-run 'au export'"
        )
    return metadata


def _first_image_shape(path: Path) -> list[int]:
    """[H, W, C] of the table's first image (C from its Pillow mode: 1 for grey modes, else 3)."""
    batch = next(pq.ParquetFile(path).iter_batches(batch_size=1, columns=["image"]))
    blob = batch.column(0)[0].as_py()
    height, width, _ = decode_image(blob, 3, f"{path} (row 0)").shape  # refuses bytes that are no image
    with Image.open(io.BytesIO(blob)) as im:
        channels = 1 if im.mode in GREY_MODES else 3
    return [height, width, channels]


def check_images_table(path: Path) -> dict:
    """What a reader needs to know of the images table ``path``, from its schema and metadata alone.

    Refuses, with one line, a file that is missing or not Parquet, has no ``image`` column of
    bytes, or has neither ``example_id`` nor ``label`` and ``source_index`` to name its rows by.

    Returns
    -------
    dict
        ``columns`` (names present), ``rows``, ``shape`` ([H, W, C]: from the ``au.images``
        metadata, else from decoding the first image), ``channels`` (C) and ``metadata`` (the
        ``au.images`` dict, or None for a table not written by AU).
    """
    path = Path(path)
    metadata = read_metadata(path)
    file = pq.ParquetFile(path)
    schema, rows = file.schema_arrow, file.metadata.num_rows
    columns = schema.names
    fix = "write it with 'au export', or give it an image column of PNG/JPEG bytes"
    if "image" not in columns:
        raise AUError(f"{path}: no 'image' column (the encoded images); {fix}")
    image_type = schema.field("image").type
    if not (pa.types.is_binary(image_type) or pa.types.is_large_binary(image_type)):
        raise AUError(f"{path}: column 'image' is {image_type}, not bytes; {fix}")
    if "example_id" not in columns and not {"label", "source_index"} <= set(columns):
        raise AUError(
            f"{path}: no 'example_id' column, nor 'label' and 'source_index' columns to make ids from; "
            "add an example_id column (a unique string per row), or write the table with 'au export'"
        )
    if "label" in columns and not pa.types.is_integer(schema.field("label").type):
        raise AUError(f"{path}: column 'label' is {schema.field('label').type}, not integers (-1 for none)")
    if rows == 0:
        raise AUError(f"{path}: the table has no rows")
    shape = metadata["shape"] if metadata else _first_image_shape(path)
    return {"columns": columns, "rows": rows, "shape": shape, "channels": shape[2], "metadata": metadata}


def class_names_of(
    labels: np.ndarray, label_names: Sequence, defaults: Sequence[str] = ()
) -> tuple[str, ...]:
    """Class names 0 .. max(labels) from the rows' (label, label_name) pairs.

    A class no row names takes its name from ``defaults`` (the CIFAR-10 classes, for the cifar10
    loader), else its number. Labels below 0 (no label) name nothing.
    """
    pairs = dict(zip(np.asarray(labels).tolist(), label_names, strict=True))
    top = int(np.max(labels)) + 1 if len(labels) else 0
    return tuple(str(pairs.get(k, defaults[k] if k < len(defaults) else k)) for k in range(top))


def example_ids(
    split: str,
    labels: np.ndarray,
    class_names: Sequence[str],
    source_index: Sequence | None = None,
    example_id: Sequence | None = None,
) -> np.ndarray:
    """Each row's example id, by the one rule every Parquet reader of AU follows.

    * an ``example_id`` column: its values;
    * else a ``source_index`` column: ``"{split}/{class name}/{source_index}"`` (the ids of the
      ``cifar10`` loader; ``unlabelled`` stands for the class of label -1);
    * else the row's position in the split: ``"{split}-{i:05d}"``.

    Parameters
    ----------
    split : str
        The split the rows belong to (all rows read are of one split).
    labels : ndarray of int, shape (N,)
    class_names : sequence of str
        Indexed by label.
    source_index, example_id : sequence, shape (N,), optional
        The columns, when the table has them.
    """
    if example_id is not None:
        return np.array([str(i) for i in example_id], dtype=str)
    if source_index is not None:
        names = [class_names[y] if y >= 0 else "unlabelled" for y in np.asarray(labels).tolist()]
        return np.array(
            [f"{split}/{c}/{int(s)}" for c, s in zip(names, source_index, strict=True)], dtype=str
        )
    return np.array([f"{split}-{i:05d}" for i in range(len(labels))], dtype=str)
