"""Which inputs ``au explain`` attributes, and for which class: by id, the first N, or a selection.

Selections: ``correct`` and ``wrong`` predictions, in dataset order; ``lowest-density`` and
``highest-density`` rank every input of the split by its ``parzen_lsh`` log-density at the
feature layer (:mod:`au.explain.density`).
"""

from __future__ import annotations

import numpy as np
from torch import nn

from au.data import ImageDataset
from au.errors import AUError
from au.explain.config import ExplainConfig
from au.explain.density import feature_layer, fit_density, layer_features
from au.train.evaluation import predict_logits


def predictions(model: nn.Module, data: ImageDataset) -> np.ndarray:
    """The model's predicted class of every input, shape (N,)."""
    return predict_logits(model, data.images).argmax(axis=1)


def by_ids(data: ImageDataset, ids) -> np.ndarray:
    """Positions of ``ids`` in ``data``, or one line naming the first id it lacks."""
    if len(set(ids)) != len(ids):
        raise AUError("--ids names an example twice; list each once")
    position = {example_id: i for i, example_id in enumerate(data.ids)}
    missing = [i for i in ids if i not in position]
    if missing:
        raise AUError(
            f"example id {missing[0]!r} is not in {data.name!r} ({data.split}); its ids look like {str(data.ids[0])!r}"
        )
    return np.array([position[i] for i in ids], dtype=np.int64)


def choose(
    model: nn.Module, data: ImageDataset, config: ExplainConfig, train: ImageDataset | None = None
) -> tuple[ImageDataset, np.ndarray, np.ndarray | None]:
    """(the chosen inputs, the model's predictions on them, their log-densities when the selection ranked by density)."""
    if config.ids is not None:
        chosen = data.subset(by_ids(data, config.ids))
        return chosen, predictions(model, chosen), None
    if config.select is None:
        chosen = data.subset(np.arange(min(config.limit, len(data))))
        return chosen, predictions(model, chosen), None
    if config.select in ("correct", "wrong"):
        pred = predictions(model, data)
        labelled = data.labels >= 0
        if not labelled.any():
            raise AUError(f"--select {config.select}: {data.name!r} has no labels; use --limit or --ids")
        hit = (pred == data.labels) if config.select == "correct" else (pred != data.labels)
        rows = np.flatnonzero(hit & labelled)[: config.limit]
        if not len(rows):
            raise AUError(f"--select {config.select}: none of the {len(data):,} inputs is {config.select}")
        return data.subset(rows), pred[rows], None
    if train is None:
        raise AUError(f"--select {config.select} needs the training split, to fit the density on")
    layer = feature_layer(model, config.layer)
    density, _ = fit_density(model, train, layer, config.fit_limit, config.seed)
    features, logits = layer_features(model, data.images, layer)
    log_density = density.score_samples(features)
    order = np.argsort(log_density, kind="stable")
    rows = (order if config.select == "lowest-density" else order[::-1])[: config.limit]
    return data.subset(rows), logits[rows].argmax(axis=1), log_density[rows]


def check_label_space(config: ExplainConfig, data: ImageDataset, class_names) -> None:
    """``--target label`` and ``--select correct|wrong`` compare labels with predictions: only where the
    data's classes are the model's (``class_names``: the run's classes; None when unknown)."""
    uses_labels = config.target == "label" or config.select in ("correct", "wrong")
    if uses_labels and class_names is not None and tuple(data.class_names) != tuple(class_names):
        what = "--target label" if config.target == "label" else f"--select {config.select}"
        raise AUError(
            f"{what}: the labels of {data.name!r} ({', '.join(data.class_names[:3])}, ...) are not the model's classes "
            f"({', '.join(class_names[:3])}, ...); use --target pred and --limit, --ids or a density selection"
        )


def targets(target: str | int, data: ImageDataset, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """The class each input's map explains: its prediction, its label, or one class for all."""
    if target == "pred":
        return np.asarray(pred, dtype=np.int64)
    if target == "label":
        if (data.labels < 0).any():
            first = data.ids[np.flatnonzero(data.labels < 0)[0]]
            raise AUError(
                f"--target label: input {str(first)!r} has no label; use --target pred or a class index"
            )
        return data.labels.copy()
    check_class(target, num_classes)
    return np.full(len(data), int(target), dtype=np.int64)


def check_class(target: str | int, num_classes: int) -> None:
    """A class index given as ``--target`` is one of the model's classes, or one line naming them."""
    if not isinstance(target, str) and not 0 <= int(target) < num_classes:
        raise AUError(f"--target: unknown class {target}; the model has classes 0..{num_classes - 1}")
