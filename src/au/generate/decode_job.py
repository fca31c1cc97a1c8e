"""``au decode``: decode a layer's recorded activations back to images, and invert them by optimisation.

Inputs are two recordings of the same model (``au record``): one of its training split, one of
held-out data. For each layer of ``DecodeConfig.layers`` a decoder (:mod:`au.generate.decoder`) is
trained on the training rows and then decodes, each decoded image fed back through the classifier:

* ``test``: the held-out rows - pixel MSE and PSNR beside the mean training image's (the baseline),
  and the classifier's accuracy on the decoded images beside its accuracy on the originals: how much
  class information the layer keeps;
* ``high_density`` / ``low_density``: one draw from the ``parzen_lsh`` kernel around each of the
  held-out training points of highest and of lowest log-density (:mod:`au.generate.density_draws`);
* ``interpolation``: points on the line between two training examples of different classes;
* ``inversion``: the first held-out targets inverted by optimisation instead
  (:mod:`au.generate.invert`, Mahendran & Vedaldi 2015, arXiv 1412.0035), compared with the decoder
  on the same targets: feature error, pixel MSE, agreement with the original's prediction, seconds.

The density of a map layer (recorded with ``--pool none``) is fitted on its spatial average, the
feature ``au score`` records and the scores and leaderboard use: a Parzen window over the flattened
map (36,864 dimensions for mnist-cnn's conv2) would have every kernel vanish but the nearest one,
and would cost as many times more as there are positions.

Layout of a decode directory (a ``decode`` job, :mod:`au.jobs`)::

    decoded.parquet                one row per decoded image, the image as PNG bytes (its columns:
                                   :mod:`au.generate.decode_tables`)
    decoders/<layer>.safetensors   each layer's decoder (weights and input statistics)
    reconstruction-<layer>.png     held-out originals, decoded and inverted
    density-<layer>.png            decoded draws around high- and low-density training points
    interpolation-<layer>.png      decoded interpolations, one row per pair
    report.html                    the tables and figures
    manifest.json                  written last

Everything that can be refused - recordings of other weights, of the wrong split, a layer one of them
does not hold - is refused before the directory is claimed, so a refused call writes nothing.
So :func:`decode_run` reads top to bottom: check the inputs, claim the directory, decode each layer
(:func:`decode_layer`), write the table and the report (:mod:`au.generate.decode_plots`), finish.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.special import softmax
from torch import nn

from au import activations, jobs, progress
from au.activations.hooks import capture
from au.activations.reader import LayerData, Recording
from au.data import ImageDataset, ids_sha256, to_tensor
from au.detectors import registry
from au.detectors.base import Detector
from au.detectors.inputs import Inputs, fit_detector, score_detector
from au.errors import AUError
from au.generate import decode_plots
from au.generate.decode_config import DecodeConfig
from au.generate.decode_tables import DECODED, decoded_schema, score_names, table_rows
from au.generate.decoder import Training, build_decoder, decode, to_uint8, train_decoder
from au.generate.density_draws import density_rows
from au.generate.invert import invert
from au.models.layers import check_layer, eval_mode
from au.models.weights import load_weights, read_metadata, save_weights, state_sha256
from au.tables import write_table

REPORT = "report.html"
DECODERS = "decoders"
GRID = 8
"""Images per row of the figures."""
MIN_TRAIN = 20
"""Fewest training rows: ``parzen_lsh`` holds a quarter of them (at least 10) out to choose its bandwidths."""


@dataclass(frozen=True)
class LayerInput:
    """A recorded layer as the decoder reads it: ``shape`` (F,) for a vector, (C, H, W) for a whole map."""

    name: str
    pool: str
    shape: tuple[int, ...]

    @property
    def is_map(self) -> bool:
        return len(self.shape) == 3

    def density_features(self, values: np.ndarray) -> np.ndarray:
        """What the density reads, float32 (n, d): the vector, or a map's spatial average (n, C)."""
        values = np.asarray(values, dtype=np.float32)
        return values.reshape(len(values), self.shape[0], -1).mean(axis=2) if self.is_map else values


