"""Shared fixtures: tiny synthetic datasets in every on-disk format, and a CLI runner."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from au.data import ImageDataset

REPO = Path(__file__).resolve().parents[1]
# CIFAR-10 as one Parquet file, beside the project on development machines; absent elsewhere (tests skip).
SHARED_CIFAR = Path(
    os.environ.get("AU_CIFAR10_PARQUET", REPO.parent / "shared" / "data" / "cifar10-jpeg.parquet")
)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write ``array`` (uint8) as an IDX file, gzipped when ``path`` ends in .gz."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)


def blob_images(n: int, num_classes: int, shape=(8, 8, 1), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images whose class is visible: class k lights up the k-th row band, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % num_classes
    images = rng.integers(0, 60, size=(n, *shape))
    h = shape[0]
    band = max(1, h // num_classes)
    for i, k in enumerate(labels):
        images[i, k * band : (k + 1) * band] += 180
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.int64)


def make_dataset(
    n: int = 60, num_classes: int = 3, shape=(8, 8, 1), seed: int = 0, split: str = "train"
) -> ImageDataset:
    images, labels = blob_images(n, num_classes, shape, seed)
    return ImageDataset(
        images=images,
        labels=labels,
        ids=np.array([f"{split}-{i:04d}" for i in range(n)]),
        class_names=tuple(f"c{k}" for k in range(num_classes)),
        name="blobs",
        split=split,
    )


class TinyNet(nn.Module):
    """A small CNN with named layers for fast training tests on 8x8 grey images."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.conv1_relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.drop = nn.Dropout(0.2)
        self.logits = nn.Linear(4 * 4 * 4, num_classes)
        self.num_classes = num_classes
        self.input_shape = (1, 8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(self.drop(self.flatten(self.pool(self.conv1_relu(self.conv1(x))))))


def tiny_net(seed: int = 0, num_classes: int = 3) -> TinyNet:
    torch.manual_seed(seed)
    return TinyNet(num_classes)


@pytest.fixture
def blobs() -> tuple[ImageDataset, ImageDataset]:
    return make_dataset(90, 3, seed=0, split="train"), make_dataset(30, 3, seed=1, split="test")


def run_au(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the ``au`` CLI in a subprocess (as a user would), without progress bars."""
    env = {**os.environ, "AU_PROGRESS": "0"}
    env.pop("AU_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "au", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600
    )


def interrupted(run, *, at_eval: int = 1, checkpoint_seconds: float | None = 0.0) -> None:
    """Call ``run()`` (a ``train_run``) with training killed (KeyboardInterrupt) at its ``at_eval``-th validation
    point, checkpointing after every step unless ``checkpoint_seconds`` is None; the kill must happen."""
    import au.train.train_job as run_module

    real_fit, seen = run_module.fit, {"n": 0}

    def killed_fit(*args, **kwargs):
        if checkpoint_seconds is not None:
            kwargs["checkpoint_seconds"] = checkpoint_seconds

        def die(_entry):
            seen["n"] += 1
            if seen["n"] == at_eval:
                raise KeyboardInterrupt

        kwargs["on_eval"] = die
        return real_fit(*args, **kwargs)

    run_module.fit = killed_fit
    try:
        with pytest.raises(KeyboardInterrupt):
            run()
    finally:
        run_module.fit = real_fit
