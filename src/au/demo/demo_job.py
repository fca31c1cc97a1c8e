"""``au demo``: the main job, end to end on MNIST, ending in one self-contained ``report.html``.

Layout of a demo directory (a ``demo`` job, :mod:`au.jobs`)::

    train/    the trained model (an au train job)
    ablate/   a reduced data-ablation sweep (au ablate), with its learning curve in ablate/curve/ (au curve)
    acts/     the model's activations on the train and test splits (au record)
    scores/   every coverage detector against five OOD sets (au score)
    gold/     the certified leaderboard, and coverage along the sweep's models (au gold)
    explain/  attribution maps of correct, wrong, lowest-density and OOD inputs, the feature layer's
              top units, the backtrace of the lowest-density test input (au explain)
    perturb/  the sigma sweep at each of ``perturb_layers`` (au perturb)
    report.html, manifest.json   written last

Every stage is a job of its own, so an interrupted demo re-run with the same arguments continues
where it stopped: finished stages are reused, an unfinished one resumes.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from au import activations, data, jobs, progress
from au.ablation.ablate_job import run_sweep
from au.ablation.config import SWEEP_TRAINING, SweepConfig
from au.activations.config import RecordConfig
from au.activations.record_job import record
from au.curves.config import CurveOptions
from au.curves.curve_job import analyse_sweep
from au.data import ImageDataset
from au.demo import sections
from au.demo.config import DemoConfig
from au.detectors.registry import DENSITY
from au.explain.config import BacktraceConfig, ExplainConfig, PerturbConfig, UnitsConfig
from au.explain.explain_job import explain_backtrace, explain_inputs, explain_units
from au.explain.perturb_job import perturb_run
from au.explain.report import add_explain_section
from au.explain.units import top_units
from au.gold.config import GoldConfig, TrainingSizeOptions
from au.gold.gold_job import gold_run
from au.gold.report import add_gold_section
from au.models import build_model, model_spec
from au.models.layers import penultimate_layer
from au.report import Report
from au.score.config import ScoreConfig
from au.score.score_job import read_scores, score_run
from au.train.config import TrainConfig
from au.train.train_job import RunResult, train_run

REPORT = "report.html"


def run_demo(config: DemoConfig = DemoConfig(), out: Path = Path("runs/demo")) -> Path:
    """Run every demo stage into ``out`` and return the path of ``report.html``."""
    model_spec(config.model)  # an unknown model fails before anything is written
    claim = jobs.claim(jobs.Job("demo", out, asdict(config), f"demo of {config.model} on {config.data}"))
    if claim.done:
        progress.note(f"{out}: this demo is already complete; nothing to do")
        return claim.path(REPORT)

    train, test = data.load_train_test(config.data)
    report = Report(f"AU demo: {config.model} on {config.data}")
    report.paragraph(
        "AU looks for the relation between a network's training data and its accuracy: across datasets "
        "(how accuracy grows with training data) and per input (how well the training data covers it)."
    )
    trained = _train_stage(config, claim, train, test, report)
    _ablation_stage(config, claim, train, test, report)
    acts = _record_stage(config, claim, trained, train, test, report)
    _score_stage(config, claim, trained, train, test, acts, report)
    _gold_stage(config, claim, train, test, report)
    _explain_stage(config, claim, trained, train, test, acts, report)
    report.write(claim.path(REPORT))
    stages = ["train", "ablate", "acts", "scores", "gold", "explain", "perturb"]
    claim.finish({"stages": stages}, outputs=[REPORT])
    return claim.path(REPORT)


def _train_stage(
    config: DemoConfig, claim, train: ImageDataset, test: ImageDataset, report: Report
) -> RunResult:
    out = claim.path("train")
    progress.note(f"[demo] training {config.model} on {config.data} -> {out}")
    train_config = TrainConfig(**model_spec(config.model).train_defaults).updated(
        keep=config.keep, seed=config.seed, epochs=config.epochs, max_steps=config.max_steps
    )
    model = build_model(config.model, train.input_shape, train.num_classes, seed=config.seed)
    result = train_run(model, train, test, train_config, out, model_name=config.model, data_spec=config.data)
    sections.add_train_section(report, result, config.model, config.data)
    return result


def _ablation_stage(
    config: DemoConfig, claim, train: ImageDataset, test: ImageDataset, report: Report
) -> None:
    """A reduced data-ablation sweep and its learning-curve fits."""
    out = claim.path("ablate")
    progress.note(
        f"[demo] data ablation: {len(config.sweep_fractions)} fractions x {config.sweep_trials} trial(s) -> {out}"
    )
    max_steps = min(config.sweep_max_steps, config.max_steps or config.sweep_max_steps)
    sweep = SweepConfig(
        model=config.model,
        data=config.data,
        fractions=config.sweep_fractions,
        trials=config.sweep_trials,
        seed=config.seed,
        training=SWEEP_TRAINING.updated(max_steps=max_steps),
    )
    run_sweep(sweep, out, train=train, test=test, workers=config.workers)
    curve = analyse_sweep(out, CurveOptions(holdout_max=config.sweep_holdout_max, bootstrap=500))
    sections.add_ablation_section(report, curve, config.sweep_fractions, config.sweep_trials, max_steps)


def _record_stage(
    config: DemoConfig, claim, trained: RunResult, train, test, report: Report
) -> dict[str, Path]:
    """Pooled activations of the trained model on the train and test splits, for the per-input stages."""
    paths, manifests = {}, []
    for split in (train, test):
        out = claim.path("acts", split.split)
        progress.note(f"[demo] recording {', '.join(config.record_layers)} on {split.split} -> {out}")
        manifests.append(
            record(
                trained.model,
                split,
                out,
                RecordConfig(
                    layers=config.record_layers, pool="avg", dtype="float16", limit=config.record_limit
                ),
                model_name=config.model,
                weights_sha256=trained.manifest["weights"]["sha256"],
                run_dir=str(trained.path),
            )
        )
        paths[split.split] = out
    sections.add_record_section(report, manifests, config.record_layers)
    return paths


def _score_stage(config: DemoConfig, claim, trained: RunResult, train, test, acts, report: Report) -> None:
    """Every coverage detector, fitted on the recorded training activations, against the OOD sets."""
    out = claim.path("scores")
    progress.note(f"[demo] coverage scores: {len(config.score_ood)} OOD sets -> {out}")
    ood = [data.load(spec, data.evaluation_split(spec)) for spec in config.score_ood]
    # a shortened demo (--record-limit) records fewer training rows: size the validation set to them
    rows = min(len(train), config.record_limit or len(train), config.score_fit_limit or len(train))
    score_config = ScoreConfig(
        limit=config.score_limit,
        fit_limit=config.score_fit_limit,
        val_size=min(1000, max(10, rows // 10)),
        seed=config.seed,
    )
    score_run(
        trained.model,
        train,
        test,
        ood,
        out,
        score_config,
        acts=acts["train"],
        model_name=config.model,
        weights_sha256=trained.manifest["weights"]["sha256"],
        run_dir=str(trained.path),
    )
    table, manifest = read_scores(out)
    sections.add_score_section(report, manifest, table)


def _gold_stage(config: DemoConfig, claim, train: ImageDataset, test: ImageDataset, report: Report) -> None:
    """Certified coverage of every detector (the leaderboard), and how it grows along the demo's own sweep."""
    out = claim.path("gold")
    progress.note(
        f"[demo] gold leaderboard: {len(config.gold_epsilons)} epsilons, {config.gold_splits} splits -> {out}"
    )
    gold = GoldConfig(
        epsilons=config.gold_epsilons,
        delta=config.gold_delta,
        n_splits=config.gold_splits,
        seed=config.seed,
        mixed=("all",),
        method=config.gold_method,
    )
    result = gold_run(
        [claim.path("scores")],
        out,
        gold,
        ablation=claim.path("ablate"),
        # the needed-data held-out check fits on the sweep's small fractions, as the curve stage does
        ablation_options=TrainingSizeOptions(
            limit=config.score_limit, held_out_max_fraction=config.sweep_holdout_max
        ),
        train=train,
        test=test,
    )
    add_gold_section(report, result, out)


