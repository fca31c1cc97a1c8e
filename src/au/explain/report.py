"""The report's section on looking inside: attribution maps, unit projections and the sigma sweep.

Shared by ``au demo``; each piece takes what its job returned (a manifest) and the job's directory.
"""

from __future__ import annotations

from pathlib import Path

from au.explain import plots
from au.report import Report


def add_explain_section(
    report: Report,
    attributions: list[tuple[str, Path, dict]],
    units: tuple[Path, dict] | None,
    backtrace: tuple[Path, dict] | None,
    perturbs: list[dict],
) -> None:
    """``attributions``: (caption, directory, manifest) per group of inputs; ``units`` and ``backtrace``: a
    job's directory and manifest; ``perturbs``: perturbation manifests (their sweeps are drawn together)."""
    report.heading("Looking inside: attributions, units, the low-density backtrace and perturbed activations")
    report.paragraph(
        "Each input beside its attribution maps for the predicted class, all computed by captum: gradient "
        "saliency (arXiv 1312.6034), guided backprop (1412.6806), deconvnet (1311.2901), integrated gradients "
        "from a black image (1703.01365), SmoothGrad (1706.03825) and Grad-CAM at the last conv layer's activation "
        "(1610.02391). Signed maps (marked ±) are drawn blue for negative and red for positive; each map is "
        "scaled to its own 99th percentile of magnitude."
    )
    for caption, directory, manifest in attributions:
        for name in manifest["figures"]:
            report.image(directory / name, caption)
    if units is not None:
        directory, manifest = units
        report.paragraph(
            "Units of the feature layer with the highest mean activation on the test split: each unit's nine "
            "strongest test inputs (id and activation above), projected back to the pixels by neuron guided "
            "backprop and deconvnet, beside the unit's activation histogram."
        )
        for name in manifest["figures"]:
            report.image(directory / name, f"Unit {name.removeprefix('unit-').removesuffix('.png')}")
    if backtrace is not None:
        directory, manifest = backtrace
        parts = ", ".join(f"{p['z']:.1f}" for p in manifest["partitions"])
        report.paragraph(
            f"The low-density backtrace of {manifest['example_id']}, the test input of lowest density: its "
            f"log-density at {manifest['layer']} lies {-manifest['z']['value']:.1f} standard deviations below the "
            f"held-out training inputs' (z = {manifest['z']['value']:.1f}). Its neuron partitions of lowest z "
            f"({parts}), each with Integrated Gradients of the partition's novelty along the path from the input's "
            "nearest training example in that partition (red: pixels that make it less familiar), and its nearest "
            "training examples there."
        )
        report.image(directory / "backtrace.png", f"Low-density backtrace of {manifest['example_id']}")
    if perturbs:
        detectors = perturbs[0]["detectors"]
        report.paragraph(
            f"Gaussian noise of sigma times each unit's training standard deviation added to one layer's "
            f"activations and carried through the rest of the network, on {perturbs[0]['n_test']:,} test inputs; "
            f"the detectors ({', '.join(detectors)}) are fitted on unperturbed training activations of "
            f"{perturbs[0]['detector_layer']} and separate perturbed from clean inputs with the AUROC shown."
        )
        rows = [
            [r["layer"], r["sigma"], r["accuracy"], r["changed"], *(r[f"{d}_auroc"] for d in detectors)]
            for m in perturbs
            for r in m["rows"]
            if r["kind"] == "noise"
        ]
        report.table(
            ["layer", "sigma", "accuracy", "changed", *(f"{d} AUROC" for d in detectors)],
            rows,
            digits=3,
            caption="The sigma sweep",
        )
        every = [r for m in perturbs for r in m["rows"]]
        report.figure(
            plots.sigma_sweep(every, detectors),
            "Accuracy, changed predictions and detection AUROC against sigma",
        )
