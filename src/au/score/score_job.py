"""``au score``: fit every detector on the training split's activations, score in- and out-of-distribution sets.

Layout of a scores directory (a ``score`` job, :mod:`au.jobs`)::

    acts/train, acts/test, acts/ood-<k>-<name>   recordings (au record jobs) of what the detectors read
    scores.parquet   one row per scored input; one float64 column per detector (au.score.schema)
    manifest.json    written last: OOD metrics per detector and set, misclassification AUROC, timings,
                     fitted choices, each set with its recording, the configuration and versions

Re-running the same command reuses the finished recordings under ``acts/`` (and a finished
directory as a whole); another job, or a directory of something else, is refused untouched.

Training data is split once, with ``seed``: ``val_size`` examples form an in-distribution
validation set (for the detectors that declare validation data: ODIN's epsilon search when OOD
validation data is supplied, the Mahalanobis ensemble's combiner); the detectors are fitted on the
rest (at most ``fit_limit``). With no OOD sets, only the test split is scored.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from torch import nn

from au import jobs, progress
from au.data import ImageDataset
from au.data.dataset import NO_LABEL
from au.detectors import registry
from au.detectors.inputs import Inputs, fit_detector, score_in_chunks
from au.errors import AUError
from au.models.layers import check_layer, penultimate_layer
from au.models.weights import state_sha256
from au.ood.metrics import misclassification_auroc, ood_metrics
from au.score.config import ScoreConfig
from au.score.schema import ROW_COLUMNS, SCORES_FILE, read_scores_table, write_scores
from au.score.sets import ScoredSet, check_shape, record_set, recorded_training_set, sample


def score_run(
    model: nn.Module,
    train: ImageDataset,
    test: ImageDataset,
    ood: list[ImageDataset],
    out: Path,
    config: ScoreConfig = ScoreConfig(),
    *,
    val_ood: ImageDataset | None = None,
    acts: Path | None = None,
    model_name: str | None = None,
    weights_sha256: str | None = None,
    run_dir: str | None = None,
) -> dict:
    """Fit ``config.detectors`` on ``train``, score ``test`` and every ``ood`` set; write ``out``; return its manifest.

    Parameters
    ----------
    model : nn.Module
        Any classifier with named layers taking float32 (N, C, H, W) in [0, 1].
    train, test : ImageDataset
        The in-distribution training and test splits.
    ood : list of ImageDataset
        Out-of-distribution sets; their images must have the model's input shape.
    val_ood : ImageDataset, optional
        OOD validation images, for the detectors that tune on them (ODIN's epsilon; the
        Mahalanobis ensemble's negatives, otherwise FGSM copies of in-distribution validation images).
    acts : Path, optional
        A finished recording of ``train`` (``au record --split train``) holding the feature layer.
    """
    layer = _recorded_layer(model, config)
    _check_inputs(model, layer, train, test, ood, val_ood, config)
    weights = weights_sha256 or state_sha256(model)
    val_set, fit_set = _validation_and_fit_sets(train, config)
    model_record = {"name": model_name, "weights_sha256": weights, "run": run_dir}
    identity = {
        "weights_sha256": weights,
        **_data_identity(train, test, ood, val_ood),
        "acts": str(acts) if acts else None,
        "layer": layer,
        "config": config.to_dict(),
    }
    job = jobs.Job("score", out, identity, f"scoring of {model_name or 'a model'} at {layer}")
    if (done := jobs.finished(job)) is not None:
        progress.note(f"{out}: these scores are already complete; nothing to do")
        return done
    fitted = None
    if acts is not None:  # read and checked before anything is written
        fitted = recorded_training_set(acts, layer, train, weights, val_set.ids, config.fit_limit)
    claim = jobs.claim(job)

    progress.note(
        f"[score] features of layer {layer!r} (and logits) for fitting and scoring -> {out / 'acts'}"
    )
    if fitted is None:
        fitted = record_set(
            model, fit_set, claim.path("acts", "train"), layer, False, config.batch_size, model_record
        )
    scored = _record_scored_sets(model, test, ood, layer, config, claim, model_record)
    _into_space(config.space, fitted, scored)
    columns, detectors = _fit_and_score(model, config, fitted, _validation(val_set, val_ood), scored)

    write_scores(claim.path(SCORES_FILE), _columns(scored, columns), config.detectors)
    metrics = evaluate(read_scores_table(claim.path(SCORES_FILE)), config.detectors)
    record_ = {
        "model": model_record,
        "layer": config.space or layer,
        "in_distribution": {
            "train": train.name,
            "n_fit": len(fitted),
            "n_val": len(val_set),
            "test": test.name,
        },
        "sets": [_set_record(s, claim.out) for s in scored],
        "config": config.to_dict(),
        "val_ood": val_ood.name if val_ood is not None else None,
        "detectors": {name: {**metrics[name], **detectors[name]} for name in config.detectors},
    }
    return claim.finish(record_, outputs=[SCORES_FILE])


def _record_scored_sets(
    model, test, ood, layer: str, config: ScoreConfig, claim: jobs.Claim, model_record: dict
):
    """The test set and every OOD set (at most ``config.limit`` of each), recorded under ``acts/``."""
    sets = [(sample(test, config.limit, config.seed), False, "test")]
    sets += [
        (sample(d, config.limit, config.seed), True, f"ood-{k}-{_slug(d.name)}") for k, d in enumerate(ood)
    ]
    return [
        record_set(model, d, claim.path("acts", folder), layer, is_ood, config.batch_size, model_record)
        for d, is_ood, folder in sets
    ]


def _data_identity(train: ImageDataset, test: ImageDataset, ood: list[ImageDataset], val_ood) -> dict:
    return {
        "train": [train.name, train.split, len(train)],
        "test": [test.name, len(test)],
        "ood": [[d.name, d.split, len(d)] for d in ood],
        "val_ood": [val_ood.name, len(val_ood)] if val_ood is not None else None,
    }


def _recorded_layer(model: nn.Module, config: ScoreConfig) -> str:
    """The layer recorded for the feature detectors; only the logits when a feature space replaces it."""
    return "logits" if config.space else config.layer or penultimate_layer(model)


def _validation_and_fit_sets(train: ImageDataset, config: ScoreConfig) -> tuple[ImageDataset, ImageDataset]:
    """The seeded validation draw of ``config.val_size`` training examples, and at most ``fit_limit`` of the rest."""
    order = np.random.default_rng(config.seed).permutation(len(train))
    val_set = train.subset(np.sort(order[: config.val_size]))
    return val_set, train.subset(np.sort(order[config.val_size :][: config.fit_limit]))


def _into_space(name: str | None, fitted: ScoredSet, scored: list[ScoredSet]) -> None:
    """Every set's features replaced by those of the feature space ``name`` (if any), fitted on the training
    set's images."""
    from au.spaces import make_space

    if name is None:
        return
    progress.note(f"[score] feature space {name}: fitting on {len(fitted):,} training images")
    space = make_space(name).fit(fitted.inputs.images)
    for s in [fitted, *scored]:
        s.inputs.features = space.transform(s.inputs.images)


def _validation(val_set: ImageDataset, val_ood: ImageDataset | None) -> tuple[Inputs | None, Inputs | None]:
    """The validation inputs offered to the detectors that declare them (none when ``val_size`` is 0)."""
    if not len(val_set):
        return None, None
    return Inputs(images=val_set.images), Inputs(images=val_ood.images) if val_ood is not None else None


def _check_inputs(model, layer, train, test, ood, val_ood, config: ScoreConfig) -> None:
    """Everything that can be refused before anything is written."""
    check_layer(model, layer)
    for role, d in [("training", train), ("test", test), *[("OOD", d) for d in ood]]:
        check_shape(model, d, role)
    if val_ood is not None:
        check_shape(model, val_ood, "validation OOD")
    if len(set(d.name for d in ood)) != len(ood):
        raise AUError("an OOD set is named twice; list each once")
    if len(train) < config.val_size + 2:
        raise AUError(
            f"the training split has {len(train)} examples, too few for a {config.val_size}-example validation set"
        )
    for name in config.detectors:
        c = registry.detector_class(name).consumes
        if c.validation == "required" or (c.validation == "optional" and val_ood is not None):
            if config.val_size < c.min_validation:
                raise AUError(
                    f"detector {name!r} fits on in-distribution validation examples: val_size must be at least "
                    f"{c.min_validation}, got {config.val_size}"
                )


def _fit_and_score(model, config: ScoreConfig, fitted: ScoredSet, validation, scored: list[ScoredSet]):
    """Each detector fitted on ``fitted`` (and the validation inputs), then scoring every set.

    Returns the score columns (one array per set, per detector) and what each detector reports.
    """
    columns: dict[str, list[np.ndarray]] = {}
    report: dict[str, dict] = {}
    n_scored = sum(len(s) for s in scored)
    for name in config.detectors:
        progress.note(
            f"[score] {name}: fitting on {len(fitted):,} training examples, scoring {n_scored:,} inputs"
        )
        det = registry.build(name, model, config.params.get(name))
        start = time.perf_counter()
        fit_detector(det, fitted.inputs, *validation)
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        columns[name] = [score_in_chunks(det, s.inputs) for s in scored]
        score_seconds = time.perf_counter() - start
        for s, values in zip(scored, columns[name], strict=True):
            if not np.isfinite(values).all():
                raise AUError(
                    f"detector {name!r} gave non-finite scores on {s.name!r}; this is a bug, please report it"
                )
        report[name] = {
            "consumes": det.consumes.input,
            "score_unit": det.score_unit,
            "seconds": {"fit_seconds": fit_seconds, "score_seconds": score_seconds},
            "fitted": det.fitted_summary(),
        }
    return columns, report


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:48]


