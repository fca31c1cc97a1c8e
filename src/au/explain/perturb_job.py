"""``au perturb``: perturb one layer's activations over the test set; measure accuracy, changed predictions
and what the coverage detectors see.

Layout of a perturbation directory (a ``perturb`` job, :mod:`au.jobs`)::

    perturb.parquet   one row per setting (au.explain.schema): accuracy, share of predictions changed,
                      per detector the mean score shift and the AUROC of clean against perturbed inputs
    sigma_sweep.png   accuracy, changed predictions and each detector's AUROC against sigma
    manifest.json     written last

The detectors are fitted once, on the unperturbed activations of at most ``fit_limit`` training
examples at the detector layer; the layer's per-unit standard deviations come from the same pass.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
from torch import nn

from au import jobs, progress
from au.data import ImageDataset
from au.detectors import registry
from au.detectors.inputs import Inputs, fit_detector, score_detector
from au.errors import AUError
from au.explain import plots
from au.explain.config import PerturbConfig
from au.explain.density import feature_layer
from au.explain.perturb import Pass, Setting, forward, layer_statistics, perturbed_pass
from au.explain.schema import PERTURB, perturb_schema
from au.models.layers import check_model_input, layer_output_shapes
from au.models.weights import state_sha256
from au.ood.metrics import auroc
from au.report.plots import save
from au.score.sets import sample
from au.tables import write_table

FIGURE = "sigma_sweep.png"


def default_detectors() -> tuple[str, ...]:
    """The registry's quick detectors that read features or logits (perturbed activations reach those)."""
    return tuple(
        n for n in registry.QUICK if registry.detector_class(n).consumes.input in ("features", "logits")
    )


def perturb_run(
    model: nn.Module,
    train: ImageDataset,
    test: ImageDataset,
    out: Path,
    config: PerturbConfig,
    *,
    model_name: str | None = None,
    weights_sha256: str | None = None,
    run_dir: str | None = None,
) -> dict:
    """Sweep ``config``'s perturbations of ``config.layer`` over ``test``; write ``out``; return its manifest."""
    detectors, detector_layer, shape = _check_inputs(model, train, test, config)
    weights = weights_sha256 or state_sha256(model)
    identity = {
        "weights_sha256": weights,
        "train": [train.name, train.fingerprint()],
        "test": [test.name, test.split, test.fingerprint()],
        "detectors": detectors,
        "detector_layer": detector_layer,
        "config": asdict(config),
    }
    label = f"perturbation of {model_name or 'a model'} at {config.layer}"
    claim = jobs.claim(jobs.Job("perturb", out, identity, label))
    if claim.done:
        progress.note(f"{out}: this perturbation sweep is already complete; nothing to do")
        return claim.manifest

    fit_set = sample(train, config.fit_limit, config.seed)
    test = sample(test, config.limit, config.seed)
    progress.note(f"[perturb] {config.layer}: statistics and detectors on {len(fit_set):,} training examples")
    fitted_pass, stats = layer_statistics(
        model, fit_set, config.layer, detector_layer, shape, config.batch_size
    )
    fitted = [
        fit_detector(registry.build(name, model), _inputs(fitted_pass, fit_set.labels)) for name in detectors
    ]
    clean = forward(model, test, detector_layer, config.batch_size)
    clean_scores = [score_detector(d, _inputs(clean, test.labels)) for d in fitted]
    rows = []
    for index, setting in enumerate(_settings(config, stats.unit_means)):
        progress.note(f"[perturb] {setting.kind} sigma={setting.sigma} units={setting.units_text}")
        p = perturbed_pass(
            model, test, config.layer, detector_layer, setting, stats, config.seed, index, config.batch_size
        )
        rows.append(_row(config, setting, test, clean, clean_scores, p, fitted, detectors))
    write_table(claim.path(PERTURB), rows, perturb_schema(detectors))
    save(plots.sigma_sweep(rows, detectors), claim.path(FIGURE))
    record = {
        "model": {"name": model_name, "weights_sha256": weights, "run": run_dir},
        "layer": config.layer,
        "detector_layer": detector_layer,
        "detectors": list(detectors),
        "n_fit": len(fit_set),
        "n_test": len(test),
        "clean_accuracy": _accuracy(clean.pred, test.labels),
        "rows": rows,
        "config": asdict(config),
    }
    return claim.finish(record, outputs=[PERTURB, FIGURE])


