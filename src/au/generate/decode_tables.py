"""The table ``au decode`` writes, with its one declared schema checked on every write (au.tables).

``decoded.parquet``: one row per decoded image - what it was decoded from, what the classifier says
of it, and how far it lies from its target and its source::

    layer                string              the layer decoded
    kind                 string              test, high_density, low_density, interpolation or inversion
    index                int64               the row's place among the layer's rows of its kind
    source_ids           list<string>        the recorded examples it comes from (two for an interpolation)
    label                int64               the source's label when there is one source (else null)
    t                    float64             an interpolation's place between its two sources (else null)
    pred                 int64               the classifier's prediction on the decoded image
    probs                list<float32>[K]    its class probabilities
    <detector>           float64             one column per registered detector that reads the logits or
                                             the layer's features (higher = more in-distribution), the
                                             feature detectors fitted at the row's layer on the training
                                             rows (:func:`score_names`); the density has its own columns
    target_log_density   float64             ``parzen_lsh`` log-density of the vector decoded
    decoded_log_density  float64             that of the decoded image's own activation at the layer
    feature_error        float64             ||phi(image) - target|| / ||target||
    pixel_mse            float64             mean squared pixel error ([0, 1] units) to the source image,
                                             where there is one (else null)
    png                  binary              the decoded image as PNG (grey for one channel)
"""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
from PIL import Image

from au.detectors import registry

DECODED = "decoded.parquet"


def score_names() -> tuple[str, ...]:
    """The detectors that score every decoded image: each registered one that reads the logits or a layer's
    features, chosen by what it declares it reads - but the density, whose log-densities have columns of
    their own (``target_log_density``, ``decoded_log_density``)."""
    return tuple(n for n in registry.reading("logits", "features") if n != registry.DENSITY)


def decoded_schema(num_classes: int, scores) -> pa.Schema:
    """``decoded.parquet``'s schema for ``num_classes`` probabilities and the detector columns ``scores``."""
    element = pa.field("element", pa.float32(), nullable=False)
    return pa.schema(
        [
            pa.field("layer", pa.string(), nullable=False),
            pa.field("kind", pa.string(), nullable=False),
            pa.field("index", pa.int64(), nullable=False),
            pa.field("source_ids", pa.list_(pa.string()), nullable=False),
            pa.field("label", pa.int64()),
            pa.field("t", pa.float64()),
            pa.field("pred", pa.int64(), nullable=False),
            pa.field("probs", pa.list_(element, num_classes), nullable=False),
            *(pa.field(name, pa.float64(), nullable=False) for name in scores),
            pa.field("target_log_density", pa.float64(), nullable=False),
            pa.field("decoded_log_density", pa.float64(), nullable=False),
            pa.field("feature_error", pa.float64(), nullable=False),
            pa.field("pixel_mse", pa.float64()),
            pa.field("png", pa.binary(), nullable=False),
        ]
    )


def table_rows(
    layer: str, kind: str, images: np.ndarray, scored: dict, sources: list[list[str]], **extra
) -> list[dict]:
    """Rows of ``decoded.parquet`` for decoded ``images`` (n, H, W, C); ``scored["scores"]`` maps each detector
    to its scores (n,); ``extra`` holds per-row columns or None."""
    columns = [
        "target_log_density",
        "decoded_log_density",
        "feature_error",
    ]
    return [
        {
            "layer": layer,
            "kind": kind,
            "index": i,
            "source_ids": sources[i],
            "label": _item(extra.get("label"), i, int),
            "t": _item(extra.get("t"), i, float),
            "pred": int(scored["pred"][i]),
            "probs": scored["probs"][i],
            **{d: float(s[i]) for d, s in scored["scores"].items()},
            **{c: float(scored[c][i]) for c in columns},
            "pixel_mse": _item(extra.get("pixel_mse"), i, float),
            "png": png_bytes(images[i]),
        }
        for i in range(len(images))
    ]


def _item(values, i: int, kind):
    return None if values is None else kind(values[i])


def png_bytes(image: np.ndarray) -> bytes:
    """One uint8 image (H, W, C) as PNG bytes (grey for one channel)."""
    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[2] == 1 else image).save(
        buffer, format="png", compress_level=6
    )
    return buffer.getvalue()
