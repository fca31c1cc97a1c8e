"""Bags of keypoint descriptors: ORB (Rublee et al. 2011) or BRISK (Leutenegger et al. 2011) from OpenCV,
quantised against a visual vocabulary (Csurka et al. 2004's bag of visual words).

Small images have too few pixels for the detectors' default borders, so each image is upscaled
(``scale``, bicubic) and grey; the detectors run with a small border and patch. Each binary
descriptor is unpacked to bits, the vocabulary is k-means (faiss) on the bits of descriptors from
the training images, and an image's feature is the L1-normalised histogram of its descriptors'
nearest words plus the count of its keypoints (log(1 + n)): an image with no keypoints is all zero
but its count.
"""

from __future__ import annotations

import numpy as np

from au import progress
from au.errors import AUError


def _detector(kind: str):
    import cv2

    if kind == "orb":
        return cv2.ORB_create(nfeatures=64, edgeThreshold=8, patchSize=15, fastThreshold=10)
    return cv2.BRISK_create(thresh=20, octaves=1)


class KeypointBag:
    """Images (N, H, W, C) uint8 -> float32 (N, words + 1): histogram of visual words and the keypoint count.

    Parameters
    ----------
    kind : {"orb", "brisk"}
    words : int
        Size of the vocabulary.
    scale : int
        Upscaling of each image before detection.
    fit_limit : int
        Training images whose descriptors the vocabulary is fitted on.
    seed : int
    """

    def __init__(
        self, kind: str, words: int = 64, scale: int = 3, fit_limit: int = 5000, seed: int = 0
    ) -> None:
        if kind not in ("orb", "brisk"):
            raise AUError(f"keypoint bag: kind must be orb or brisk, got {kind!r}")
        self.kind, self.words, self.scale, self.fit_limit, self.seed = kind, words, scale, fit_limit, seed
        self.name = kind

    def descriptors(self, images: np.ndarray) -> list[np.ndarray]:
        """Per image, its descriptors unpacked to bits: float32 (k_i, bits) (k_i may be 0)."""
        import cv2

        detector, out = _detector(self.kind), []
        with progress.bar(len(images), self.kind, "img") as pbar:
            for image in images:
                grey = image[..., 0] if image.shape[2] == 1 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
                big = cv2.resize(grey, None, fx=self.scale, fy=self.scale, interpolation=cv2.INTER_CUBIC)
                _, desc = detector.detectAndCompute(big, None)
                bits = np.unpackbits(desc, axis=1) if desc is not None else np.zeros((0, 8), np.uint8)
                out.append(bits.astype(np.float32))
                pbar.update(1)
        return out

    def fit(self, images: np.ndarray) -> KeypointBag:
        import faiss

        rng = np.random.default_rng(self.seed)
        chosen = images[np.sort(rng.permutation(len(images))[: self.fit_limit])]
        found = [d for d in self.descriptors(chosen) if len(d)]
        if not found:
            raise AUError(
                f"{self.kind}: no keypoints in {len(chosen)} training images; the images are too flat"
            )
        sample = np.concatenate(found)
        words = min(self.words, len(sample))
        kmeans = faiss.Kmeans(sample.shape[1], words, niter=20, seed=self.seed, verbose=False)
        kmeans.train(np.ascontiguousarray(sample))
        self.vocabulary_ = kmeans.centroids.copy()  # (words, bits)
        return self

    def transform(self, images: np.ndarray) -> np.ndarray:
        import faiss

        index = faiss.IndexFlatL2(self.vocabulary_.shape[1])
        index.add(self.vocabulary_)
        k = len(self.vocabulary_)
        out = np.zeros((len(images), k + 1), dtype=np.float32)
        for i, bits in enumerate(self.descriptors(images)):
            if len(bits):
                _, nearest = index.search(np.ascontiguousarray(bits), 1)
                out[i, :k] = np.bincount(nearest[:, 0], minlength=k) / len(bits)
            out[i, k] = np.log1p(len(bits))
        return out
