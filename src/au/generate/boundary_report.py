"""The report of ``au boundary``: the generated samples, what each certificate accepts, and the standard against
the confident classifier."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa

from au.report.html import Report
from au.report.plots import plt
from au.score.schema import detector_columns


def score_histograms(table: pa.Table, generated: np.ndarray):
    """One panel per detector: its scores of the in-distribution test inputs, of the generated samples and of
    the other OOD sets, as densities on a shared axis (a detector's scale is its own)."""
    detectors = detector_columns(table)
    is_ood = table.column("is_ood").to_numpy(zero_copy_only=False)
    mine = np.zeros(table.num_rows, dtype=bool)
    mine[generated] = True
    cols = min(4, len(detectors))
    rows = math.ceil(len(detectors) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.3 * rows), squeeze=False)
    for ax, d in zip(axes.flat, detectors, strict=False):
        values = table.column(d).to_numpy()
        low, high = np.percentile(values, [0.5, 99.5])
        bins = np.linspace(low, high if high > low else low + 1, 40)
        for part, label, colour in (
            (~is_ood, "in-distribution test", "tab:blue"),
            (is_ood & ~mine, "other OOD sets", "tab:grey"),
            (mine, "generated", "tab:red"),
        ):
            if part.any():
                ax.hist(
                    np.clip(values[part], bins[0], bins[-1]),
                    bins,
                    density=True,
                    histtype="step",
                    label=label,
                    color=colour,
                )
        ax.set_title(d, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.set_yticks([])
    for ax in list(axes.flat)[len(detectors) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("Scores (higher = more in-distribution)", fontsize=10)
    fig.tight_layout()
    return fig


def maps_grid(images: np.ndarray, maps: np.ndarray, labels: list[str], signed: bool, per_row: int = 4):
    """Samples beside their attribution maps, ``per_row`` (sample, map) pairs to a row, each map on its own
    scale (as in :func:`au.explain.plots.attribution_grid`)."""
    from au.explain.plots import show_image, show_map, to_plane

    rows = math.ceil(len(images) / per_row)
    fig, axes = plt.subplots(rows, 2 * per_row, figsize=(1.3 * 2 * per_row, 1.5 * rows + 0.3), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (image, m, label) in enumerate(zip(images, maps, labels, strict=True)):
        left, right = axes[i // per_row, 2 * (i % per_row)], axes[i // per_row, 2 * (i % per_row) + 1]
        show_image(left, image)
        show_map(right, to_plane(m, signed), signed)
        left.axis("on")
        right.axis("on")
        left.set_title(label, fontsize=7)
    fig.suptitle("Generated samples and their guided-backprop maps (predicted class)", fontsize=9)
    fig.tight_layout()
    return fig


def write_report(path: Path, spec: str, summary: dict, acceptance, comparison, figures: dict) -> Path:
    r = Report("AU boundary samples")
    r.paragraph(
        f"Samples of {spec}: a confident classifier's generator (Lee et al. 2018, arXiv 1711.09325), trained to "
        "fool its discriminator while the classifier stays uninformative on them - inputs at the edge of the "
        "training data."
    )
    r.key_values(
        {
            "samples": summary["samples"],
            "mean maximum softmax": summary["mean_msp"],
            "predicted classes (count per class)": ", ".join(map(str, summary["predicted_classes"])),
            **{
                k.replace("_", " "): v
                for k, v in summary.items()
                if k.startswith(("test_accuracy", "largest"))
            },
        }
    )
    r.heading("Generated samples")
    r.image(figures["samples"], "The classifier's prediction and maximum softmax above each sample.")
    r.heading("What every detector says")
    r.image(
        figures["scores"],
        "Each detector's scores of the in-distribution test inputs, the other OOD sets and the samples.",
    )
    if acceptance is not None:
        _acceptance_section(r, acceptance)
    r.heading("Guided backprop")
    r.image(
        figures["guided_backprop"],
        "Guided backprop (arXiv 1412.6806, through captum) for the predicted class.",
    )
    if comparison is not None:
        _comparison_section(r, comparison, summary)
    decoded = [k for k in figures if k.startswith("decoded ")]
    if decoded:
        r.heading("Decoded activations: high- and low-density samples")
        r.paragraph(
            "From 'au decode': activation vectors drawn around the training points of highest and of lowest "
            "parzen_lsh density at a layer, decoded back to images, each with the classifier's prediction."
        )
        for k in decoded:
            r.image(figures[k], k.removeprefix("decoded ").replace("density-", "layer "))
    return r.write(path)


def _acceptance_section(r: Report, acceptance: list[dict]) -> None:
    r.heading("What the certified selective classifier would accept")
    r.paragraph(
        "Each row is a certificate of 'au gold' on the in-distribution stream: the threshold certified so that "
        "the error on accepted inputs stays below epsilon with probability 1 - delta, the share of in-distribution "
        "test inputs it accepts, and the share of generated samples it would accept (and answer)."
    )
    rows = sorted(acceptance, key=lambda a: (a["epsilon"], a["method"], -a["in_coverage"]))
    r.table(
        [
            "entry",
            "method",
            "epsilon",
            "certified",
            "in-distribution coverage",
            "generated accepted",
            "share",
        ],
        [
            [
                a["entry"],
                a["method"],
                a["epsilon"],
                a["certified"],
                a["in_coverage"],
                a["accepted"],
                a["accepted_share"],
            ]
            for a in rows
        ],
    )


def _comparison_section(r: Report, comparison: list[dict], summary: dict) -> None:
    r.heading("Standard against confident classifier")
    r.paragraph(
        "The same OOD sets and detectors for both classifiers. TNR at 95% TPR is the share of OOD inputs "
        "rejected at the single threshold where the true positive rate on in-distribution test inputs first "
        "reaches 95% (not the averaged variant of the paper's code). Test accuracy: "
        f"standard {summary.get('test_accuracy_standard', float('nan')):.4f}, "
        f"confident {summary.get('test_accuracy_confident', float('nan')):.4f}."
    )
    r.table(
        ["OOD set", "detector", "AUROC standard", "AUROC confident", "TNR@95 standard", "TNR@95 confident"],
        [
            [
                c["ood_set"],
                c["detector"],
                c["auroc_standard"],
                c["auroc_confident"],
                c["tnr95_standard"],
                c["tnr95_confident"],
            ]
            for c in comparison
        ],
    )