def _set_record(s: ScoredSet, out: Path) -> dict:
    recording = (
        s.recording.relative_to(out).as_posix() if s.recording.is_relative_to(out) else str(s.recording)
    )
    return {"dataset": s.name, "split": s.split, "is_ood": s.is_ood, "rows": len(s), "recording": recording}


def _columns(scored: list[ScoredSet], scores: dict[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
    columns = {
        "dataset": np.concatenate([[s.name] * len(s) for s in scored]),
        "split": np.concatenate([[s.split] * len(s) for s in scored]),
        "example_id": np.concatenate([s.ids for s in scored]),
        "label": np.concatenate([s.labels for s in scored]),
        "pred": np.concatenate([s.inputs.pred for s in scored]),
        "correct": np.concatenate([s.correct for s in scored]),
        "is_ood": np.concatenate([np.full(len(s), s.is_ood) for s in scored]),
    }
    assert tuple(columns) == ROW_COLUMNS
    return {**columns, **{name: np.concatenate(values) for name, values in scores.items()}}


def evaluate(table: pa.Table, detectors) -> dict[str, dict]:
    """OOD metrics of every detector against every OOD set, and misclassification AUROC, from a scores table."""
    is_ood = table.column("is_ood").to_numpy(zero_copy_only=False)
    dataset = np.asarray(table.column("dataset").to_pylist())
    correct = table.column("correct").to_numpy(zero_copy_only=False)
    labels = table.column("label").to_numpy()
    ood_names = list(dict.fromkeys(dataset[is_ood]))
    labelled = labels[~is_ood] != NO_LABEL
    out = {}
    for name in detectors:
        s = table.column(name).to_numpy()
        s_in = s[~is_ood]
        out[name] = {
            "ood": {o: ood_metrics(s_in, s[dataset == o]) for o in ood_names},
            "misclassification_auroc": misclassification_auroc(s_in[labelled], correct[~is_ood][labelled]),
        }
    return out


def read_scores(path: Path | str) -> tuple[pa.Table, dict]:
    """A finished scores directory: (the scores table, its manifest). Refuses unfinished or altered ones."""
    manifest = jobs.read_manifest(Path(path), "score", verify=True)
    return read_scores_table(Path(path) / SCORES_FILE), manifest


def metrics_rows(manifest: dict) -> list[list]:
    """Rows of the printed table: detector, OOD set, AUROC, AUPR-in, AUPR-out, FPR@95%TPR, detection accuracy."""
    keys = ("auroc", "aupr_in", "aupr_out", "fpr_at_95_tpr", "detection_accuracy")
    return [
        [name, ood_name, *(v[k] for k in keys)]
        for name, m in manifest["detectors"].items()
        for ood_name, v in m["ood"].items()
    ]
