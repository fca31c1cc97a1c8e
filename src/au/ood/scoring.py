"""``au score``: fit every detector on the training split's activations, score in- and out-of-distribution sets.

Layout of a scores directory::

    acts/train, acts/test, acts/ood-<k>-<name>   recordings (au.activations) of what the detectors read
    scores.parquet   one row per scored input; one float64 column per detector
    metrics.json     written last: OOD metrics per detector and set, misclassification AUROC, timings,
                     the configuration, versions and the SHA-256 of scores.parquet

A directory without ``metrics.json`` is unfinished (it holds ``scores-incomplete.json``, the job's
identity, instead): :func:`read_scores` refuses it. Re-running the same command reuses the finished
recordings under ``acts/`` (and a finished directory as a whole); another job, or a directory of
something else, is refused untouched.

Training data is split once, with ``seed``: ``val_size`` examples form an in-distribution
validation set (used only by ODIN's epsilon search, when OOD validation data is supplied, and by the
Mahalanobis ensemble's combiner; 0 is allowed without the ensemble); the detectors are fitted on
the rest (at most ``fit_limit``). With no OOD sets, only the test split is scored.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from torch import nn

from au import activations, progress
from au.activations import RecordConfig, record
from au.data import ImageDataset
from au.data.dataset import NO_LABEL
from au.detectors import DETECTORS, Detector
from au.errors import AUError
from au.manifest import atomic_path, check_job_dir, environment, job_key, read_json, write_json
from au.models.layers import layer_names, weighted_layers
from au.models.weights import sha256_file, state_sha256
from au.ood.metrics import misclassification_auroc, ood_metrics

SCORES = "scores.parquet"
METRICS = "metrics.json"
INCOMPLETE = "scores-incomplete.json"
FORMAT = "au-scores/1"
DEFAULT_OOD = ("fashion-mnist", "animal-mnist", "digits", "noise-gaussian", "noise-uniform")
ROW_COLUMNS = ("dataset", "split", "example_id", "label", "pred", "correct", "is_ood")


def penultimate_layer(model: nn.Module) -> str:
    """The feature layer of the feature detectors: the last layer with weights before ``logits``.

    That is the penultimate layer's own output, before its activation function: for ``mnist-cnn``,
    ``fc1`` rather than ``fc1_relu``. Measured on mnist-cnn (20,000 fitted, 1,000 scored per set),
    the ReLU's zeros erase what separates noise from digits - Mahalanobis AUROC against uniform
    noise is 0.46 on ``fc1_relu`` - while ``fc1`` keeps it. A model may name its own with a
    ``feature_layer`` attribute.
    """
    if getattr(model, "feature_layer", None):
        return str(model.feature_layer)
    names = layer_names(model)
    if "logits" not in names:
        raise AUError(
            "cannot tell the model's penultimate layer (no layer named 'logits'); pass --layer NAME"
        )
    weighted = weighted_layers(model)
    if not weighted:
        raise AUError(
            "cannot tell the model's penultimate layer (no layer with weights before 'logits'); pass --layer NAME"
        )
    return weighted[-1]


@dataclass(frozen=True)
class ScoreConfig:
    """What to fit and score. ``detectors`` are names of :data:`au.detectors.DETECTORS`."""

    detectors: tuple[str, ...] = tuple(DETECTORS)
    layer: str | None = None
    limit: int | None = None
    fit_limit: int | None = None
    val_size: int = 1000
    batch_size: int = 256
    seed: int = 0
    params: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = [d for d in self.detectors if d not in DETECTORS]
        if unknown:
            raise AUError(f"unknown detector(s) {', '.join(unknown)}; known: {', '.join(DETECTORS)}")
        if not self.detectors:
            raise AUError("no detectors chosen; pass --detectors all or a comma-separated list")
        for key, value in (("limit", self.limit), ("fit_limit", self.fit_limit)):
            if value is not None and value < 1:
                raise AUError(f"{key} must be at least 1, got {value}")
        if self.val_size < 0:
            raise AUError(f"val_size must be at least 0, got {self.val_size}")
        if "mahalanobis_ensemble" in self.detectors and self.val_size < 10:
            raise AUError(
                f"mahalanobis_ensemble fits its combiner on the validation set: val_size must be at least 10, "
                f"got {self.val_size}"
            )
        bad = set(self.params) - set(self.detectors)
        if bad:
            raise AUError(f"parameters given for detector(s) not chosen: {', '.join(sorted(bad))}")


@dataclass
class ScoredSet:
    """One scored dataset: its rows and the features the detectors read."""

    name: str
    split: str
    is_ood: bool
    images: np.ndarray
    ids: np.ndarray
    labels: np.ndarray
    pred: np.ndarray
    correct: np.ndarray
    logits: np.ndarray
    features: np.ndarray


def _check_shape(model: nn.Module, dataset: ImageDataset, role: str) -> None:
    want = tuple(getattr(model, "input_shape", dataset.input_shape))
    if tuple(dataset.input_shape) != want:
        c, h, w = want
        raise AUError(
            f"{role} set {dataset.name!r} has images of shape {dataset.image_shape} (H, W, C) but the model "
            f"takes {h}x{w}x{c}; choose a dataset of that shape (noise sets take shape={h}x{w}x{c})"
        )


def sample(dataset: ImageDataset, limit: int | None, seed: int) -> ImageDataset:
    """At most ``limit`` examples, drawn at random with ``seed`` and kept in dataset order."""
    if limit is None or limit >= len(dataset):
        return dataset
    idx = np.sort(np.random.default_rng(seed).choice(len(dataset), limit, replace=False))
    return dataset.subset(idx)


def _record_set(
    model, dataset, out: Path, layer: str, config: ScoreConfig, ident: dict
) -> activations.LayerData:
    layers = [layer] if layer == "logits" else [layer, "logits"]
    record(
        model,
        dataset,
        out,
        RecordConfig(layers=tuple(layers), pool="avg", dtype="float32", batch_size=config.batch_size),
        model_name=ident.get("model"),
        weights_sha256=ident["weights_sha256"],
        run_dir=ident.get("run"),
    )
    return activations.open(out)


def _load_set(recording: activations.Recording, layer: str, dataset: ImageDataset, is_ood: bool) -> ScoredSet:
    feats = recording.layer(layer)
    logits = feats if layer == "logits" else recording.layer("logits")
    if not np.array_equal(feats.ids, dataset.ids):
        raise AUError(f"recording {recording.path} does not hold the examples of {dataset.name!r} in order")
    return ScoredSet(
        name=dataset.name,
        split=dataset.split,
        is_ood=is_ood,
        images=dataset.images,
        ids=feats.ids,
        labels=feats.labels,
        pred=feats.pred,
        correct=feats.correct & ~is_ood,
        logits=np.asarray(logits.values, dtype=np.float32),
        features=np.asarray(feats.values, dtype=np.float32),
    )


def _training_features(acts: Path, layer: str, train: ImageDataset, weights: str, exclude: np.ndarray):
    """Features, logits and labels of the training rows of a user's recording, minus ``exclude`` ids."""
    recording = activations.open(acts)
    m = recording.manifest
    if m["model"].get("weights_sha256") != weights:
        raise AUError(
            f"--acts {acts} was recorded with other weights than this run's; record it from this run"
        )
    if m["dataset"]["split"] != "train" or m["dataset"]["spec"] != train.name:
        raise AUError(
            f"--acts {acts} holds {m['dataset']['spec']!r} ({m['dataset']['split']}), not the training split of "
            f"{train.name!r}; record the training split"
        )
    if layer != "logits" and layer not in recording.layers:
        raise AUError(f"--acts {acts} has no layer {layer!r}; it has {', '.join(recording.layers)}")
    feats = recording.layer(layer)
    keep = ~np.isin(feats.ids, exclude)
    logits = feats if layer == "logits" else recording.layer("logits")
    return (
        np.asarray(feats.values[keep], dtype=np.float32),
        np.asarray(logits.values[keep], dtype=np.float32),
        feats.labels[keep],
        feats.ids[keep],
    )


