"""Figures of ``au explain`` and ``au perturb``: attribution grids, unit projections, backtraces, the sigma sweep.

Every map is drawn on its own scale - the 99th percentile of its magnitude, shown by the colour bars
under a grid - because methods differ by orders of magnitude (a scale shared along a row would leave
all but one method's maps blank; the values themselves are in the table): a diverging scale (blue negative, red positive, white zero) for signed
methods, a sequential one from zero for unsigned ones. A colour map has one channel: the sum over
channels for signed maps, the largest magnitude for unsigned ones.
"""

from __future__ import annotations

import numpy as np

from au.report.plots import plt

DIVERGING, SEQUENTIAL = "RdBu_r", "inferno"


def to_plane(values: np.ndarray, signed: bool) -> np.ndarray:
    """A map (C, H, W) as one (H, W) plane for display."""
    return values.sum(axis=0) if signed else np.abs(values).max(axis=0)


def show_map(ax, plane: np.ndarray, signed: bool) -> None:
    top = float(np.percentile(np.abs(plane), 99)) or float(np.abs(plane).max()) or 1.0
    if signed:
        ax.imshow(plane, cmap=DIVERGING, vmin=-top, vmax=top)
    else:
        ax.imshow(plane, cmap=SEQUENTIAL, vmin=0, vmax=top)
    ax.set_xticks([])
    ax.set_yticks([])


def show_image(ax, image: np.ndarray) -> None:
    """An image (H, W, C) uint8, grey or colour."""
    ax.imshow(image[..., 0] if image.shape[2] == 1 else image, cmap="gray", vmin=0, vmax=255)
    ax.set_xticks([])
    ax.set_yticks([])


def attribution_grid(
    images: np.ndarray, maps: dict[str, np.ndarray], signed: dict[str, bool], rows: list[str]
):
    """One row per input: the input, then its map under each method (columns named, signed ones marked ±)."""
    methods = list(maps)
    n, cols = len(images), len(methods) + 1
    fig, axes = plt.subplots(n, cols, figsize=(1.55 * cols, 1.6 * n + 0.3), squeeze=False)
    for i in range(n):
        show_image(axes[i, 0], images[i])
        axes[i, 0].set_ylabel(rows[i], fontsize=7, rotation=0, ha="right", va="center")
        for j, m in enumerate(methods, start=1):
            show_map(axes[i, j], to_plane(maps[m][i], signed[m]), signed[m])
    for j, title in enumerate(["input", *(f"{m}{' ±' if signed[m] else ''}" for m in methods)]):
        axes[0, j].set_title(title.replace("_", " "), fontsize=8)
    fig.tight_layout(pad=0.3, rect=(0, 0.35 / fig.get_figheight(), 1, 1))
    _scale_bars(fig, any(signed.values()), not all(signed.values()))
    return fig


def _scale_bars(fig, diverging: bool, sequential: bool) -> None:
    """Colour bars under a grid, in units of each map's own 99th percentile of magnitude."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    height = 0.12 / fig.get_figheight()
    bars = [(DIVERGING, -1.0, "signed maps: x the map's 99th-percentile |value|")] if diverging else []
    bars += [(SEQUENTIAL, 0.0, "unsigned maps: x the map's 99th-percentile value")] if sequential else []
    for k, (cmap, low, label) in enumerate(bars):
        ax = fig.add_axes((0.08 + 0.47 * k, 0.12 / fig.get_figheight(), 0.38, height))
        bar = fig.colorbar(ScalarMappable(Normalize(low, 1.0), cmap), cax=ax, orientation="horizontal")
        bar.set_label(label, fontsize=7)
        bar.ax.tick_params(labelsize=6)


def unit_figure(title: str, images, activations, ids, projections: dict[str, np.ndarray], all_activations):
    """A unit's top inputs (with their activations), each input's projection per method, and the activation histogram."""
    k = len(images)
    rows = 1 + len(projections)
    fig = plt.figure(figsize=(max(6.0, 1.25 * k + 3.2), 1.35 * rows + 0.4))
    grid = fig.add_gridspec(rows, k + 3)
    for i in range(k):
        ax = fig.add_subplot(grid[0, i])
        show_image(ax, images[i])
        ax.set_title(f"{ids[i]}\n{activations[i]:.3g}", fontsize=6)
        for r, (name, maps) in enumerate(projections.items(), start=1):
            ax = fig.add_subplot(grid[r, i])
            show_map(ax, to_plane(maps[i], True), True)
            if i == 0:
                ax.set_ylabel(name.replace("_", " "), fontsize=7)
    hist = fig.add_subplot(grid[:, k + 1 :])
    hist.hist(all_activations, bins=50, color="#b8860b")
    for a in activations:
        hist.axvline(a, color="#333", lw=0.6)
    hist.set_yscale("log")
    hist.set_xlabel("activation", fontsize=8)
    hist.set_title("over the recording (lines: top inputs)", fontsize=7)
    hist.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=9)
    return fig


def backtrace_figure(image: np.ndarray, title: str, parts: list[dict], neighbour_images: list[np.ndarray]):
    """The input, then one row per low-density partition: its projection and its nearest training examples."""
    k = max(len(n) for n in neighbour_images)
    fig, axes = plt.subplots(
        len(parts), k + 2, figsize=(1.5 * (k + 2), 1.7 * len(parts) + 0.4), squeeze=False
    )
    for r, part in enumerate(parts):
        show_image(axes[r, 0], image)
        axes[r, 0].set_title(f"z = {part['z']:.1f}", fontsize=7)
        show_map(axes[r, 1], to_plane(part["map"], True), True)
        axes[r, 1].set_title(f"partition {part['partitioning']}.{part['partition']}", fontsize=7)
        for j in range(k):
            ax = axes[r, j + 2]
            if j < len(neighbour_images[r]):
                show_image(ax, neighbour_images[r][j])
                ax.set_title(part["neighbours"][j], fontsize=6)
            else:
                ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(pad=0.3)
    return fig


def sigma_sweep(rows: list[dict], detectors) -> object:
    """Accuracy and changed predictions (left), and each detector's AUROC of perturbed against clean inputs
    (right), against sigma: one line style per layer, one colour per quantity."""
    noise = [r for r in rows if r["kind"] == "noise"]
    layers = list(dict.fromkeys(r["layer"] for r in noise))
    styles = ["-", "--", ":", "-."]
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for k, layer in enumerate(layers):
        mine = sorted((r for r in noise if r["layer"] == layer), key=lambda r: r["sigma"])
        s, style = [r["sigma"] for r in mine], styles[k % len(styles)]
        left.plot(
            s, [r["accuracy"] for r in mine], style, marker="o", color="#1f4e79", label=f"accuracy, {layer}"
        )
        left.plot(
            s, [r["changed"] for r in mine], style, marker="s", color="#b8860b", label=f"changed, {layer}"
        )
        for j, d in enumerate(detectors):
            right.plot(
                s,
                [r[f"{d}_auroc"] for r in mine],
                style,
                marker="o",
                color=colours[j % len(colours)],
                label=f"{d}, {layer}",
            )
    for ax in (left, right):
        ax.set_xlabel("sigma (x each unit's training std)")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    left.set_ylabel("share of test inputs")
    right.axhline(0.5, color="#999", lw=0.6)
    right.set_ylabel("AUROC, clean vs perturbed")
    fig.tight_layout()
    return fig
