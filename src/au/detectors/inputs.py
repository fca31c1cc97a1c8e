"""Giving a detector what it declares it consumes: the one dispatch between the pipeline and the detectors.

The pipeline collects what it knows about a set of examples in one :class:`Inputs` (logits, one
layer's features, the images, the predictions, the labels); :func:`fit_detector` and
:func:`score_detector` hand each detector the parts its :class:`~au.detectors.base.Consumes` names,
and nothing else. A new detector needs no change here or in any stage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from au.detectors.base import Detector
from au.errors import AUError


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
