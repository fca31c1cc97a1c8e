"""Inference and classification metrics, per class and overall."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from au import progress
from au.data.dataset import ImageDataset, to_tensor
from au.models.layers import eval_mode

EVAL_BATCH = 256


def predict_logits(
    model: nn.Module,
    images: np.ndarray,
    batch_size: int = EVAL_BATCH,
    show: bool = False,
    desc: str = "predict",
) -> np.ndarray:
    """Logits of ``model`` for uint8 images (N, H, W, C) -> float32 (N, num_classes), in eval mode.

    The model's ``training`` flag is restored afterwards.
    """
    out = []
    with (
        eval_mode(model),
        torch.inference_mode(),
        progress.bar(len(images), desc, "img", enabled=show) as pbar,
    ):
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size]
            out.append(model(to_tensor(batch)).float().numpy().copy())  # owned: see record_job.batch_columns
            pbar.update(len(batch))
    if not out:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(out)


@dataclass(frozen=True)
class Evaluation:
    """Metrics of one model on one labelled dataset.

    ``precision[k]`` / ``recall[k]`` are 0 where undefined (no predictions / no examples of class k).
    ``confusion[i, j]`` counts examples of class i predicted as j.
    """

    n: int
    accuracy: float
    loss: float
    precision: np.ndarray  # (K,)
    recall: np.ndarray  # (K,)
    f1: np.ndarray  # (K,)
    support: np.ndarray  # (K,) int
    confusion: np.ndarray  # (K, K) int
    predictions: np.ndarray  # (N,) int64

    def per_class_rows(self, class_names: tuple[str, ...]) -> list[dict]:
        return [
            {
                "class": k,
                "name": class_names[k] if k < len(class_names) else str(k),
                "support": int(self.support[k]),
                "precision": float(self.precision[k]),
                "recall": float(self.recall[k]),
                "f1": float(self.f1[k]),
            }
            for k in range(len(self.support))
        ]


def metrics_from_logits(logits: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Accuracy, mean cross-entropy and per-class precision/recall/F1 from logits (N, K) and labels (N,)."""
    num_classes = logits.shape[1]
    pred = logits.argmax(axis=1).astype(np.int64)
    loss = (
        float(F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)).item())
        if len(labels)
        else float("nan")
    )
    confusion = np.bincount(labels * num_classes + pred, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )
    tp = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return Evaluation(
        n=len(labels),
        accuracy=float((pred == labels).mean()) if len(labels) else float("nan"),
        loss=loss,
        precision=precision,
        recall=recall,
        f1=f1,
        support=support,
        confusion=confusion,
        predictions=pred,
    )


def evaluate(
    model: nn.Module, data: ImageDataset, batch_size: int = EVAL_BATCH, show: bool = False
) -> Evaluation:
    """Metrics of ``model`` on a labelled dataset."""
    logits = predict_logits(model, data.images, batch_size, show=show, desc=f"evaluate {data.split}")
    return metrics_from_logits(logits, data.labels)
