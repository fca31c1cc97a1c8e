"""The demo report's sections for training, the ablation sweep, the recordings and the scores.

(The gold leaderboard's section is :func:`au.gold.report.add_gold_section`, shared with ``au gold``.)
Each takes what its stage's job returned and adds text, tables and figures to a :class:`Report`.
"""

from __future__ import annotations

import pyarrow as pa

from au.ablation.config import SWEEP_TRAINING
from au.curves.curve_job import CurveResult
from au.curves.findings import sentences
from au.files import read_json
from au.report import Report, plots
from au.train.rundir import HISTORY, read_per_class
from au.train.train_job import RunResult


def add_train_section(report: Report, result: RunResult, model: str, data: str) -> None:
    m = result.manifest
    metrics = m["metrics"]
    report.heading("Training")
    report.paragraph(
        f"{model} trained on {m['data']['n_train']:,} {data} examples "
        f"({m['data']['n_val']:,} more held out for validation) for {m['training']['epochs']:.2f} epochs "
        f"({m['training']['steps']:,} steps, {m['training']['train_seconds']:.0f} s). "
        f"Test accuracy {100 * metrics['test_accuracy']:.2f}% on {m['data']['n_test']:,} test images."
    )
    report.key_values(
        {
            "test accuracy": metrics["test_accuracy"],
            "test loss": metrics["test_loss"],
            "train accuracy": metrics["train_accuracy"],
            "validation accuracy": metrics["val_accuracy"],
            "seed": m["config"]["seed"],
            "weights SHA-256": m["weights"]["sha256"][:16] + "...",
        }
    )
    rows = read_per_class(result.path)
    report.table(
        ["class", "name", "support", "precision", "recall", "F1"],
        [
            [
                int(r["class"]),
                r["name"],
                int(r["support"]),
                *(float(r[k]) for k in ("precision", "recall", "f1")),
            ]
            for r in rows
        ],
        caption="Per-class metrics on the test split",
    )
    history = read_json(result.path / HISTORY, "training history")
    report.figure(plots.training_curve(history, model), "Training loss per step and accuracy per epoch")


def add_ablation_section(report: Report, curve: CurveResult, fractions, trials: int, max_steps: int) -> None:
    report.heading("Accuracy vs training data")
    report.paragraph(
        f"{len(fractions)} stratified subsets of the training split "
        f"({', '.join(f'{f:g}' for f in fractions)} of it), {trials} trial(s) each, "
        f"each model trained with early stopping on its own validation carve-out within {max_steps} steps "
        "and tested on the whole test split. Fitted: the PAC finite-class form accuracy = 1 - sqrt(c/m) and the "
        "power law error = a m^-b + e_inf (Hestness et al. 2017, arXiv 1712.00409), with bootstrap intervals."
    )
    for line in sentences(curve.fits):
        report.paragraph(line)
    report.table(
        ["fraction", "training examples", "trials", "mean test accuracy"],
        [
            [p["fraction"], int(round(p["n_train_mean"])), p["trials"], p["accuracy_mean"]]
            for p in curve.fits["per_fraction"]
        ],
        caption="Measured points",
    )
    captions = {
        "learning_curve": "Test accuracy vs training examples, with both fits and 95% bootstrap bands",
        "error_loglog": "Test error vs training examples on log-log axes",
        "per_class": "Recall of each class vs training examples",
    }
    for key, caption in captions.items():
        report.image(curve.figures[key], caption)
    if max_steps < SWEEP_TRAINING.max_steps:
        report.paragraph(
            f"The demo caps each trial at {max_steps} steps to stay quick; 'au ablate' with its defaults trains "
            f"up to {SWEEP_TRAINING.max_steps} steps per trial and measures the full curve.",
            note=True,
        )


def add_record_section(report: Report, manifests: list[dict], layers) -> None:
    report.heading("Recorded activations")
    report.paragraph(
        f"Layers {', '.join(layers)} of the trained model, average-pooled over space and stored as "
        "float16 Parquet (one row per example, one fixed-size list column per layer), for the per-input stages."
    )
    rows = [
        [
            m["dataset"]["split"],
            m["rows"],
            len(m["parts"]),
            sum(p["bytes"] for p in m["parts"]) / 1e6,
            m["seconds"],
        ]
        for m in manifests
    ]
    report.table(["split", "rows", "parts", "MB", "seconds"], rows, digits=1)


def add_score_section(report: Report, manifest: dict, table: pa.Table) -> None:
    scored = ", ".join(f"{s['rows']:,} {s['dataset']}" for s in manifest["sets"])
    detectors = manifest["detectors"]
    ood_names = [s["dataset"] for s in manifest["sets"] if s["is_ood"]]
    report.heading("Coverage scores and out-of-distribution detection")
    report.paragraph(
        f"Each detector is fitted on {manifest['in_distribution']['n_fit']:,} training examples (features of layer "
        f"{manifest['layer']}, or the logits, or the images themselves) and scores "
        f"{scored} inputs; higher means better "
        "covered by the training data. AUROC separates the in-distribution test inputs from each OOD set; the "
        "last column separates correct from wrong predictions on the test inputs."
    )
    report.table(
        ["detector", "reads", *ood_names, "misclassification"],
        [
            [name, m["consumes"], *(m["ood"][o]["auroc"] for o in ood_names), m["misclassification_auroc"]]
            for name, m in detectors.items()
        ],
        caption="AUROC per detector and OOD set",
    )
    report.table(
        ["detector", *ood_names],
        [[name, *(m["ood"][o]["fpr_at_95_tpr"] for o in ood_names)] for name, m in detectors.items()],
        caption="False positive rate at 95% true positive rate (lower is better)",
    )
    report.figure(
        plots.roc_curves(table, list(detectors)),
        "ROC curves: in-distribution test inputs against each OOD set",
    )