def _explain_stage(config: DemoConfig, claim, trained: RunResult, train, test, acts, report: Report) -> None:
    """Attribution maps of a few chosen inputs, the feature layer's top units, the backtrace of the lowest-density
    test input, and the sigma sweep at each of ``perturb_layers``."""
    who = {
        "model_name": config.model,
        "weights_sha256": trained.manifest["weights"]["sha256"],
        "run_dir": str(trained.path),
    }
    progress.note(f"[demo] attributions, unit projections and perturbations -> {claim.path('explain')}")
    attributions = []
    picks = _picks(read_scores(claim.path("scores"))[0], config.explain_examples)
    for group, (spec, ids) in picks.items():
        dataset = test if spec == test.name else data.load(spec, data.evaluation_split(spec))
        out = claim.path("explain", group)
        manifest = explain_inputs(trained.model, dataset, out, ExplainConfig(ids=ids), **who)
        attributions.append((f"Attributions: {group.replace('-', ' ')} inputs of {spec}", out, manifest))
    layer = penultimate_layer(trained.model)
    units = [
        f"{layer}:{u}"
        for u in top_units(activations.open(acts["test"]).layer(layer).values, config.explain_units)
    ]
    out = claim.path("explain", "units")
    unit_job = (
        out,
        explain_units(trained.model, acts["test"], out, UnitsConfig(units=tuple(units)), data=test, **who),
    )
    out = claim.path("explain", "backtrace")
    trace = BacktraceConfig(
        picks["lowest-density"][1][0], fit_limit=config.perturb_fit_limit, seed=config.seed
    )
    backtrace = (out, explain_backtrace(trained.model, train, test, out, trace, **who))
    perturbs = [
        perturb_run(
            trained.model,
            train,
            test,
            claim.path("perturb", layer),
            PerturbConfig(
                layer=layer, fit_limit=config.perturb_fit_limit, limit=config.score_limit, seed=config.seed
            ),
            **who,
        )
        for layer in config.perturb_layers
    ]
    add_explain_section(report, attributions, unit_job, backtrace, perturbs)