def build_detector(name: str, model: nn.Module, params: dict | None = None) -> Detector:
    """An unfitted detector; those that read images get the model."""
    cls = DETECTORS[name]
    try:
        return cls(model, **(params or {})) if cls.input == "images" else cls(**(params or {}))
    except TypeError as e:
        raise AUError(f"detector {name!r}: {e}") from None


def _fit(det: Detector, train_feats, train_logits, train_labels, train_images, val_images, val_ood) -> None:
    if det.input == "logits":
        det.fit(train_logits)
    elif det.input == "features":
        det.fit(train_feats, train_labels)
    else:
        det.fit(train_images, train_labels)
        det.tune(val_images, val_ood)


def _score(det: Detector, scored: ScoredSet) -> np.ndarray:
    if det.input == "logits":
        return det.score(scored.logits)
    if det.input == "images":
        return det.score(scored.images)
    if det.needs_predictions:
        return det.score(scored.features, pred=scored.pred)
    return det.score(scored.features)


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
    """Fit ``config.detectors`` on ``train``, score ``test`` and every ``ood`` set; write ``out``; return metrics.

    Parameters
    ----------
    model : nn.Module
        Any classifier with named layers taking float32 (N, C, H, W) in [0, 1].
    train, test : ImageDataset
        The in-distribution training and test splits.
    ood : list of ImageDataset
        Out-of-distribution sets; their images must have the model's input shape.
    val_ood : ImageDataset, optional
        OOD validation images: ODIN tunes epsilon on them, and the Mahalanobis ensemble's combiner
        uses them as negatives (otherwise FGSM copies of the in-distribution validation images).
    acts : Path, optional
        A finished recording of ``train`` (``au record --split train``) holding the feature layer.
    """
    out = Path(out)
    layer = config.layer or penultimate_layer(model)
    valid = layer_names(model)
    if layer not in valid:
        raise AUError(f"unknown layer {layer!r}; the model's layers are: {', '.join(valid)}")
    for role, d in [
        ("test", test),
        *[("OOD", d) for d in ood],
        *([("validation OOD", val_ood)] if val_ood else []),
    ]:
        _check_shape(model, d, role)
    _check_shape(model, train, "training")
    if val_ood is not None and "odin" in config.detectors and config.val_size == 0:
        raise AUError("ODIN tunes epsilon on in-distribution validation images: val_size must be at least 1")
    if len(set(d.name for d in ood)) != len(ood):
        raise AUError("an OOD set is named twice; list each once")
    weights = weights_sha256 or state_sha256(model)
    ident = {"model": model_name, "weights_sha256": weights, "run": run_dir}
    identity = {
        "format": FORMAT,
        "weights_sha256": weights,
        "train": [train.name, train.split, len(train)],
        "test": [test.name, len(test)],
        "ood": [[d.name, d.split, len(d)] for d in ood],
        "val_ood": [val_ood.name, len(val_ood)] if val_ood is not None else None,
        "acts": str(acts) if acts else None,
        "layer": layer,
        "config": asdict(config),
    }
    key = job_key(identity)
    if (out / METRICS).is_file():
        done = read_json(out / METRICS, "scores metrics")
        if done.get("job_key") == key:
            progress.note(f"{out}: these scores are already complete; nothing to do")
            return done
        raise AUError(f"{out} already holds other scores; choose another --out or delete that directory")
    # an unfinished scoring of another job, or a directory of something else, is refused untouched
    check_job_dir(out, key, METRICS, INCOMPLETE, "scores", lambda m: "set of scores")

    rng = np.random.default_rng(config.seed)
    if len(train) < config.val_size + 2:
        raise AUError(
            f"the training split has {len(train)} examples, too few for a {config.val_size}-example validation set"
        )
    order = rng.permutation(len(train))
    val_idx = np.sort(order[: config.val_size])
    fit_idx = np.sort(order[config.val_size :][: config.fit_limit])
    fit_set, val_set = train.subset(fit_idx), train.subset(val_idx)

    progress.note(
        f"[score] features of layer {layer!r} (and logits) for fitting and scoring -> {out / 'acts'}"
    )
    if acts is not None:
        train_feats, train_logits, train_labels, ids = _training_features(
            acts, layer, train, weights, val_set.ids
        )
        if config.fit_limit is not None:
            train_feats, train_logits, train_labels, ids = (
                a[: config.fit_limit] for a in (train_feats, train_logits, train_labels, ids)
            )
        position = {example_id: i for i, example_id in enumerate(train.ids)}
        missing = [i for i in ids if i not in position]
        if missing:
            raise AUError(
                f"--acts {acts} holds examples that are not in {train.name!r} (e.g. {missing[0]!r})"
            )
        fit_set = train.subset(
            np.array([position[i] for i in ids], dtype=np.int64)
        )  # the image detectors' rows
    out.mkdir(parents=True, exist_ok=True)  # after --acts is checked: a refused call leaves nothing behind
    write_json(out / INCOMPLETE, {"job_key": key, "identity": identity})
    if acts is None:
        fitted = _load_set(
            _record_set(model, fit_set, out / "acts" / "train", layer, config, ident), layer, fit_set, False
        )
        train_feats, train_logits, train_labels = fitted.features, fitted.logits, fitted.labels
    sets = [(sample(test, config.limit, config.seed), False, "test")]
    sets += [
        (sample(d, config.limit, config.seed), True, f"ood-{k}-{_slug(d.name)}") for k, d in enumerate(ood)
    ]
    scored = [
        _load_set(_record_set(model, d, out / "acts" / folder, layer, config, ident), layer, d, is_ood)
        for d, is_ood, folder in sets
    ]

    columns: dict[str, list[np.ndarray]] = {}
    timings: dict[str, dict[str, float]] = {}
    fitted_params: dict[str, dict] = {}
    val_images = val_set.images
    val_ood_images = val_ood.images if val_ood is not None else None
    for name in config.detectors:
        progress.note(
            f"[score] {name}: fitting on {len(train_feats):,} training examples, scoring {sum(len(s.ids) for s in scored):,} inputs"
        )
        det = build_detector(name, model, config.params.get(name))
        start = time.perf_counter()
        _fit(det, train_feats, train_logits, train_labels, fit_set.images, val_images, val_ood_images)
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        columns[name] = [_score(det, s) for s in scored]
        score_seconds = time.perf_counter() - start
        for s, values in zip(scored, columns[name], strict=True):
            if not np.isfinite(values).all():
                raise AUError(
                    f"detector {name!r} gave non-finite scores on {s.name!r}; this is a bug, please report it"
                )
        timings[name] = {"fit_seconds": fit_seconds, "score_seconds": score_seconds}
        fitted_params[name] = _fitted_summary(det)

    table = _scores_table(scored, columns)
    with atomic_path(out / SCORES) as tmp:
        pq.write_table(table, tmp, compression="zstd")

    metrics = evaluate(table, config.detectors)
    result = {
        "format": FORMAT,
        "job_key": key,
        "model": {"name": model_name, "weights_sha256": weights, "run": run_dir},
        "layer": layer,
        "in_distribution": {
            "train": train.name,
            "n_fit": int(len(train_feats)),
            "n_val": len(val_set),
            "test": test.name,
        },
        "sets": [
            {"dataset": s.name, "split": s.split, "is_ood": s.is_ood, "rows": len(s.ids)} for s in scored
        ],
        "config": asdict(config),
        "val_ood": val_ood.name if val_ood is not None else None,
        "detectors": {
            name: {**metrics[name], "seconds": timings[name], "fitted": fitted_params[name]}
            for name in config.detectors
        },
        "scores_sha256": sha256_file(out / SCORES),
        "environment": environment(),
    }
    write_json(out / METRICS, result)
    (out / INCOMPLETE).unlink(missing_ok=True)
    return result


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:48]


