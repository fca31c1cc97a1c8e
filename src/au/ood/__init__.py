"""Out-of-distribution evaluation: metrics, and the ``au score`` pipeline."""

from au.ood.metrics import (
    aupr_in,
    aupr_out,
    auroc,
    detection_accuracy,
    fpr_at_tpr,
    misclassification_auroc,
    ood_metrics,
)

__all__ = [
    "aupr_in",
    "aupr_out",
    "auroc",
    "detection_accuracy",
    "fpr_at_tpr",
    "misclassification_auroc",
    "ood_metrics",
]
