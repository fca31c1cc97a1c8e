"""Figures of the gold leaderboard: risk-coverage curves, reliability diagrams, coverage vs training size,
and the training examples a target coverage needs."""

from __future__ import annotations

import textwrap

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

from au.curves.power_law import PowerLawFit  # noqa: E402
from au.detectors.registry import detector_class  # noqa: E402
from au.errors import AUError  # noqa: E402
from au.gold.needed_data import coverage_at, needed_data  # noqa: E402
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


_FIT, _HELD, _TARGET = "#b8860b", "#2a6fb0", "#c0392b"


MAX_EXTRAPOLATION = 100
"""The needed-data figure's axis ends this many times beyond the largest training set of the sweep."""


def needed_data_figure(
    result_or_rows, *, epsilon: float | None = None, detector: str | None = None, **options
):
    """Certified coverage against training examples (log x) with the fitted curve and what a target needs.

    One panel per detector at one ``epsilon`` (default: the smallest), or, given ``detector``, one
    panel per epsilon. Each shows the trials (hollow: coverage 0, left out of the fit), the fitted
    ``1 - coverage = a m^-b + c`` with its bootstrap band, the fit on the small fractions only
    (dashed, the held-out check), the target coverage and the predicted training examples with
    their interval - or why the target is not reachable.

    Parameters
    ----------
    result_or_rows : dict or list of dict
        What :func:`au.gold.needed_data.needed_data` returns, or the rows it takes (then fitted
        here with ``options``: ``target``, ``held_out_max_fraction``, ``seed``, ...).
    """
    result = result_or_rows if isinstance(result_or_rows, dict) else needed_data(result_or_rows, **options)
    entries = result["entries"]
    if detector is not None:
        panels = [e for e in entries if e["detector"] == detector]
    else:
        eps = min((e["epsilon"] for e in entries), default=None) if epsilon is None else float(epsilon)
        panels = [e for e in entries if e["epsilon"] == eps]
    if not panels:
        raise AUError(f"needed-data figure: no entry for detector={detector!r}, epsilon={epsilon!r}")
    cols = min(len(panels), 4)
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(4.3 * cols, 3.7 * rows + 0.6), squeeze=False, sharex=True, sharey=True
    )
    for ax, entry in zip(axes.flat, panels, strict=False):
        _needed_panel(ax, entry, result)
        ax.set_title(
            f"{entry['detector']}, risk <= {entry['epsilon']:g}"
            if detector is None
            else f"risk <= {entry['epsilon']:g}",
            fontsize=9,
        )
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("certified coverage")
    trained = [t["n_train"] for e in panels for t in e["trials"]]
    if trained:  # a needed m far beyond the sweep stays in its panel's text, not on a stretched axis
        axes[0, 0].set_xlim(min(trained) / 2, max(trained) * MAX_EXTRAPOLATION)
    handles, labels = _legend_items(axes)
    head = f"{detector}: " if detector is not None else ""
    fig.suptitle(
        f"{head}training examples for certified coverage {result['target']:g} "
        f"({int(100 * result['bootstrap']['level'])}% bootstrap bands)",
        fontsize=10,
    )
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=7.5, frameon=False)
    fig.tight_layout(rect=(0, 0.07 if rows == 1 else 0.04, 1, 1))
    return fig


def _legend_items(axes) -> tuple[list, list]:
    """Every distinct legend entry over the panels, in order."""
    seen: dict = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    return list(seen.values()), list(seen)


def _needed_panel(ax, entry: dict, result: dict) -> None:
    trials = entry["trials"]
    m = np.array([t["n_train"] for t in trials], dtype=float)
    cov = np.array([t["coverage"] for t in trials], dtype=float)
    covered = cov > 0
    ax.scatter(m[covered], cov[covered], s=14, color="#444", zorder=4, label="trials")
    if not covered.all():
        ax.scatter(m[~covered], cov[~covered], s=14, facecolors="none", edgecolors="#888", zorder=4,
                   label="trials certifying nothing (not fitted)")  # fmt: skip
    target = result["target"]
    ax.axhline(target, color=_TARGET, lw=0.9, ls=":", label=f"target {target:g}")
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())  # decades only: no crowded labels
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("training examples m (log scale)", fontsize=8)
    ax.tick_params(labelsize=7.5)
    ax.grid(alpha=0.3, which="both")
    if entry["fit"] is None:
        ax.text(0.5, 0.5, _wrap(entry["note"]), transform=ax.transAxes, ha="center", va="center", fontsize=7.5,
                bbox={"boxstyle": "round", "fc": "white", "ec": "#ccc"})  # fmt: skip
        return
    band = entry["band"]
    grid = np.array(band["n_train"])
    if "lower" in band:
        ax.fill_between(grid, band["lower"], band["upper"], color=_FIT, alpha=0.2, lw=0)
    ax.plot(grid, band["coverage"], color=_FIT, lw=1.6, label="fit  1 - cov = a m^-b + c")
    held = entry["held_out"]
    if held and held["fit"]:
        h = held["fit"]
        fit = PowerLawFit(a=h["a"], b=h["b"], e_inf=h["c"])
        label = f"fit on fractions <= {held['fit_max_fraction']:g} (held-out check)"
        ax.plot(grid, coverage_at(fit, grid), color=_HELD, lw=1.1, ls="--", label=label)
    ax.text(0.97, 0.05, _needed_text(entry), transform=ax.transAxes, ha="right", va="bottom", fontsize=7.5,
            bbox={"boxstyle": "round", "fc": "white", "ec": "#ccc", "alpha": 0.9}, zorder=5)  # fmt: skip
    need = entry["needed"]
    if need["reachable"]:
        ax.axvline(need["n_train"], color=_TARGET, lw=1.0, label="needed m (and interval)")
        lo, hi = need["interval"]
        if lo is not None:
            ax.axvspan(lo, hi if hi is not None else grid[-1], color=_TARGET, alpha=0.08, lw=0)


def _needed_text(entry: dict) -> str:
    need, fit, held = entry["needed"], entry["fit"], entry["held_out"]
    lines = [f"asymptote 1 - c = {fit['asymptotic_coverage']:.3f}"]
    if need["reachable"]:
        lo, hi = need["interval"]
        span = f"[{_count(lo)}, {_count(hi)}]"
        lines.insert(0, f"needs m = {_count(need['n_train'])} {span}")
    else:
        lines.insert(0, "target not reachable")
    lines.append(f"unreachable in {need['unreachable_draws']}/{need['draws']} draws")
    if held and held["max_abs_miss_pp"] is not None:
        lines.append(f"held-out miss <= {held['max_abs_miss_pp']:.1f} pp")
    return "\n".join(lines)


def _count(n: float | None) -> str:
    """A number of examples for a label: 9,600, 1.2M, or "inf" for an open end."""
    if n is None:
        return "inf"
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n:,.0f}"


def _wrap(text: str, width: int = 34) -> str:
    return "\n".join(textwrap.wrap(text, width))
