"""Object crops from detection datasets the user already has: COCO, BDD100K and KITTI, as classification data.

``coco:ANNOTATIONS.json:images=DIR``, ``bdd100k:LABELS.json:images=DIR`` and
``kitti:LABEL_DIR:images=DIR`` read the boxes of the annotations, crop each object out of its image
and resize it to ``size`` (default 64x64, RGB); the class is the box's category. Boxes smaller than
``min_area`` pixels (default 100) are skipped; KITTI's ``DontCare`` regions too. The only split is
``all``; an example's id is ``<image file stem>-<annotation id>``.

The crops stream from disk: each image is opened once, its crops are written into a uint8 file
under the cache directory (``$AU_CACHE``, else ``~/.cache/au/crops``), which is renamed into place
only when complete and read back as a memory map, so a dataset larger than memory never loads
whole. The cache file is named by the annotation file's SHA-256, the options and every image
file's size and modification time, so an edited annotation or image makes a new one.

Refused with one line naming the file: an annotation naming an image id the JSON does not list, a
missing image file, and a box that falls outside its image.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from au.data.dataset import ImageDataset
from au.data.spec import DataSpec
from au.errors import AUError
from au.files import atomic_path, sha256_file

TOLERANCE = 1.0  # pixels a box may overhang its image (annotation tools round outwards)


@dataclass(frozen=True)
class Box:
    """One object: its image file (relative to the images folder), corners in pixels, class name and id."""

    image: str
    x0: float
    y0: float
    x1: float
    y1: float
    label: str
    id: str


def coco_boxes(path: Path) -> list[Box]:
    """COCO instances: ``images`` (id, file_name), ``categories`` (id, name), ``annotations`` (image_id, bbox
    [x, y, w, h], category_id, id)."""
    doc = _json(path)
    files = {im["id"]: im["file_name"] for im in doc.get("images", [])}
    names = {c["id"]: c["name"] for c in doc.get("categories", [])}
    boxes = []
    for a in doc.get("annotations", []):
        if a["image_id"] not in files:
            raise AUError(
                f"{path}: annotation {a.get('id')} names image id {a['image_id']}, which 'images' does not list"
            )
        if a["category_id"] not in names:
            raise AUError(
                f"{path}: annotation {a.get('id')} names category {a['category_id']}, which 'categories' does not list"
            )
        x, y, w, h = (float(v) for v in a["bbox"])
        boxes.append(
            Box(
                files[a["image_id"]],
                x,
                y,
                x + w,
                y + h,
                names[a["category_id"]],
                str(a.get("id", len(boxes))),
            )
        )
    return boxes


def bdd_boxes(path: Path) -> list[Box]:
    """BDD100K labels: a list of frames, each ``name`` and ``labels`` with ``category`` and ``box2d`` (x1, y1, x2, y2)."""
    boxes = []
    for frame in _json(path):
        for k, label in enumerate(frame.get("labels") or []):
            b = label.get("box2d")
            if b is not None:
                boxes.append(
                    Box(
                        frame["name"],
                        b["x1"],
                        b["y1"],
                        b["x2"],
                        b["y2"],
                        label["category"],
                        str(label.get("id", k)),
                    )
                )
    return boxes


def kitti_boxes(folder: Path, images: Path) -> list[Box]:
    """KITTI object labels: one ``<frame>.txt`` per image, lines ``type truncated occluded alpha x1 y1 x2 y2 ...``."""
    if not folder.is_dir():
        raise AUError(f"dataset 'kitti': {folder} is not a directory of label files")
    boxes = []
    for label_file in sorted(folder.glob("*.txt")):
        image = next(
            (p.name for p in (images / f"{label_file.stem}{e}" for e in (".png", ".jpg")) if p.exists()), None
        )
        for k, line in enumerate(label_file.read_text().splitlines()):
            parts = line.split()
            if len(parts) < 8 or parts[0] == "DontCare":
                continue
            x0, y0, x1, y1 = (float(v) for v in parts[4:8])
            boxes.append(Box(image or f"{label_file.stem}.png", x0, y0, x1, y1, parts[0], str(k)))
    return boxes


def _json(path: Path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AUError(f"{path}: annotation file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise AUError(f"{path}: not a JSON file ({e})") from None


def load_boxes(spec: DataSpec, split: str) -> ImageDataset:
    """The crops of a ``coco``, ``bdd100k`` or ``kitti`` spec (split ``all``), as a memory-mapped dataset."""
    if not spec.path or spec.option("images") is None:
        raise AUError(
            f"dataset {spec.name!r} needs annotations and images: {spec.name}:ANNOTATIONS:images=DIR"
        )
    source, images = Path(spec.path), Path(spec.option("images") or "")
    boxes = (
        kitti_boxes(source, images)
        if spec.name == "kitti"
        else (coco_boxes if spec.name == "coco" else bdd_boxes)(source)
    )
    min_area = float(spec.option("min_area") or 100)
    boxes = [b for b in boxes if (b.x1 - b.x0) * (b.y1 - b.y0) >= min_area]
    if not boxes:
        raise AUError(f"{source}: no boxes of at least {min_area:g} pixels")
    h, w = spec.shape_option("size", (64, 64))[:2]
    classes = tuple(sorted({b.label for b in boxes}))
    crops = _cached_crops(spec, source, images, boxes, (h, w))
    return ImageDataset(
        images=crops,
        labels=np.array([classes.index(b.label) for b in boxes], dtype=np.int64),
        ids=np.array([f"{Path(b.image).stem}-{b.id}" for b in boxes]),
        class_names=classes,
        name=spec.text,
        split=split,
    )


def _cached_crops(
    spec: DataSpec, source: Path, images: Path, boxes: list[Box], size: tuple[int, int]
) -> np.ndarray:
    """The crops (N, h, w, 3) uint8 as a memory map of the cache file, written first if missing."""
    by_image: dict[str, list[int]] = defaultdict(list)
    for i, b in enumerate(boxes):
        by_image[b.image].append(i)
    key = hashlib.sha256(f"{spec.name}|{size}|{spec.option('min_area')}".encode())
    key.update((sha256_file(source) if source.is_file() else "\n".join(b.image for b in boxes)).encode())
    for name in sorted(by_image):
        file = images / name
        if not file.is_file():
            raise AUError(f"{file}: image file not found (named by {source})")
        stat = file.stat()
        key.update(f"{name}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    cache = (
        Path(os.environ.get("AU_CACHE") or Path.home() / ".cache" / "au") / "crops" / f"{key.hexdigest()}.npy"
    )
    shape = (len(boxes), *size, 3)
    if not cache.is_file():
        cache.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cache) as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
            for name, rows in by_image.items():
                _crop_image(images / name, [boxes[i] for i in rows], size, out, rows)
            out.flush()
            del out
    return np.load(cache, mmap_mode="c")  # copy-on-write: writable for torch, the file never changes


def _crop_image(
    file: Path, boxes: list[Box], size: tuple[int, int], out: np.ndarray, rows: list[int]
) -> None:
    """Crop ``boxes`` out of ``file`` and write them, resized, into ``out[rows]``."""
    try:
        with Image.open(file) as im:
            image = im.convert("RGB")
    except (UnidentifiedImageError, OSError) as e:
        raise AUError(f"{file}: not a readable image ({e})") from None
    w, h = image.size
    for row, b in zip(rows, boxes, strict=True):
        if (
            b.x0 < -TOLERANCE
            or b.y0 < -TOLERANCE
            or b.x1 > w + TOLERANCE
            or b.y1 > h + TOLERANCE
            or b.x1 <= b.x0
            or b.y1 <= b.y0
        ):
            raise AUError(
                f"{file}: the box of annotation {b.id} ({b.x0:g}, {b.y0:g})-({b.x1:g}, {b.y1:g}) falls outside the "
                f"{w}x{h} image"
            )
        box = (max(0.0, b.x0), max(0.0, b.y0), min(float(w), b.x1), min(float(h), b.y1))
        out[row] = np.asarray(image.resize((size[1], size[0]), Image.Resampling.BILINEAR, box=box))
