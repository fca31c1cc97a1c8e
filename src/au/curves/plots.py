"""Learning-curve figures: accuracy vs training examples, error on log-log axes, per-class curves."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from au.curves.learning_curve import Fits  # noqa: E402

_POWER, _PAC, _POINTS = "#b8860b", "#2a6fb0", "#444"


def _grid(m: np.ndarray, targets_n: list[float]) -> np.ndarray:
    hi = max([m.max() * 2] + [n * 1.3 for n in targets_n if np.isfinite(n) and n < m.max() * 50])
    return np.logspace(np.log10(m.min() * 0.8), np.log10(hi), 200)


def _band(curves: list, grid: np.ndarray, level: float, attr: str) -> tuple[np.ndarray, np.ndarray] | None:
    if not curves:
        return None
    values = np.array([getattr(c, attr)(grid) for c in curves])
    tail = (1 - level) / 2
    return np.quantile(values, tail, axis=0), np.quantile(values, 1 - tail, axis=0)


def _draw_fits(ax, fits, grid: np.ndarray, level: float, kind: str, names: tuple[str, str]) -> None:
    """Both fitted curves (``kind`` "accuracy" or "error") with their bootstrap bands."""
    for fit, boot, colour, name in (
        (fits.power_law, fits.power_boot, _POWER, names[0]),
        (fits.pac, fits.pac_boot, _PAC, names[1]),
    ):
        if fit is None:
            continue
        ax.plot(grid, getattr(fit, kind)(grid), color=colour, lw=1.8, label=name)
        band = _band(boot, grid, level, kind)
        if band is not None:
            ax.fill_between(grid, band[0], band[1], color=colour, alpha=0.18, lw=0)


def accuracy_curve(table: pa.Table, fits: Fits, fits_json: dict, title: str = ""):
    """Test accuracy vs training examples (log x): trials, per-size means, both fits with bands."""
    m = np.asarray(table.column("n_train").to_numpy(), dtype=float)
    acc = np.asarray(table.column("test_accuracy").to_numpy(), dtype=float)
    level = fits_json["bootstrap"]["level"]
    needed = [n["power_law"]["n_train"] or np.inf for n in fits_json["needed"] if n.get("power_law")]
    grid = _grid(m, needed)
    fig, ax = plt.subplots(figsize=(8, 4.8))
    ax.scatter(m, acc, s=12, color="#999", label="trials", zorder=3)
    means = fits_json["per_fraction"]
    ax.plot(
        [p["n_train_mean"] for p in means],
        [p["accuracy_mean"] for p in means],
        "o",
        color=_POINTS,
        ms=5,
        label="mean per size",
        zorder=4,
    )
    _draw_fits(ax, fits, grid, level, "accuracy", ("power law  a·m^-b + e∞", "PAC  1 - sqrt(c/m)"))
    for t in fits_json["needed"]:
        ax.axhline(t["target_accuracy"], color="#aaa", lw=0.8, ls=":")
    ax.set_xscale("log")
    low = max(0.0, min(acc.min(), 0.9) - 0.02)
    ax.set_ylim(low, 1.0)
    ax.set_xlabel("training examples m (log scale)")
    ax.set_ylabel("test accuracy")
    ax.set_title(title or f"Learning curve ({int(level * 100)}% bootstrap bands)")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


def error_loglog(table: pa.Table, fits: Fits, fits_json: dict, title: str = ""):
    """Test error vs training examples on log-log axes, with the power law's e_inf."""
    m = np.asarray(table.column("n_train").to_numpy(), dtype=float)
    n_test = np.asarray(table.column("n_test").to_numpy(), dtype=float)
    err = np.maximum(1 - np.asarray(table.column("test_accuracy").to_numpy(), dtype=float), 0.5 / n_test)
    level = fits_json["bootstrap"]["level"]
    grid = _grid(m, [])
    fig, ax = plt.subplots(figsize=(8, 4.8))
    ax.scatter(m, err, s=12, color="#999", label="trials", zorder=3)
    _draw_fits(ax, fits, grid, level, "error", ("power law", "PAC"))
    if fits.power_law is not None and fits.power_law.e_inf > 0:
        ax.axhline(
            fits.power_law.e_inf, color=_POWER, ls="--", lw=1, label=f"e∞ = {fits.power_law.e_inf:.4f}"
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training examples m")
    ax.set_ylabel("test error")
    ax.set_title(title or "Test error, log-log")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


def per_class_curves(table: pa.Table, class_names: tuple[str, ...]):
    """Recall of every class vs training examples (mean over trials), log x."""
    m = np.asarray(table.column("n_train").to_numpy(), dtype=float)
    fractions = np.asarray(table.column("fraction").to_numpy(), dtype=float)
    recall = np.array(table.column("per_class_recall").to_pylist(), dtype=float)
    sizes = np.unique(fractions)
    fig, ax = plt.subplots(figsize=(8, 4.8))
    cmap = plt.get_cmap("tab10")
    for k in range(recall.shape[1]):
        xs = [m[fractions == f].mean() for f in sizes]
        ys = [recall[fractions == f, k].mean() for f in sizes]
        name = class_names[k] if k < len(class_names) else str(k)
        ax.plot(xs, ys, "o-", ms=3, lw=1.2, color=cmap(k % 10), label=name)
    ax.set_xscale("log")
    ax.set_xlabel("training examples m (log scale)")
    ax.set_ylabel("test recall of the class")
    ax.set_title("Per-class learning curves (mean over trials)")
    ax.legend(loc="lower right", fontsize=7, ncol=2)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


def class_ablation_curve(fits_json: dict):
    """Shrinking one class: its recall and precision, and the other classes', vs its training examples."""
    pts = fits_json["points"]
    x = [p["n_train_class"] for p in pts]
    fig, ax = plt.subplots(figsize=(8, 4.8))
    name = fits_json["class_name"]
    ax.plot(x, [p["class_recall_mean"] for p in pts], "o-", color=_POWER, label=f"recall of {name}")
    ax.plot(x, [p["class_precision_mean"] for p in pts], "s--", color=_POWER, label=f"precision of {name}")
    ax.plot(
        x, [p["others_recall_mean"] for p in pts], "o-", color=_PAC, label="recall of other classes (mean)"
    )
    ax.plot(
        x,
        [p["others_precision_mean"] for p in pts],
        "s--",
        color=_PAC,
        label="precision of other classes (mean)",
    )
    ax.plot(
        x, [p["others_precision_min"] for p in pts], ":", color=_PAC, label="precision of other classes (min)"
    )
    ax.set_xscale("log")
    ax.set_xlabel(f"training examples of class {name} (log scale)")
    ax.set_ylabel("test metric")
    ax.set_title(f"Class-composition ablation: shrinking {name}, other classes whole")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig
