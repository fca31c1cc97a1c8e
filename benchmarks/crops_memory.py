"""Object crops stream from disk: peak resident memory of loading and recording a 20,000-crop COCO fixture.

Builds a COCO-format fixture (``--images`` random 640x480 photographs-to-be, ``--boxes`` boxes each,
64x64 crops), then in a fresh process loads it (``coco:...``: the crops are cut once into the cache
and read back as a memory map) and records ``alexnet-cifar``'s fc1 and conv5 (average-pooled) for
every crop with an untrained model of the crops' shape, reading that process's own high-water mark
(``VmHWM``). The crops alone would take ``n x 64 x 64 x 3`` bytes in memory (246 MB for 20,000);
the target is a peak under 2 GB.

    python benchmarks/crops_memory.py [--images 100] [--boxes 200] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

CHILD = """
import json, sys, time
from pathlib import Path
from au import data
from au.activations.config import RecordConfig
from au.activations.record_job import record
from au.models import build_model

spec, out = sys.argv[1], Path(sys.argv[2])
start = time.perf_counter()
crops = data.load(spec, "all")
loaded = time.perf_counter() - start
model = build_model("alexnet-cifar", crops.input_shape, crops.num_classes, seed=0)
record(model, crops, out, RecordConfig(layers=("fc1", "conv5"), pool="avg"), show_progress=False)
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"crops": len(crops), "load_seconds": loaded, "seconds": time.perf_counter() - start,
                  "peak_mb": peak / 1024, "in_memory_mb": crops.images.nbytes / 2**20}))
"""


def fixture(root: Path, images: int, boxes: int, seed: int = 0) -> str:
    """A COCO annotations file and an image folder: ``images`` 640x480 images with ``boxes`` boxes each."""
    rng = np.random.default_rng(seed)
    folder = root / "images"
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"images": [], "categories": [{"id": k, "name": f"class{k}"} for k in range(10)], "annotations": []}
    for i in range(images):
        name = f"{i:05d}.jpg"
        smooth = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        Image.fromarray(smooth).resize((640, 480), Image.Resampling.BICUBIC).save(folder / name, quality=90)
        doc["images"].append({"id": i, "file_name": name})
        for _ in range(boxes):
            w, h = rng.integers(20, 200, size=2)
            x, y = rng.integers(0, 640 - w), rng.integers(0, 480 - h)
            doc["annotations"].append(
                {"id": len(doc["annotations"]), "image_id": i, "category_id": int(rng.integers(0, 10)),
                 "bbox": [int(x), int(y), int(w), int(h)]}
            )  # fmt: skip
    (root / "instances.json").write_text(json.dumps(doc))
    return f"coco:{root / 'instances.json'}:images={folder}:size=64x64"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--boxes", type=int, default=200)
    parser.add_argument("--work", type=Path, help="where to build the fixture (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.work or Path(tmp)
        spec = fixture(root, args.images, args.boxes)
        env_cache = {"AU_CACHE": str(root / "cache")}
        import os

        result = subprocess.run(
            [sys.executable, "-c", CHILD, spec, str(root / "acts")],
            capture_output=True, text=True, check=True, env={**os.environ, **env_cache},
        )  # fmt: skip
        r = json.loads(result.stdout.strip().splitlines()[-1])
    print(
        f"{r['crops']:,} crops of 64x64x3 ({r['in_memory_mb']:.0f} MB if held in memory): cut and cached in "
        f"{r['load_seconds']:.1f} s, recorded in {r['seconds'] - r['load_seconds']:.1f} s; peak resident "
        f"{r['peak_mb']:.0f} MB (target: under 2,048)"
    )


if __name__ == "__main__":
    main()