@dataclass
class Rows:
    """Chosen rows of a recording, with their images: ``positions`` (n,) in the recording, ids, labels,
    the recorded predictions and logits (n, K), images uint8 (n, H, W, C)."""

    recording: Recording
    positions: np.ndarray
    ids: np.ndarray
    labels: np.ndarray
    pred: np.ndarray
    logits: np.ndarray
    images: np.ndarray

    def values(self, layer: str) -> np.ndarray:
        """The layer's recorded values of these rows, (n, F) as recorded (float16 or float32)."""
        return take(self.recording, layer, self.positions).values


def take(recording: Recording, layer: str, positions: np.ndarray) -> LayerData:
    """The rows at sorted ``positions`` of one layer, read part by part (only those rows are kept)."""
    chunks, offset = [], 0
    for part in recording.iter_layer(layer):
        mine = positions[(positions >= offset) & (positions < offset + len(part))] - offset
        if len(mine):
            chunks.append(
                [part.values[mine], part.ids[mine], part.labels[mine], part.pred[mine], part.correct[mine]]
            )
        offset += len(part)
    columns = [np.concatenate(c) for c in zip(*chunks, strict=True)]
    return LayerData(layer, *columns)


def recording_key(recording: Recording) -> list[str]:
    """What identifies a recording's content: its job key and the SHA-256 of its parts' checksums."""
    parts = "\n".join(p["sha256"] for p in recording.manifest["parts"])
    return [recording.manifest["job_key"], hashlib.sha256(parts.encode()).hexdigest()]


def decode_run(
    model: nn.Module,
    train_acts: Path,
    test_acts: Path,
    out: Path,
    config: DecodeConfig,
    *,
    train_data: ImageDataset | None = None,
    test_data: ImageDataset | None = None,
    model_name: str | None = None,
    weights_sha256: str | None = None,
    run_dir: str | None = None,
) -> dict:
    """Decode, sample and invert each layer of ``config.layers``; write ``out``; return its manifest.

    Parameters
    ----------
    model : nn.Module
        Any classifier with named layers taking float32 (N, C, H, W) in [0, 1]; left as it was found.
    train_acts, test_acts : Path
        ``au record`` directories of ``model`` on its training split and on held-out data, holding the layers.
    train_data, test_data : ImageDataset, optional
        The recorded images (by default each recording's dataset is loaded from its spec and split).
    weights_sha256 : str, optional
        The weights the recordings must have been made with (default: the SHA-256 of ``model``'s state).
    """
    weights = weights_sha256 or state_sha256(model)
    train_rec = open_recording(train_acts, "--acts", weights, training=True)
    test_rec = open_recording(test_acts, "--test-acts", weights, training=False)
    layers = [layer_input(model, train_rec, test_rec, name) for name in config.layers]
    identity = {
        "weights_sha256": weights,
        "train_acts": recording_key(train_rec),
        "test_acts": recording_key(test_rec),
        "config": asdict(config),
    }
    job = jobs.Job(
        "decode", out, identity, f"decoding of {model_name or 'a model'} at {', '.join(config.layers)}"
    )
    if (done := jobs.finished(job)) is not None:
        progress.note(f"{out}: this decoding is already complete; nothing to do")
        return done
    train = chosen_rows(train_rec, train_data, config.train_limit, config.seed, "--acts")
    test = chosen_rows(test_rec, test_data, config.test_limit, None, "--test-acts")
    if len(train.ids) < MIN_TRAIN:
        raise AUError(
            f"--acts {train_acts} holds {len(train.ids)} training rows; the density needs at least {MIN_TRAIN}"
        )
    claim = jobs.claim(job)

    table, summaries, files = [], [], []
    for index, layer in enumerate(layers):
        rows, summary, written = decode_layer(model, layer, index, train, test, config, claim)
        table += rows
        summaries.append(summary)
        files += written

    write_table(claim.path(DECODED), table, decoded_schema(train.logits.shape[1], score_names()))
    record = {
        "model": {"name": model_name, "weights_sha256": weights, "run": run_dir},
        "train_acts": str(train_acts),
        "test_acts": str(test_acts),
        "n_train": len(train.ids),
        "n_test": len(test.ids),
        "rows": len(table),
        "layers": summaries,
        "config": asdict(config),
    }
    decode_plots.write_report(claim.path(REPORT), record, [f for f in files if f.endswith(".png")], claim.out)
    return claim.finish(record, outputs=[DECODED, REPORT, *files])


