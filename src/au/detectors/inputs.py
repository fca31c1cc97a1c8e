"""Giving a detector what it declares it consumes: the one dispatch between the pipeline and the detectors.

The pipeline collects what it knows about a set of examples in one :class:`Inputs` (logits, one
layer's features, the images, the predictions, the labels); :func:`fit_detector` and
:func:`score_detector` hand each detector the parts its :class:`~au.detectors.base.Consumes` names,
and nothing else; :func:`score_in_chunks` scores a set of any size a few thousand rows at a time.
A new detector needs no change here or in any stage.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from au.detectors.base import Detector
from au.errors import AUError

SCORE_ROWS = 4096
"""Rows :func:`score_in_chunks` scores at once: a multiple of the image detectors' batch sizes (so
their batches fall where one call would put them) and of faiss's blocks of queries."""


@dataclass
class Inputs:
    """Row-aligned arrays about n examples; any may be absent (None).

    logits (n, K); features (n, d), one layer's; images uint8 (n, H, W, C); pred (n,) the model's
    predictions; labels (n,).
    """

    logits: np.ndarray | None = None
    features: np.ndarray | None = None
    images: np.ndarray | None = None
    pred: np.ndarray | None = None
    labels: np.ndarray | None = None

    def get(self, form: str, who: Detector) -> np.ndarray:
        value = getattr(self, form)
        if value is None:
            raise AUError(f"{type(who).__name__} reads {form}, which this pipeline does not provide here")
        return value

    def __len__(self) -> int:
        """The number of rows: the length of the first array present (0 when there is none)."""
        present = [getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None]
        return len(present[0]) if present else 0

    def rows(self, lo: int, hi: int) -> Inputs:
        """Rows ``lo:hi`` of every array present, as views."""
        return Inputs(**{f.name: _rows(getattr(self, f.name), lo, hi) for f in fields(self)})


def _rows(values: np.ndarray | None, lo: int, hi: int) -> np.ndarray | None:
    return None if values is None else values[lo:hi]


def fit_detector(
    det: Detector, train: Inputs, val: Inputs | None = None, val_ood: Inputs | None = None
) -> Detector:
    """Fit ``det`` on ``train`` (and, when it uses them, the validation inputs ``val`` and ``val_ood``)."""
    c = det.consumes
    extra = {}
    if c.validation != "none" and val is not None:
        extra["X_val"] = val.get(c.input, det)
        if val_ood is not None:
            extra["X_val_ood"] = val_ood.get(c.input, det)
    labels = train.get("labels", det) if c.labels else None
    return det.fit(train.get(c.input, det), labels, **extra)


def score_detector(det: Detector, inputs: Inputs) -> np.ndarray:
    """``det``'s scores of ``inputs``, shape (n,)."""
    pred = {"pred": inputs.get("pred", det)} if det.consumes.predictions else {}
    return det.score_samples(inputs.get(det.consumes.input, det), **pred)


def score_in_chunks(det: Detector, inputs: Inputs, rows: int = SCORE_ROWS) -> np.ndarray:
    """``det``'s scores of ``inputs``, shape (n,), computed ``rows`` rows at a time: :func:`score_detector`'s.

    Every detector scores each row on its own, so the chunks do not change the scores; what it holds
    while scoring - distances, candidate pairs, gradients - is bounded by a chunk instead of growing
    with the set. Chunks start at multiples of ``rows`` and the last takes the remainder (``rows`` to
    ``2 rows - 1`` rows): no chunk is a sliver, which BLAS and faiss would compute another way. The
    counts a scoring leaves on the detector (``_scoring_counts``) are summed over the chunks, so they
    describe the whole set as one call's would.
    """
    if rows < 1:
        raise AUError(f"score_in_chunks: rows must be at least 1, got {rows}")
    n = len(inputs)
    bounds = [*(range(0, n - rows + 1, rows) or [0]), n]
    scores, counts = [], dict.fromkeys(det._scoring_counts, 0)
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        scores.append(score_detector(det, inputs.rows(lo, hi)))
        for key in counts:
            counts[key] += getattr(det, key)
    for key, total in counts.items():
        setattr(det, key, total)
    return np.concatenate(scores)
