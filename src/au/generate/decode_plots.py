"""Figures and report of ``au decode``: image grids per layer, and ``report.html`` with the tables.

Every text that comes from data - layer names, paths, example ids - reaches HTML only through
:class:`au.report.html.Report`, which escapes it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from au.explain.plots import show_image
from au.report.html import Report
from au.report.plots import plt, save


def _blank(ax) -> None:
    ax.axis("off")


def _grid(rows: list[tuple[str, np.ndarray, list[str]]], title: str, columns: int):
    """One row of images per entry (row name, uint8 images (n, H, W, C), a caption per image), ``columns`` wide."""
    lines = max((c.count("\n") + 1 for _, _, captions in rows for c in captions), default=1)
    height = 1.3 + 0.16 * lines  # an image and its caption
    fig, axes = plt.subplots(
        len(rows),
        columns,
        figsize=(1.25 * columns + 0.8, height * len(rows) + 0.4),
        squeeze=False,
        layout="constrained",  # keeps each row's captions clear of the row above
    )
    for r, (name, images, captions) in enumerate(rows):
        for c in range(columns):
            ax = axes[r, c]
            if c < len(images):
                show_image(ax, images[c])
                ax.set_title(captions[c], fontsize=6)
            else:
                _blank(ax)
        axes[r, 0].set_ylabel(name, fontsize=7, rotation=0, ha="right", va="center")
    fig.suptitle(title, fontsize=9)
    return fig


def reconstruction_figure(layer: str, originals, test_part: dict, inverted: dict, columns: int):
    """Held-out originals, their decoded images and, where inverted, their inversions: one row each."""
    n = min(columns, len(originals))
    scored = test_part["scored"]
    rows = [
        ("original", originals[:n], [""] * n),
        ("decoded", test_part["images"][:n], [f"pred {p}" for p in scored["pred"][:n]]),
    ]
    if inverted.get("rows"):
        images = inverted["images"][:n]
        rows.append(("inverted", images, [f"pred {r['pred']}" for r in inverted["rows"][: len(images)]]))
    return _grid(rows, f"{layer}: held-out images, decoded and inverted", n)


def density_figure(layer: str, draws: dict, columns: int):
    """Decoded kernel draws around training points of high density (top row) and of low density (bottom row)."""
    rows = []
    for kind in ("high_density", "low_density"):
        part = draws[kind]
        images, scored = part["images"][:columns], part["scored"]
        captions = [
            f"log p {lp:.0f}\npred {p}"
            for lp, p in zip(scored["target_log_density"][:columns], scored["pred"][:columns], strict=True)
        ]
        rows.append((kind.replace("_", " "), images, captions))
    width = max(1, max(len(r[1]) for r in rows))
    return _grid(rows, f"{layer}: decoded draws from the parzen density's kernel", width)


def interpolation_figure(layer: str, lines: dict):
    """One row per pair of training examples: decoded points from one (t = 0) to the other (t = 1)."""
    pred = lines["pred"]
    steps = pred.shape[1]
    rows = [
        (lines["ends"][k], lines["images"][k * steps : (k + 1) * steps], [f"pred {p}" for p in pred[k]])
        for k in range(len(lines["pairs"]))
    ]
    return _grid(rows, f"{layer}: interpolations between classes (labels a->b)", steps)


def layer_figures(
    out: Path, slug: str, layer: str, originals, test_part, draws, lines, inverted, columns: int
):
    """Write the layer's figures into ``out``; return their file names."""
    names = [f"reconstruction-{slug}.png"]
    save(reconstruction_figure(layer, originals, test_part, inverted, columns), Path(out) / names[-1])
    if draws["summary"]["samples"]:
        names.append(f"density-{slug}.png")
        save(density_figure(layer, draws, columns), Path(out) / names[-1])
    if lines["pairs"]:
        names.append(f"interpolation-{slug}.png")
        save(interpolation_figure(layer, lines), Path(out) / names[-1])
    return names


