"""Certified coverage against training-set size, from the models of an ablation sweep.

Each trial of an ``au ablate`` sweep is a model trained on a known subset of the training split.
For every trial this fits the chosen detectors on that model's own training subset (so a density
measures coverage by the data *that* model saw), scores the test inputs, certifies each
``epsilon`` on random calibration/test splits as the leaderboard does (with its certificate;
Learn then Test when the leaderboard shows both), and records the
mean certified coverage and the mean score of the test inputs (for ``parzen_lsh`` a
log-density). Plotted against the number of training examples, it shows the per-input side of
the PAC relation: how much of the input space a model can answer on, with a guarantee, as its
training data grows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from au import data, jobs, progress
from au.ablation.table import read_trials
from au.data.dataset import NO_LABEL
from au.detectors.registry import detector_class
from au.errors import AUError
from au.gold.config import TrainingSizeOptions
from au.guarantees.selective import aurc
from au.guarantees.splits import fit_parts, random_splits, split_check
from au.score.config import ScoreConfig
from au.score.score_job import read_scores, score_run
from au.train.rundir import load_run, read_manifest


def check_options(options: TrainingSizeOptions) -> None:
    """Each trial model is scored without a validation set: refuse detectors that cannot fit without one."""
    for name in options.detectors:
        if detector_class(name).consumes.validation == "required":
            raise AUError(
                f"--ablation-detectors: {name!r} needs a validation set of its own; choose other detectors here"
            )


def _trial_scores(run, train, test, out: Path, options: TrainingSizeOptions, seed: int):
    fitted = run.training_data(train)
    config = ScoreConfig(detectors=options.detectors, limit=options.limit, val_size=0, seed=seed)
    score_run(
        run.model,
        fitted,
        test,
        [],
        out,
        config,
        model_name=run.manifest["model"],
        weights_sha256=run.manifest["weights"]["sha256"],
        run_dir=str(run.path),
    )
    return read_scores(out)[0]


def _load_trial(path: Path, factory):
    if factory is None:
        return load_run(path)
    m = read_manifest(path)
    return load_run(path, model=factory(tuple(m["input_shape"]), m["num_classes"], m["config"]["seed"]))


def training_size_method(config) -> str:
    """The certificate of the sweep's models: the leaderboard's (Learn then Test when it shows both)."""
    return "sgr" if config.method == "sgr" else "ltt"


def coverage_vs_training(
    sweep: Path,
    out: Path,
    config,
    options: TrainingSizeOptions = TrainingSizeOptions(),
    *,
    train=None,
    test=None,
    factory=None,
) -> list[dict]:
    """Rows of :data:`au.gold.tables.TRAINING_SIZE_SCHEMA`, one per (trial, detector, epsilon).

    Parameters
    ----------
    sweep : Path
        A finished ``au ablate`` directory.
    out : Path
        Where each trial's scores go (``out/<trial>``, resumable).
    config : GoldConfig
        Epsilons, delta, splits and seed, as for the leaderboard.
    train, test : ImageDataset, optional
        The sweep's splits; loaded from its data spec when omitted.
    factory : callable, optional
        ``factory(input_shape, num_classes, seed) -> nn.Module`` for sweeps of models outside the
        registry (as given to :func:`au.ablation.run_sweep`).
    """
    sweep = Path(sweep)
    trials = read_trials(sweep).to_pylist()
    spec = jobs.read_manifest(sweep, "ablate")["identity"]["data"]
    if train is None or test is None:
        train, test = data.load_train_test(spec)
    rows = []
    method = training_size_method(config)
    for k, t in enumerate(trials, 1):
        progress.note(
            f"[gold] trial model {k}/{len(trials)}: {t['run_dir']} ({t['n_train']:,} training examples)"
        )
        run = _load_trial(sweep / t["run_dir"], factory)
        table = _trial_scores(run, train, test, Path(out) / Path(t["run_dir"]).name, options, config.seed)
        label = table.column("label").to_numpy()
        keep = label != NO_LABEL
        errors = ~table.column("correct").to_numpy(zero_copy_only=False)[keep]
        splits = random_splits(int(keep.sum()), config.n_splits, config.cal_fraction, config.seed)
        fit = fit_parts(splits, config.fit_fraction, config.seed) if method == "ltt" else None
        for name in options.detectors:
            s = table.column(name).to_numpy()[keep]
            area = aurc(s, errors)
            for check in split_check(
                s, errors, config.epsilons, config.delta, splits, method=method, fit=fit
            ):
                rows.append(
                    {
                        "run_dir": t["run_dir"],
                        "kind": t["kind"],
                        "fraction": t["fraction"] if t["kind"] == "fraction" else t["class_fraction"],
                        "ablated_class": t["ablated_class"],
                        "trial": t["trial"],
                        "n_train": t["n_train"],
                        "test_accuracy": float(1.0 - errors.mean()),
                        "detector": name,
                        "epsilon": check.epsilon,
                        "coverage": float(check.coverage[0]),
                        "coverage_mean": float(check.coverage.mean()),
                        "coverage_std": float(check.coverage.std()),
                        "violation_rate": check.violation_rate,
                        "aurc": area,
                        "score_mean": float(np.mean(s)),
                    }
                )
    return rows
