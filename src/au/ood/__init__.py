"""Out-of-distribution metrics for scores where higher means more in-distribution (pure: arrays in, numbers out)."""

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