def _picks(table, n: int) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Group -> (dataset spec, ids): the first ``n`` correct and wrong test inputs, the ``n`` of lowest
    density, and the ``n`` of lowest density in the first OOD set (groups with no inputs left out)."""
    dataset = np.asarray(table.column("dataset").to_pylist())
    ids = np.asarray(table.column("example_id").to_pylist())
    is_ood = table.column("is_ood").to_numpy(zero_copy_only=False)
    correct = table.column("correct").to_numpy(zero_copy_only=False)
    density = table.column(DENSITY).to_numpy()
    test_name = dataset[~is_ood][0]
    ood_name = dataset[is_ood][0] if is_ood.any() else None
    in_test = ~is_ood
    lowest = np.argsort(np.where(in_test, density, np.inf), kind="stable")[: min(n, int(in_test.sum()))]
    groups = {
        "correct": (test_name, tuple(ids[in_test & correct][:n])),
        "wrong": (test_name, tuple(ids[in_test & ~correct][:n])),
        "lowest-density": (test_name, tuple(ids[lowest])),
    }
    if ood_name is not None:
        mine = dataset == ood_name
        order = np.argsort(np.where(mine, density, np.inf), kind="stable")[: min(n, int(mine.sum()))]
        groups["ood"] = (ood_name, tuple(ids[order]))
    return {group: picked for group, picked in groups.items() if picked[1]}
