"""Figures of the gold leaderboard: risk-coverage curves, reliability diagrams, coverage vs training size."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from au.detectors.registry import detector_class  # noqa: E402
from au.guarantees.selective import risk_coverage  # noqa: E402


def risk_coverage_curves(scores: dict[str, np.ndarray], errors: np.ndarray, epsilons, title: str = ""):
    """Selective risk against coverage for every entry (arrays (n,)), with the target risks dashed."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    base = float(np.mean(errors))
    for key, s in scores.items():
        coverage, risk, _ = risk_coverage(s, errors)
        ax.plot(coverage, risk, lw=1.2, label=key)
    for eps in epsilons:
        ax.axhline(eps, color="#999", lw=0.8, ls="--")
        ax.text(0.01, eps, f" epsilon {eps:g}", va="bottom", fontsize=7, color="#666")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, max(base * 1.6, max(epsilons) * 1.5, 1e-3))
    ax.set_xlabel("coverage (share of inputs accepted)")
    ax.set_ylabel("selective risk (error rate among accepted)")
    ax.set_title(
        f"Risk-coverage curves{': ' + title if title else ''} (overall error {base:.4f})", fontsize=10
    )
    ax.legend(fontsize=7, loc="upper left", ncol=2)
    fig.tight_layout()
    return fig


def reliability_diagram(calibration: dict):
    """Accuracy against confidence per bin, before and after temperature scaling (test part)."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 4), sharey=True)
    for ax, tag, name in zip(
        axes, ("before", "after"), ("softmax", f"T = {calibration['temperature']:.3f}"), strict=True
    ):
        r = calibration[f"reliability_{tag}"]
        edges = np.asarray(r["edges"])
        acc = np.asarray(r["accuracy"], dtype=float)
        conf = np.asarray(r["confidence"], dtype=float)
        width = np.diff(edges)
        used = np.asarray(r["count"]) > 0
        ax.bar(
            edges[:-1][used],
            acc[used],
            width=width[used],
            align="edge",
            color="#b8860b",
            alpha=0.8,
            edgecolor="#6b4f07",
            label="accuracy",
        )
        ax.bar(
            edges[:-1][used],
            (conf - acc)[used],
            bottom=acc[used],
            width=width[used],
            align="edge",
            color="none",
            edgecolor="#c0392b",
            hatch="//",
            label="gap to confidence",
        )
        ax.plot([0, 1], [0, 1], color="#444", lw=0.8, ls="--")
        ax.set_xlabel("confidence (max softmax)")
        ax.set_title(f"{name}: ECE {calibration[f'ece_{tag}']:.4f}", fontsize=10)
    axes[0].set_ylabel("accuracy")
    axes[0].legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def density_detector(detectors: list[str]) -> str | None:
    """The first of ``detectors`` whose score is a log-density, if any."""
    return next((d for d in detectors if detector_class(d).score_unit == "log-density"), None)


def coverage_vs_training(rows: list[dict], epsilons, delta: float):
    """Certified coverage (mean over splits) against training examples, one panel per epsilon, plus
    the mean score of the test inputs of the density detector (or of the first detector) in the last panel."""
    detectors = list(dict.fromkeys(r["detector"] for r in rows))
    shown = density_detector(detectors) or detectors[0]
    fig, axes = plt.subplots(1, len(epsilons) + 1, figsize=(3.9 * (len(epsilons) + 1), 3.8), squeeze=False)
    axes = axes[0]
    for ax, eps in zip(axes, epsilons, strict=False):
        for det in detectors:
            sel = [r for r in rows if r["detector"] == det and r["epsilon"] == eps]
            n = np.array([r["n_train"] for r in sel], dtype=float)
            cov = np.array([r["coverage_mean"] for r in sel])
            line = ax.plot(*_means(sel, n, cov), "o-", lw=1.3, ms=3, label=det)[0]
            ax.scatter(n, cov, s=8, color=line.get_color(), alpha=0.4)
        ax.set_xscale("log")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("training examples")
        ax.set_title(f"certified coverage, risk <= {eps:g} (delta {delta:g})", fontsize=9)
    axes[0].set_ylabel("coverage (mean over splits)")
    axes[0].legend(fontsize=7, loc="upper left")
    ax = axes[-1]
    sel = [r for r in rows if r["detector"] == shown and r["epsilon"] == epsilons[0]]
    n = np.array([r["n_train"] for r in sel], dtype=float)
    ax.plot(*_means(sel, n, np.array([r["score_mean"] for r in sel])), "o-", color="#2a6fb0", lw=1.3, ms=3)
    ax.set_xscale("log")
    ax.set_xlabel("training examples")
    ax.set_title(f"mean {shown} score of the test inputs", fontsize=9)
    fig.tight_layout()
    return fig


def _means(rows: list[dict], n: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean size and mean ``y`` over the trials of each fraction (their sizes differ by a few examples)."""
    fraction = np.array([r["fraction"] for r in rows])
    groups = np.unique(fraction)
    return (
        np.array([n[fraction == f].mean() for f in groups]),
        np.array([y[fraction == f].mean() for f in groups]),
    )
