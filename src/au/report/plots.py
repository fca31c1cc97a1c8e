"""Figures for the report (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from au.files import atomic_path  # noqa: E402


def save(fig, path: Path) -> Path:
    """Write ``fig`` to ``path`` as PNG, atomically, and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def training_curve(history: dict, title: str = "Training"):
    """Loss per step (raw and smoothed) and, per epoch, train and validation accuracy."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6))
    losses = np.asarray(history.get("step_loss", []), dtype=float)
    if len(losses):
        steps = np.arange(1, len(losses) + 1)
        ax_loss.plot(steps, losses, color="#bbb", lw=0.6, label="per step")
        window = max(1, len(losses) // 50)
        if window > 1:
            smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
            ax_loss.plot(
                steps[window - 1 :], smooth, color="#b8860b", lw=1.5, label=f"mean of {window} steps"
            )
        ax_loss.set_yscale("log")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("cross-entropy")
    ax_loss.set_title(f"{title}: loss")
    ax_loss.legend(loc="upper right", fontsize=8)
    epochs = history.get("epoch", [])
    ax_acc.plot(epochs, history.get("train_accuracy", []), "o-", label="train (running, dropout on)")
    val = [np.nan if v is None else v for v in history.get("val_accuracy", [])]
    if any(np.isfinite(val)):
        ax_acc.plot(epochs, val, "s-", label="validation")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_title(f"{title}: accuracy")
    ax_acc.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def roc_curves(table, detectors, title: str = "ROC"):
    """One panel per OOD set of a scores table: ROC curve of every detector (in-distribution = positive)."""
    from sklearn.metrics import roc_curve

    is_ood = table.column("is_ood").to_numpy(zero_copy_only=False)
    dataset = np.asarray(table.column("dataset").to_pylist())
    ood_names = list(dict.fromkeys(dataset[is_ood]))
    cols = min(3, max(1, len(ood_names)))
    rows = -(-len(ood_names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.8 * rows), squeeze=False)
    for ax, name in zip(axes.flat, ood_names, strict=False):
        keep = ~is_ood | (dataset == name)
        for det in detectors:
            s = table.column(det).to_numpy()[keep]
            fpr, tpr, _ = roc_curve((~is_ood[keep]).astype(int), s)
            ax.plot(fpr, tpr, lw=1.2, label=det)
        ax.plot([0, 1], [0, 1], color="#ccc", lw=0.8, ls="--")
        ax.set_title(f"{title}: {name}", fontsize=9)
        ax.set_xlabel("false positive rate (OOD accepted)")
        ax.set_ylabel("true positive rate (in-dist. accepted)")
    for ax in list(axes.flat)[len(ood_names) :]:
        ax.axis("off")
    axes.flat[0].legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    return fig
