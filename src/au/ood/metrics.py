"""Out-of-distribution metrics for scores where higher means more in-distribution.

In-distribution inputs are the positive class throughout (as in Hendrycks & Gimpel 2017,
arXiv 1610.02136, and Liang et al. 2018, arXiv 1706.02690).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from au.errors import AUError


def _pair(scores_in, scores_out) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s_in = np.asarray(scores_in, dtype=np.float64).reshape(-1)
    s_out = np.asarray(scores_out, dtype=np.float64).reshape(-1)
    if len(s_in) == 0 or len(s_out) == 0:
        raise AUError("OOD metrics need at least one in-distribution and one out-of-distribution score")
    if not (np.isfinite(s_in).all() and np.isfinite(s_out).all()):
        raise AUError("OOD metrics got NaN or infinite scores; the detector's scores must be finite")
    y = np.concatenate([np.ones(len(s_in)), np.zeros(len(s_out))])
    return s_in, s_out, y


def auroc(scores_in, scores_out) -> float:
    """Area under the ROC curve: P(score of an in-distribution input > that of an OOD input), ties 1/2."""
    s_in, s_out, y = _pair(scores_in, scores_out)
    return float(roc_auc_score(y, np.concatenate([s_in, s_out])))


def aupr_in(scores_in, scores_out) -> float:
    """Average precision with in-distribution inputs as positives."""
    s_in, s_out, y = _pair(scores_in, scores_out)
    return float(average_precision_score(y, np.concatenate([s_in, s_out])))


def aupr_out(scores_in, scores_out) -> float:
    """Average precision with OOD inputs as positives (scores negated)."""
    s_in, s_out, y = _pair(scores_in, scores_out)
    return float(average_precision_score(1 - y, -np.concatenate([s_in, s_out])))


def fpr_at_tpr(scores_in, scores_out, tpr: float = 0.95) -> float:
    """Share of OOD inputs accepted at the threshold that accepts ``tpr`` of in-distribution inputs."""
    s_in, s_out, y = _pair(scores_in, scores_out)
    fpr, tprs, _ = roc_curve(y, np.concatenate([s_in, s_out]), drop_intermediate=False)
    return float(fpr[np.searchsorted(tprs, tpr, side="left")])


def detection_accuracy(scores_in, scores_out) -> float:
    """max over thresholds of (TPR + TNR) / 2: the best balanced accuracy of one threshold."""
    s_in, s_out, y = _pair(scores_in, scores_out)
    fpr, tprs, _ = roc_curve(y, np.concatenate([s_in, s_out]), drop_intermediate=False)
    return float(np.max(0.5 * (tprs + 1.0 - fpr)))


def ood_metrics(scores_in, scores_out) -> dict[str, float]:
    """All five metrics for one detector and one OOD set."""
    return {
        "auroc": auroc(scores_in, scores_out),
        "aupr_in": aupr_in(scores_in, scores_out),
        "aupr_out": aupr_out(scores_in, scores_out),
        "fpr_at_95_tpr": fpr_at_tpr(scores_in, scores_out, 0.95),
        "detection_accuracy": detection_accuracy(scores_in, scores_out),
    }


def misclassification_auroc(scores, correct) -> float | None:
    """AUROC of separating correct from wrong predictions (correct = positive); None if either is absent."""
    scores = np.asarray(scores, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    if correct.all() or not correct.any():
        return None
    return float(roc_auc_score(correct.astype(int), scores))