def _fitted_summary(det: Detector) -> dict:
    """The fitted choices worth reporting (tuned epsilon, bandwidths, LSH fallbacks, covariance shrinkage)."""
    keys = ("epsilon", "epsilon_", "shrinkage_", "fallback_rate_", "combiner_negatives_")
    out = {k.rstrip("_"): getattr(det, k) for k in keys if hasattr(det, k)}
    if hasattr(det, "bandwidths_"):
        out["bandwidth_mean"] = float(np.mean(det.bandwidths_[det.bandwidths_ > 0]))
    return {
        k: (float(v) if isinstance(v, (np.floating, float, int)) and not isinstance(v, bool) else v)
        for k, v in out.items()
    }


def _scores_table(scored: list[ScoredSet], columns: dict[str, list[np.ndarray]]) -> pa.Table:
    arrays = {
        "dataset": pa.array(np.concatenate([[s.name] * len(s.ids) for s in scored]), pa.string()),
        "split": pa.array(np.concatenate([[s.split] * len(s.ids) for s in scored]), pa.string()),
        "example_id": pa.array(np.concatenate([s.ids for s in scored]), pa.string()),
        "label": pa.array(np.concatenate([s.labels for s in scored]), pa.int64()),
        "pred": pa.array(np.concatenate([s.pred for s in scored]), pa.int64()),
        "correct": pa.array(np.concatenate([s.correct for s in scored]), pa.bool_()),
        "is_ood": pa.array(np.concatenate([np.full(len(s.ids), s.is_ood) for s in scored]), pa.bool_()),
    }
    for name, values in columns.items():
        arrays[name] = pa.array(np.concatenate(values), pa.float64())
    return pa.table(arrays)


