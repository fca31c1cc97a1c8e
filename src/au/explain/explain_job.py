"""``au explain``: attributions of inputs, projections of units, and the low-density backtrace of one input.

Each mode is an ``explain`` job (:mod:`au.jobs`) whose directory holds, beside ``manifest.json``:

* attributions (:func:`explain_inputs`): ``attributions.parquet`` (one row per input and method,
  :mod:`au.explain.schema`) and ``attributions-<page>.png`` (each input beside its maps, 16 per page);
* units (:func:`explain_units`): ``units.parquet`` (each unit's top inputs in a recording) and
  ``unit-<layer>-<unit>.png`` (the top inputs, their projections, the activation histogram);
* backtrace (:func:`explain_backtrace`): ``backtrace.parquet`` (the input's partitions of lowest
  density) and ``backtrace.png``.

Everything that can be refused - unknown layers, units, methods or classes, a recording of another
model - is refused before the directory is claimed, so a refused call writes nothing.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
from torch import nn

from au import activations, jobs, progress
from au.data import ImageDataset
from au.errors import AUError
from au.explain import plots
from au.explain.backtrace import backtrace_input
from au.explain.config import BacktraceConfig, ExplainConfig, UnitsConfig, parse_unit
from au.explain.density import feature_layer, fit_density, layer_features
from au.explain.methods import attribute, check_model, completeness_error, is_signed
from au.explain.relus import refuse_functional_relus
from au.explain.schema import (
    ATTRIBUTIONS,
    BACKTRACE,
    UNITS,
    UNITS_SCHEMA,
    attribution_rows,
    attributions_schema,
    backtrace_schema,
)
from au.explain.select import by_ids, check_class, check_label_space, choose, targets
from au.explain.units import (
    check_recorded_data,
    check_unit,
    images_of,
    project,
    recorded_pool,
    top_rows,
    unit_activations,
)
from au.models.layers import check_model_input
from au.models.weights import state_sha256
from au.report.plots import save
from au.tables import write_table

PAGE = 16


def _model_record(model, model_name, weights_sha256, run_dir) -> dict:
    return {"name": model_name, "weights_sha256": weights_sha256 or state_sha256(model), "run": run_dir}


def explain_inputs(
    model: nn.Module,
    data: ImageDataset,
    out: Path,
    config: ExplainConfig = ExplainConfig(),
    *,
    train: ImageDataset | None = None,
    class_names: tuple[str, ...] | None = None,
    model_name: str | None = None,
    weights_sha256: str | None = None,
    run_dir: str | None = None,
) -> dict:
    """Attribute the chosen inputs of ``data`` with every method of ``config``; write ``out``; return its manifest.

    ``train`` (the run's training examples) is needed only to select by density; ``class_names``
    (the model's classes) lets labels be refused where they are another dataset's.
    """
    num_classes = check_model_input(model, data)
    check_label_space(config, data, class_names)
    gradcam_layer = check_model(model, config.methods, data.input_shape, config.gradcam_layer)
    check_class(config.target, num_classes)
    layer = feature_layer(model, config.layer)
    model_record = _model_record(model, model_name, weights_sha256, run_dir)
    uses_train = config.select in ("lowest-density", "highest-density")
    identity = {
        "mode": "attributions",
        "weights_sha256": model_record["weights_sha256"],
        "data": [data.name, data.split, data.fingerprint()],
        "train": [train.name, train.fingerprint()] if uses_train and train is not None else None,
        "config": asdict(config),
    }
    job = jobs.Job("explain", out, identity, f"attributions of {model_name or 'a model'} on {data.name}")
    if (done := jobs.finished(job)) is not None:
        progress.note(f"{out}: these attributions are already complete; nothing to do")
        return done
    chosen, pred, log_density = choose(model, data, config, train)
    target = targets(config.target, chosen, pred, num_classes)
    claim = jobs.claim(job)

    progress.note(f"[explain] {', '.join(config.methods)} on {len(chosen)} input(s)")
    seconds: dict[str, float] = {}
    maps = attribute(
        model, chosen.images, target, config=replace(config, gradcam_layer=gradcam_layer), seconds=seconds
    )
    write_table(claim.path(ATTRIBUTIONS), attribution_rows(chosen, pred, target, maps), _schema(chosen))
    pages = _attribution_pages(claim, chosen, pred, maps, log_density, config, class_names)
    record = {
        "model": model_record,
        "dataset": {"spec": data.name, "split": data.split},
        "layer": layer,
        "gradcam_layer": gradcam_layer,
        "inputs": chosen.ids.tolist(),
        "targets": target.tolist(),
        "log_density": None if log_density is None else log_density.tolist(),
        "seconds": seconds,
        "integrated_gradients_completeness_error": (
            completeness_error(model, chosen.images, target, maps["integrated_gradients"])
            if "integrated_gradients" in maps
            else None
        ),
        "figures": pages,
        "config": asdict(config),
    }
    return claim.finish(record, outputs=[ATTRIBUTIONS, *pages])


def _schema(data: ImageDataset):
    return attributions_schema(int(np.prod(data.input_shape)))


def _attribution_pages(claim, data: ImageDataset, pred, maps, log_density, config, class_names) -> list[str]:
    """PNG grids of at most :data:`PAGE` inputs each; returns their file names. Predictions are named by
    the model's ``class_names`` when known, else shown as class indices."""
    names = []
    signed = {m: is_signed(m, config) for m in maps}
    predicted = [class_names[p] if class_names else str(p) for p in pred]
    for page, lo in enumerate(range(0, len(data), PAGE), start=1):
        rows = range(lo, min(lo + PAGE, len(data)))
        labels = [
            f"{data.ids[i]}\nlabel {data.class_names[data.labels[i]] if data.labels[i] >= 0 else '-'}\npred {predicted[i]}"
            + (f"\nlog p {log_density[i]:.0f}" if log_density is not None else "")
            for i in rows
        ]
        fig = plots.attribution_grid(
            data.images[lo : rows.stop], {m: v[lo : rows.stop] for m, v in maps.items()}, signed, labels
        )
        names.append(f"attributions-{page}.png")
        save(fig, claim.path(names[-1]))
    return names


def explain_units(
    model: nn.Module,
    acts: Path,
    out: Path,
    config: UnitsConfig,
    *,
    data: ImageDataset | None = None,
    model_name: str | None = None,
    weights_sha256: str | None = None,
    run_dir: str | None = None,
) -> dict:
    """Each unit's ``config.top`` strongest inputs in the recording ``acts``, projected back; write ``out``.

    ``data`` holds the recorded images (by default the dataset the recording names is loaded).
    """
    model_record = _model_record(model, model_name, weights_sha256, run_dir)
    recording = activations.open(acts)
    if recording.manifest["model"].get("weights_sha256") != model_record["weights_sha256"]:
        raise AUError(
            f"--acts {acts} was recorded from another model (other weights); record this run with 'au record'"
        )
    units = [parse_unit(u) for u in config.units]
    if data is None:
        from au.data import load

        data = load(recording.manifest["dataset"]["spec"], recording.manifest["dataset"]["split"])
    check_model_input(model, data)
    shapes = [check_unit(model, u, data.input_shape) for u in units]
    pools = [recorded_pool(recording, u, shape) for u, shape in zip(units, shapes, strict=True)]
    check_recorded_data(recording, data)
    refuse_functional_relus(model, data.input_shape, "unit projection (guided backprop and deconvnet)")
    identity = {
        "mode": "units",
        "weights_sha256": model_record["weights_sha256"],
        "acts": [str(acts), recording.manifest["job_key"]],
        "data": [data.name, data.split, data.fingerprint()],
        "config": asdict(config),
    }
    claim = jobs.claim(jobs.Job("explain", out, identity, f"unit projection of {model_name or 'a model'}"))
    if claim.done:
        progress.note(f"{out}: these unit projections are already complete; nothing to do")
        return claim.manifest

    rows, figures, summary = [], [], []
    for unit, shape, pool in zip(units, shapes, pools, strict=True):
        progress.note(f"[explain] unit {unit}: top {config.top} of {recording.num_rows:,} recorded inputs")
        values, meta = unit_activations(recording, unit, shape, pool)
        top = top_rows(values, config.top)
        images = images_of(data, meta["ids"][top])
        maps = project(model, unit, shape, pool, images)
        rows += [
            {
                "layer": unit.layer,
                "unit": unit.text,
                "rank": rank,
                "example_id": str(meta["ids"][r]),
                "activation": float(values[r]),
                "label": int(meta["labels"][r]),
                "pred": int(meta["pred"][r]),
            }
            for rank, r in enumerate(top, start=1)
        ]
        title = f"{unit} ({pool} over the map)" if len(shape) == 3 and unit.y is None else str(unit)
        fig = plots.unit_figure(title, images, values[top], meta["ids"][top], maps, values)
        figures.append(f"unit-{unit.layer}-{unit.text.replace(':', '-')}.png")
        save(fig, claim.path(figures[-1]))
        summary.append({"unit": str(unit), "mean": float(values.mean()), "max": float(values.max())})
    write_table(claim.path(UNITS), rows, UNITS_SCHEMA)
    record = {
        "model": model_record,
        "acts": str(acts),
        "units": summary,
        "figures": figures,
        "config": asdict(config),
    }
    return claim.finish(record, outputs=[UNITS, *figures])


def explain_backtrace(
    model: nn.Module,
    train: ImageDataset,
    data: ImageDataset,
    out: Path,
    config: BacktraceConfig,
    *,
    model_name: str | None = None,
    weights_sha256: str | None = None,
    run_dir: str | None = None,
) -> dict:
    """Where the input ``config.example_id`` of ``data`` is least covered by ``train``, and which pixels make it so."""
    check_model_input(model, data)
    layer = feature_layer(model, config.layer)
    row = by_ids(data, [config.example_id])[0]
    model_record = _model_record(model, model_name, weights_sha256, run_dir)
    identity = {
        "mode": "backtrace",
        "weights_sha256": model_record["weights_sha256"],
        "data": [data.name, data.split],
        "train": [train.name, train.fingerprint()],
        "layer": layer,
        "config": asdict(config),
    }
    job = jobs.Job("explain", out, identity, f"backtrace of {config.example_id}")
    if (done := jobs.finished(job)) is not None:
        progress.note(f"{out}: this backtrace is already complete; nothing to do")
        return done
    density, fitted = fit_density(model, train, layer, config.fit_limit, config.seed)
    claim = jobs.claim(job)

    progress.note(f"[explain] backtrace of {config.example_id}: {config.partitions} partition(s) of lowest z")
    parts = backtrace_input(model, density, fitted, data.images[row], layer, config)
    table = [
        {
            "example_id": config.example_id,
            "layer": layer,
            "rank": rank,
            "shape": list(data.input_shape),
            "values": part["map"].ravel().astype(np.float32),
            **{k: v for k, v in part.items() if k not in ("map", "neighbour_rows")},
        }
        for rank, part in enumerate(parts, start=1)
    ]
    write_table(claim.path(BACKTRACE), table, backtrace_schema(int(np.prod(data.input_shape))))
    title = f"{config.example_id} ({data.name}): partitions of {layer} where it is least covered"
    neighbours = [fitted.images[p["neighbour_rows"]] for p in parts]
    save(plots.backtrace_figure(data.images[row], title, parts, neighbours), claim.path("backtrace.png"))
    z, low, high = density.zscore(layer_features(model, data.images[row : row + 1], layer)[0])
    record = {
        "model": model_record,
        "example_id": config.example_id,
        "layer": layer,
        "z": {"value": float(z[0]), "low": float(low[0]), "high": float(high[0])},
        "partitions": [
            {k: part[k] for k in ("partitioning", "partition", "z", "novelty_gain")} for part in parts
        ],
        "n_fit": len(fitted),
        "config": asdict(config),
    }
    return claim.finish(record, outputs=[BACKTRACE, "backtrace.png"])