def open_recording(path: Path, option: str, weights: str, training: bool) -> Recording:
    """A finished recording made with ``weights``, of the training split (``training``) or of held-out data."""
    recording = activations.open(path)
    m = recording.manifest
    if m["model"].get("weights_sha256") != weights:
        raise AUError(
            f"{option} {path} was recorded with other weights than this model's; record it from this run"
        )
    split = m["dataset"]["split"]
    if training and split != "train":
        raise AUError(
            f"{option} {path} holds the {split!r} split of {m['dataset']['spec']!r}; pass a recording of the "
            "training split (au record --split train)"
        )
    if not training and split == "train":
        raise AUError(
            f"{option} {path} holds the training split; pass a recording of held-out data (au record --split test)"
        )
    return recording


def layer_input(model: nn.Module, train: Recording, test: Recording, name: str) -> LayerInput:
    """How ``name`` was recorded in both recordings, the same way, from a layer of ``model``; or one line."""
    info = train.layer_info(name)
    other = test.layer_info(name)
    if (other["pool"], other["features"]) != (info["pool"], info["features"]):
        raise AUError(
            f"layer {name!r} is recorded as {info['features']} features ({info['pool']}) in {train.path} but as "
            f"{other['features']} ({other['pool']}) in {test.path}; record both with the same --pool"
        )
    check_layer(model, name)
    shape = tuple(int(s) for s in info["shape"])
    whole_map = info["pool"] == "none" and len(shape) == 3
    return LayerInput(name, info["pool"], shape if whole_map else (int(info["features"]),))


def chosen_rows(
    recording: Recording, data: ImageDataset | None, limit: int, seed: int | None, option: str
) -> Rows:
    """At most ``limit`` rows of ``recording`` - drawn with ``seed``, or the first ones without - with their images."""
    n = recording.num_rows
    if limit >= n:
        positions = np.arange(n)
    elif seed is None:
        positions = np.arange(limit)
    else:
        positions = np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))
    logits = take(recording, "logits", positions)
    data = recorded_data(recording, data, option)
    where = {example_id: i for i, example_id in enumerate(data.ids)}
    missing = [i for i in logits.ids if i not in where]
    if missing:
        raise AUError(
            f"{option} {recording.path} holds examples that are not in {data.name!r} (e.g. {missing[0]!r})"
        )
    images = data.images[np.array([where[i] for i in logits.ids], dtype=np.int64)]
    return Rows(
        recording, positions, logits.ids, logits.labels, logits.pred, logits.values.astype(np.float32), images
    )


def recorded_data(recording: Recording, data: ImageDataset | None, option: str) -> ImageDataset:
    """The recorded dataset (loaded from the recording's spec and split unless given), checked to be the one recorded."""
    m = recording.manifest["dataset"]
    if data is None:
        from au import data as datasets

        data = datasets.load(m["spec"], m["split"])
    rows = int(m["rows"])
    sha = data.fingerprint() if rows == len(data) else ids_sha256(data.ids[:rows])
    if sha != m["data_sha256"]:
        raise AUError(
            f"{option} {recording.path} was recorded from other examples than {data.name!r} ({data.split}) holds; "
            "pass the images it was recorded from"
        )
    return data