def evaluate(table: pa.Table, detectors) -> dict[str, dict]:
    """OOD metrics of every detector against every OOD set, and misclassification AUROC, from a scores table."""
    is_ood = table.column("is_ood").to_numpy(zero_copy_only=False)
    dataset = np.asarray(table.column("dataset").to_pylist())
    correct = table.column("correct").to_numpy(zero_copy_only=False)
    labels = table.column("label").to_numpy()
    ood_names = list(dict.fromkeys(dataset[is_ood]))
    out = {}
    for name in detectors:
        s = table.column(name).to_numpy()
        s_in = s[~is_ood]
        out[name] = {
            "ood": {o: ood_metrics(s_in, s[dataset == o]) for o in ood_names},
            "misclassification_auroc": misclassification_auroc(
                s_in[labels[~is_ood] != NO_LABEL], correct[~is_ood][labels[~is_ood] != NO_LABEL]
            ),
        }
    return out


def read_scores(path: Path | str) -> tuple[pa.Table, dict]:
    """A finished scores directory: (the scores table, metrics.json). Refuses unfinished or altered ones."""
    path = Path(path)
    if not (path / METRICS).is_file():
        if (path / SCORES).is_file():
            raise AUError(
                f"{path}: scores.parquet without metrics.json is unfinished; re-run 'au score' to complete it"
            )
        raise AUError(f"{path} holds no scores (no {METRICS}); run 'au score --out {path}' first")
    metrics = read_json(path / METRICS, "scores metrics")
    if not (path / SCORES).is_file() or sha256_file(path / SCORES) != metrics.get("scores_sha256"):
        raise AUError(
            f"{path}/{SCORES} is missing or does not match metrics.json; re-run 'au score' into a new directory"
        )
    return pq.read_table(path / SCORES), metrics


def metrics_rows(metrics: dict) -> list[list]:
    """Rows of the printed table: detector, OOD set, AUROC, AUPR-in, AUPR-out, FPR@95%TPR, detection accuracy."""
    rows = []
    for name, m in metrics["detectors"].items():
        for ood_name, v in m["ood"].items():
            rows.append(
                [
                    name,
                    ood_name,
                    v["auroc"],
                    v["aupr_in"],
                    v["aupr_out"],
                    v["fpr_at_95_tpr"],
                    v["detection_accuracy"],
                ]
            )
    return rows
