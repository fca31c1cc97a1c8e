"""Object crops from COCO, BDD100K and KITTI annotations (au.data.sources.boxes), on fixtures built here."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from au import AUError, data


@pytest.fixture
def scene(tmp_path, monkeypatch):
    """Two 40x30 images with coloured rectangles, and the cache under tmp_path."""
    monkeypatch.setenv("AU_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(folder / name)
    return tmp_path, folder


def _coco(root, boxes, images=({"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "b.png"})) -> str:
    doc = {
        "images": list(images),
        "categories": [{"id": 3, "name": "car"}, {"id": 7, "name": "person"}],
        "annotations": [
            {"id": 10 + k, "image_id": i, "category_id": c, "bbox": list(b)}
            for k, (i, c, b) in enumerate(boxes)
        ],
    }
    (root / "ann.json").write_text(json.dumps(doc))
    return f"coco:{root / 'ann.json'}:images={root / 'images'}"


def _expected(folder, name, box, size=(16, 16)) -> np.ndarray:
    x, y, w, h = box
    im = Image.open(folder / name).convert("RGB")
    return np.asarray(im.resize(size, Image.Resampling.BILINEAR, box=(x, y, x + w, y + h)))


def test_coco_crops_are_the_boxes_resized(scene):
    root, folder = scene
    boxes = [
        (1, 3, (2, 3, 20, 12)),
        (2, 7, (10, 5, 15, 20)),
        (1, 7, (0, 0, 5, 5)),
    ]  # the last: 25 px, skipped
    spec = _coco(root, boxes) + ":size=16x16"
    d = data.load(spec, "all")
    assert d.images.shape == (2, 16, 16, 3) and d.class_names == ("car", "person")
    assert list(d.labels) == [0, 1] and list(d.ids) == ["a-10", "b-11"]
    np.testing.assert_array_equal(d.images[0], _expected(folder, "a.png", boxes[0][2]))
    np.testing.assert_array_equal(d.images[1], _expected(folder, "b.png", boxes[1][2]))
    assert len(data.load(spec + ":min_area=1", "all")) == 3
    cached = list((root / "cache" / "crops").glob("*.npy"))
    assert len(cached) == 2  # one per option set; loading again reuses it
    before = cached[0].stat().st_mtime_ns
    data.load(spec, "all")
    assert cached[0].stat().st_mtime_ns == before


def test_bdd100k_and_kitti_give_the_same_crops(scene):
    root, folder = scene
    frames = [
        {
            "name": "a.png",
            "labels": [{"id": "x", "category": "car", "box2d": {"x1": 2, "y1": 3, "x2": 22, "y2": 13}}],
        }
    ]
    (root / "bdd.json").write_text(json.dumps(frames))
    bdd = data.load(f"bdd100k:{root / 'bdd.json'}:images={folder}:size=16x16", "all")
    labels = root / "label_2"
    labels.mkdir()
    (labels / "a.txt").write_text(
        "Car 0 0 0 2 3 22 13 1 1 1 0 0 0 0\nDontCare -1 -1 -10 0 0 39 29 -1 -1 -1 0 0 0 0\n"
    )
    kitti = data.load(f"kitti:{labels}:images={folder}:size=16x16", "all")
    expected = _expected(folder, "a.png", (2, 3, 20, 10))
    np.testing.assert_array_equal(bdd.images[0], expected)
    np.testing.assert_array_equal(kitti.images[0], expected)
    assert bdd.class_names == ("car",) and kitti.class_names == ("Car",) and len(kitti) == 1


@pytest.mark.parametrize(
    "case, message",
    [
        ("unknown image", "ann.json: annotation 10 names image id 9"),
        ("missing file", "b.png: image file not found"),
        ("outside", "a.png: the box of annotation 10"),
    ],
)
def test_bad_annotations_are_one_line_naming_the_file(scene, case, message):
    root, folder = scene
    if case == "unknown image":
        spec = _coco(root, [(9, 3, (0, 0, 20, 20))])
    elif case == "missing file":
        (folder / "b.png").unlink()
        spec = _coco(root, [(2, 3, (0, 0, 20, 20))])
    else:
        spec = _coco(root, [(1, 3, (30, 10, 20, 20))])  # x + w = 50 > 40
    with pytest.raises(AUError) as e:
        data.load(spec, "all")
    assert message in str(e.value) and "\n" not in str(e.value)
    assert not list((root / "cache").rglob("*.npy"))  # nothing half-written is left to be mistaken for crops