def decode_layer(model, layer: LayerInput, index: int, train: Rows, test: Rows, config, claim):
    """One layer's decoder, decoded rows and figures: (table rows, summary, files written)."""
    progress.note(
        f"[decode] {layer.name} {layer.shape}: {len(train.ids):,} training rows, {len(test.ids):,} held-out"
    )
    x_train, x_test = train.values(layer.name), test.values(layer.name)
    decoder, training, weights_file = layer_decoder(layer, index, x_train, train.images, config, claim)
    fitted = Inputs(logits=train.logits, features=layer.density_features(x_train), labels=train.labels)
    density = registry.density(config.seed).fit(fitted.features)
    scores = [fit_detector(registry.build(name), fitted) for name in score_names()]
    scorer = Scorer(model, layer, density, scores)
    test_part = heldout_rows(decoder, scorer, layer, x_test, test, train.images)
    draws = density_rows(decoder, scorer, layer, x_train, train, density, config, index)
    lines = interpolation_rows(decoder, scorer, layer, x_train, train, config, index)
    inverted = inversion_rows(model, decoder, scorer, layer, x_test, test, test_part, config, index)
    figures = decode_plots.layer_figures(
        claim.out, file_stem(layer.name), layer.name, test.images, test_part, draws, lines, inverted, GRID
    )
    summary = {
        "layer": layer.name,
        "input": "map" if layer.is_map else "vector",
        "shape": list(layer.shape),
        "pool": layer.pool,
        "decoder_parameters": sum(p.numel() for p in decoder.parameters()),
        "train_seconds": training.seconds,
        "final_loss": float(training.losses[-10:].mean()),
        **test_part["summary"],
        **draws["summary"],
        **lines["summary"],
        **inverted["summary"],
    }
    rows = test_part["rows"] + draws["rows"] + lines["rows"] + inverted["rows"]
    return rows, summary, [weights_file, *figures]