def _check_inputs(model, train: ImageDataset, test: ImageDataset, config: PerturbConfig):
    """(detectors, detector layer, the perturbed layer's output shape), or one line saying what is wrong."""
    check_model_input(model, test)
    check_model_input(model, train)
    shapes = layer_output_shapes(model, test.input_shape)
    layer = feature_layer(model, config.layer)
    detector_layer = feature_layer(model, config.detector_layer)
    detectors = registry.check_names(config.detectors) if config.detectors else default_detectors()
    for name in detectors:
        c = registry.detector_class(name).consumes
        if c.input not in ("features", "logits") or c.validation == "required":
            raise AUError(
                f"--detectors: {name} reads {c.input}{' and validation data' if c.validation == 'required' else ''}; "
                f"au perturb scores perturbed activations, so choose detectors that read features or logits"
            )
    order = list(shapes)  # layers in the order the forward pass runs them
    reads_features = [n for n in detectors if registry.detector_class(n).consumes.input == "features"]
    if reads_features and order.index(layer) > order.index(detector_layer):
        raise AUError(
            f"--layer {layer} runs after the detectors' layer {detector_layer}, so {', '.join(reads_features)} would "
            f"never see the perturbation; perturb a layer up to {detector_layer}, or choose --detector-layer {layer}"
        )
    shape = shapes[layer]
    units = shape[0]
    for option, chosen in (("--zero", config.zero), ("--scale", config.scale[0] if config.scale else None)):
        bad = [u for u in chosen or () if not 0 <= u < units]
        if bad:
            raise AUError(f"{option}: unit {bad[0]} does not exist; layer {layer!r} has units 0..{units - 1}")
    if config.top_units is not None and config.top_units > units:
        raise AUError(f"--top-units {config.top_units}: layer {layer!r} has only {units} units")
    if not test.has_labels:
        raise AUError(
            f"{test.name!r} ({test.split}) is not fully labelled; au perturb measures accuracy on labelled data"
        )
    return detectors, detector_layer, shape


def _settings(config: PerturbConfig, unit_means: np.ndarray) -> list[Setting]:
    settings = [Setting("noise", sigma=float(s)) for s in config.sigmas]
    if config.zero:
        settings.append(Setting("zero", units=tuple(config.zero), factor=0.0))
    if config.scale:
        settings.append(Setting("scale", units=tuple(config.scale[0]), factor=float(config.scale[1])))
    if config.top_units:
        top = np.argsort(-unit_means, kind="stable")[: config.top_units]
        settings.append(Setting("top-units", units=tuple(int(u) for u in top), factor=0.0))
    return settings


def _inputs(p: Pass, labels: np.ndarray) -> Inputs:
    return Inputs(logits=p.logits, features=p.features, pred=p.pred, labels=labels)


def _accuracy(pred: np.ndarray, labels: np.ndarray) -> float:
    return float((pred == labels).mean())


def _row(config, setting: Setting, test, clean: Pass, clean_scores, p: Pass, fitted, detectors) -> dict:
    row = {
        "layer": config.layer,
        "kind": setting.kind,
        "sigma": setting.sigma,
        "units": setting.units_text,
        "factor": setting.factor,
        "seed": config.seed,
        "n": len(test),
        "accuracy": _accuracy(p.pred, test.labels),
        "changed": float((p.pred != clean.pred).mean()),
    }
    for name, det, before in zip(detectors, fitted, clean_scores, strict=True):
        after = score_detector(det, _inputs(p, test.labels))
        spread = float(before.std()) or 1.0
        row[f"{name}_shift"] = float(after.mean() - before.mean()) / spread
        row[f"{name}_auroc"] = auroc(before, after)
    return row