def _reconstruction_table(report: Report, layers: list[dict]) -> None:
    report.table(
        [
            "layer",
            "input",
            "MSE",
            "PSNR dB",
            "baseline MSE",
            "baseline PSNR dB",
            "accuracy decoded",
            "accuracy original",
            "agreement",
            "training s",
        ],
        [
            [
                s["layer"],
                f"{s['input']} {'x'.join(map(str, s['shape']))}",
                s["test_mse"],
                s["test_psnr"],
                s["baseline_mse"],
                s["baseline_psnr"],
                s["decoded_accuracy"],
                s["original_accuracy"],
                s["decoded_agreement"],
                s["train_seconds"],
            ]
            for s in layers
        ],
        caption="Held-out images decoded from each layer. Baseline: the mean training image. Agreement: share of "
        "decoded images the classifier puts in the class it gives the original.",
    )


def _inversion_table(report: Report, layers: list[dict]) -> None:
    rows = []
    for s in layers:
        if not s.get("inverted"):
            continue
        for method in ("decoder", "inversion"):
            rows.append(
                [
                    s["layer"],
                    method,
                    s["inverted"],
                    s[f"{method}_feature_error"],
                    s[f"{method}_mse"],
                    s[f"{method}_agreement"],
                    s[f"{method}_seconds_per_image"],
                ]
            )
    if rows:
        report.table(
            ["layer", "method", "images", "feature error", "pixel MSE", "agreement", "seconds / image"],
            rows,
            caption="The same held-out targets, decoded in one pass or inverted by optimisation (Mahendran & Vedaldi "
            "2015, arXiv 1412.0035). Feature error: ||phi(x) - target|| / ||target|| at the layer.",
        )


def _density_table(report: Report, layers: list[dict]) -> None:
    rows = [
        [
            s["layer"],
            kind.replace("_", " "),
            s["samples"],
            s[f"{kind}_anchor_log_density"],
            s[f"{kind}_target_log_density"],
            s[f"{kind}_decoded_log_density"],
            s[f"{kind}_msp"],
        ]
        for s in layers
        for kind in ("high_density", "low_density")
        if s["samples"]
    ]
    if rows:
        report.table(
            [
                "layer",
                "region",
                "draws",
                "anchor log p",
                "drawn vector log p",
                "decoded image's log p",
                "max softmax",
            ],
            rows,
            digits=2,
            caption="Draws from the parzen density's kernel around held-out training points of highest and lowest "
            "log-density; the decoded image's log p is that of its own activation, recorded again.",
        )


def write_report(path: Path, record: dict, figures: list[str], out: Path) -> Path:
    """``report.html``: the setting, the tables of ``record["layers"]``, and ``figures`` (files in ``out``)."""
    layers = record["layers"]
    report = Report("au decode: activations decoded back to images")
    report.key_values(
        {
            "model": record["model"].get("name") or "(a model)",
            "weights SHA-256": record["model"]["weights_sha256"][:16],
            "training recording": record["train_acts"],
            "held-out recording": record["test_acts"],
            "training rows used": record["n_train"],
            "held-out rows decoded": record["n_test"],
            "decoder steps": record["config"]["steps"],
            "seed": record["config"]["seed"],
        }
    )
    report.heading("How much of the image each layer keeps")
    _reconstruction_table(report, layers)
    report.heading("Decoder against inversion by optimisation")
    _inversion_table(report, layers)
    report.heading("Decoding the density's high and low regions")
    _density_table(report, layers)
    report.heading("Interpolations between classes")
    report.table(
        ["layer", "pairs", "prediction changes per line"],
        [[s["layer"], s["pairs"], s["interpolation_changes"]] for s in layers],
        caption="Interpolations between training examples of different classes: how often the classifier's "
        "prediction changes along each line of decoded images (1: one clean switch).",
    )
    report.heading("Figures")
    for name in figures:
        report.image(Path(out) / name, caption=name)
    return report.write(path)