def layer_decoder(layer: LayerInput, index: int, features, images, config: DecodeConfig, claim):
    """The layer's trained decoder, its :class:`Training`, and its weights file (kept when a resumed job had it)."""
    decoder = build_decoder(layer.shape, _image_shape(images), seed=config.seed + index)
    name = f"{DECODERS}/{file_stem(layer.name)}.safetensors"
    path = claim.path(name)
    if claim.resumed and path.is_file():
        meta = read_metadata(path)
        if meta.get("au.layer") == layer.name:
            load_weights(decoder, path)
            decoder.eval()
            progress.note(f"[decode] {layer.name}: decoder kept from the interrupted run")
            losses = np.full(10, float(meta["au.final_loss"]))
            return decoder, Training(losses, float(meta["au.train_seconds"])), name
    training = train_decoder(
        decoder,
        features,
        images,
        steps=config.steps,
        batch_size=config.batch_size,
        lr=config.lr,
        loss=config.loss,
        seed=config.seed + index,
        desc=f"decoder {layer.name}",
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {
        "au.layer": layer.name,
        "au.activation_shape": "x".join(map(str, layer.shape)),
        "au.final_loss": repr(float(training.losses[-10:].mean())),
        "au.train_seconds": repr(training.seconds),
    }
    save_weights(decoder, path, extra)
    return decoder, training, name


def file_stem(layer: str) -> str:
    """A layer's name as a file name: characters other than letters, digits, ``.``, ``_`` and ``-`` become ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", layer)


def _image_shape(images: np.ndarray) -> tuple[int, int, int]:
    """(C, H, W) of uint8 images (N, H, W, C)."""
    _, h, w, c = images.shape
    return (int(c), int(h), int(w))


class Scorer:
    """Feeds images back through the classifier: prediction, probabilities, every detector's score, densities,
    feature error."""

    def __init__(
        self, model: nn.Module, layer: LayerInput, density: Detector, scores: list, batch_size: int = 256
    ) -> None:
        self.model = model
        self.layer = layer
        self.density = density  # the registry's density, fitted on the layer's training features
        self.scores = scores  # fitted detectors that read the logits or the layer's features
        self.batch_size = batch_size

    def activations(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(logits (n, K), the layer's activation (n, F) pooled as recorded) of uint8 images (n, H, W, C)."""
        logits, feats = [], []
        with (
            eval_mode(self.model),
            torch.inference_mode(),
            capture(self.model, [self.layer.name], self.layer.pool) as out,
        ):
            for lo in range(0, len(images), self.batch_size):
                logits.append(self.model(to_tensor(images[lo : lo + self.batch_size])).float().numpy().copy())
                feats.append(out[self.layer.name].float().numpy().copy())
        return np.concatenate(logits), np.concatenate(feats)

    def __call__(self, images: np.ndarray, targets: np.ndarray) -> dict[str, np.ndarray]:
        """Columns of the table for decoded ``images`` uint8 (n, H, W, C) of the vectors ``targets`` (n, F)."""
        logits, feats = self.activations(images)
        targets = np.asarray(targets, dtype=np.float32)
        error = np.linalg.norm(feats - targets, axis=1) / np.maximum(np.linalg.norm(targets, axis=1), 1e-12)
        pred, features = logits.argmax(axis=1), self.layer.density_features(feats)
        inputs = Inputs(logits=logits, features=features, pred=pred)
        return {
            "pred": pred,
            "probs": softmax(logits.astype(np.float64), axis=1).astype(np.float32),
            "scores": {d.name: score_detector(d, inputs) for d in self.scores},
            "target_log_density": self.density.score_samples(self.layer.density_features(targets)),
            "decoded_log_density": self.density.score_samples(features),
            "feature_error": error,
        }


def pixel_mse(images: np.ndarray, originals: np.ndarray) -> np.ndarray:
    """Mean squared error per image, in [0, 1] pixel units, of uint8 images (n, H, W, C): shape (n,)."""
    diff = images.astype(np.float64) / 255.0 - originals.astype(np.float64) / 255.0
    return (diff**2).reshape(len(diff), -1).mean(axis=1)


def psnr(mse: np.ndarray) -> float:
    """Mean over images of 10 log10(1 / MSE) in dB (pixels in [0, 1]; an exact copy counts as MSE 1e-10)."""
    return float(np.mean(10 * np.log10(1.0 / np.maximum(mse, 1e-10))))


def accuracy(pred: np.ndarray, labels: np.ndarray) -> float | None:
    """Share of labelled rows (label >= 0) predicted right; None when no row is labelled."""
    labelled = labels >= 0
    return float((pred[labelled] == labels[labelled]).mean()) if labelled.any() else None


def heldout_rows(decoder, scorer: Scorer, layer: LayerInput, x_test, test: Rows, train_images) -> dict:
    """The held-out rows decoded: reconstruction error beside the mean training image's, accuracy beside the originals'."""
    decoded = to_uint8(decode(decoder, x_test))
    scored = scorer(decoded, x_test)
    mse = pixel_mse(decoded, test.images)
    mean_image = np.rint(train_images.astype(np.float64).mean(axis=0))  # (H, W, C): the baseline
    baseline = pixel_mse(np.broadcast_to(mean_image, test.images.shape), test.images)
    summary = {
        "test_mse": float(mse.mean()),
        "test_psnr": psnr(mse),
        "baseline_mse": float(baseline.mean()),
        "baseline_psnr": psnr(baseline),
        "decoded_accuracy": accuracy(scored["pred"], test.labels),
        "original_accuracy": accuracy(test.pred, test.labels),
        "decoded_agreement": float((scored["pred"] == test.pred).mean()),
        "test_feature_error": float(scored["feature_error"].mean()),
    }
    sources = [[i] for i in test.ids]
    rows = table_rows(layer.name, "test", decoded, scored, sources, label=test.labels, pixel_mse=mse)
    return {"rows": rows, "images": decoded, "scored": scored, "mse": mse, "summary": summary}


def class_pairs(labels: np.ndarray, count: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """``count`` pairs (i, j) of rows with different labels, drawn with ``rng`` (fewer if there is one class only)."""
    pairs = []
    for _ in range(count):
        i = int(rng.integers(len(labels)))
        others = np.flatnonzero(labels != labels[i])
        if not len(others):
            break
        pairs.append((i, int(rng.choice(others))))
    return pairs


def interpolation_rows(
    decoder, scorer: Scorer, layer: LayerInput, x_train, train: Rows, config, index: int
) -> dict:
    """Decoded points (1 - t) a + t b between training activations a, b of different classes, t from 0 to 1."""
    pairs = class_pairs(train.labels, config.pairs, np.random.default_rng([config.seed, index, 2]))
    t = np.linspace(0.0, 1.0, config.interpolation_steps)
    if not pairs:
        return {"rows": [], "pairs": [], "summary": {"pairs": 0, "interpolation_changes": None}}
    x = np.asarray(x_train, dtype=np.float64)
    targets = np.concatenate([(1 - t)[:, None] * x[i] + t[:, None] * x[j] for i, j in pairs])
    images = to_uint8(decode(decoder, targets))
    scored = scorer(images, targets)
    sources = [[train.ids[i], train.ids[j]] for i, j in pairs for _ in t]
    rows = table_rows(layer.name, "interpolation", images, scored, sources, t=np.tile(t, len(pairs)))
    pred = scored["pred"].reshape(len(pairs), len(t))
    ends = [f"{train.labels[i]}->{train.labels[j]}" for i, j in pairs]
    summary = {
        "pairs": len(pairs),
        # how often the prediction changes along a line: 1 is a single clean switch between the two classes
        "interpolation_changes": float((np.diff(pred, axis=1) != 0).sum(axis=1).mean()),
    }
    return {"rows": rows, "images": images, "pred": pred, "ends": ends, "pairs": pairs, "summary": summary}


def inversion_rows(
    model, decoder, scorer: Scorer, layer: LayerInput, x_test, test: Rows, test_part, config, index
) -> dict:
    """The first ``config.invert`` held-out targets inverted by optimisation, against the decoder on the same targets."""
    n = min(config.invert, len(x_test))
    if n == 0:
        return {"rows": [], "summary": {"inverted": 0}}
    decode(decoder, x_test[:1])  # warm-up: the first call of a module pays one-off costs
    started = time.perf_counter()
    decode(decoder, x_test[:n])
    decoder_seconds = (time.perf_counter() - started) / n
    found = invert(
        model,
        layer.name,
        layer.pool,
        np.asarray(x_test[:n], dtype=np.float32),
        _image_shape(test.images),
        steps=config.invert_steps,
        lr=config.invert_lr,
        tv_weight=config.tv_weight,
        alpha=config.alpha,
        alpha_weight=config.alpha_weight,
        seed=config.seed + index,
    )
    images = to_uint8(found.images)
    scored = scorer(images, x_test[:n])
    mse = pixel_mse(images, test.images[:n])
    sources = [[i] for i in test.ids[:n]]
    rows = table_rows(layer.name, "inversion", images, scored, sources, label=test.labels[:n], pixel_mse=mse)
    decoded = test_part["scored"]
    summary = {
        "inverted": n,
        "inversion_start_error": float(found.start_error.mean()),
        "inversion_feature_error": float(scored["feature_error"].mean()),
        "decoder_feature_error": float(decoded["feature_error"][:n].mean()),
        "inversion_mse": float(mse.mean()),
        "decoder_mse": float(test_part["mse"][:n].mean()),
        "inversion_agreement": float((scored["pred"] == test.pred[:n]).mean()),
        "decoder_agreement": float((decoded["pred"][:n] == test.pred[:n]).mean()),
        "inversion_seconds_per_image": found.seconds / n,
        "decoder_seconds_per_image": decoder_seconds,
    }
    return {"rows": rows, "images": images, "summary": summary}
