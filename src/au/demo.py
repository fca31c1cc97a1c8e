"""``au demo``: the main job, end to end on MNIST, ending in one self-contained ``report.html``.

Each stage writes into its own sub-directory of ``out`` and adds a section to the report; stages
are resumable, so an interrupted demo re-run with the same arguments continues where it stopped.
The report is written last.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path

from au import data, progress
from au.ablation import SWEEP_TRAINING, SweepConfig, run_sweep
from au.activations import RecordConfig, record
from au.curves import CurveOptions, analyse_sweep, sentences
from au.data import ImageDataset
from au.guarantees import GoldConfig, TrainingSizeOptions, gold_run
from au.guarantees.report import add_gold_section
from au.manifest import read_json, write_json
from au.models import build_model, model_spec
from au.ood.scoring import DEFAULT_OOD, ScoreConfig, read_scores, score_run
from au.report import Report, plots
from au.train import RunResult, TrainConfig, train_run


@dataclass(frozen=True)
class DemoConfig:
    """Settings of the demo; the defaults are the full demo (under 10 minutes on 2 cores)."""

    out: Path = Path("runs/demo")
    model: str = "mnist-cnn"
    data: str = "mnist"
    seed: int = 0
    keep: float = 1.0
    epochs: int | None = None
    max_steps: int | None = None
    sweep_fractions: tuple[float, ...] = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1)
    sweep_trials: int = 1
    sweep_max_steps: int = 300
    sweep_holdout_max: float = 0.02
    workers: int = 2
    record_layers: tuple[str, ...] = ("conv1", "conv2", "fc1", "fc1_relu", "logits")
    record_limit: int | None = None
    score_ood: tuple[str, ...] = DEFAULT_OOD
    score_limit: int | None = 2000
    score_fit_limit: int | None = 20000
    gold_epsilons: tuple[float, ...] = (0.02, 0.05, 0.1)
    gold_delta: float = 0.05
    gold_splits: int = 200


def _train_stage(config: DemoConfig, train: ImageDataset, test: ImageDataset, report: Report) -> RunResult:
    progress.note(f"[demo] training {config.model} on {config.data} -> {config.out / 'train'}")
    spec = model_spec(config.model)
    train_config = TrainConfig(**spec.train_defaults).updated(
        keep=config.keep, seed=config.seed, epochs=config.epochs, max_steps=config.max_steps
    )
    model = build_model(config.model, train.input_shape, train.num_classes, seed=config.seed)
    result = train_run(
        model, train, test, train_config, config.out / "train", model_name=config.model, data_spec=config.data
    )

    m = result.manifest
    metrics = m["metrics"]
    report.heading("Training")
    report.paragraph(
        f"{config.model} trained on {m['data']['n_train']:,} {config.data} examples "
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
    with open(result.path / "per_class.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    report.table(
        ["class", "name", "support", "precision", "recall", "F1"],
        [
            [
                int(r["class"]),
                r["name"],
                int(r["support"]),
                float(r["precision"]),
                float(r["recall"]),
                float(r["f1"]),
            ]
            for r in rows
        ],
        caption="Per-class metrics on the test split",
    )
    history = read_json(result.path / "history.json", "training history")
    report.figure(
        plots.training_curve(history, config.model), "Training loss per step and accuracy per epoch"
    )
    return result


def _ablation_stage(config: DemoConfig, train: ImageDataset, test: ImageDataset, report: Report) -> dict:
    """A reduced data-ablation sweep and its learning-curve fits."""
    out = config.out / "ablate"
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
    result = analyse_sweep(out, CurveOptions(holdout_max=config.sweep_holdout_max, bootstrap=500))
    fits = result.fits

    report.heading("Accuracy vs training data")
    report.paragraph(
        f"{len(config.sweep_fractions)} stratified subsets of the training split "
        f"({', '.join(f'{f:g}' for f in config.sweep_fractions)} of it), {config.sweep_trials} trial(s) each, "
        f"each model trained with early stopping on its own validation carve-out within {max_steps} steps "
        "and tested on the whole test split. Fitted: the PAC finite-class form accuracy = 1 - sqrt(c/m) and the "
        "power law error = a m^-b + e_inf (Hestness et al. 2017, arXiv 1712.00409), with bootstrap intervals."
    )
    for line in sentences(fits):
        report.paragraph(line)
    report.table(
        ["fraction", "training examples", "trials", "mean test accuracy"],
        [
            [p["fraction"], int(round(p["n_train_mean"])), p["trials"], p["accuracy_mean"]]
            for p in fits["per_fraction"]
        ],
        caption="Measured points",
    )
    captions = {
        "learning_curve": "Test accuracy vs training examples, with both fits and 95% bootstrap bands",
        "error_loglog": "Test error vs training examples on log-log axes",
        "per_class": "Recall of each class vs training examples",
    }
    for key, caption in captions.items():
        report.image(result.figures[key], caption)
    if max_steps < SWEEP_TRAINING.max_steps:
        report.paragraph(
            f"The demo caps each trial at {max_steps} steps to stay quick; 'au ablate' with its defaults trains "
            f"up to {SWEEP_TRAINING.max_steps} steps per trial and measures the full curve.",
            note=True,
        )
    return fits


def _record_stage(
    config: DemoConfig, trained: RunResult, train: ImageDataset, test: ImageDataset, report: Report
) -> dict[str, Path]:
    """Pooled activations of the trained model on the train and test splits, for the per-input stages."""
    paths = {}
    rows = []
    for split in (train, test):
        out = config.out / "acts" / split.split
        progress.note(f"[demo] recording {', '.join(config.record_layers)} on {split.split} -> {out}")
        manifest = record(
            trained.model,
            split,
            out,
            RecordConfig(layers=config.record_layers, pool="avg", dtype="float16", limit=config.record_limit),
            model_name=config.model,
            weights_sha256=trained.manifest["weights"]["sha256"],
            run_dir=str(trained.path),
        )
        paths[split.split] = out
        size = sum(p["bytes"] for p in manifest["parts"])
        rows.append([split.split, manifest["rows"], len(manifest["parts"]), size / 1e6, manifest["seconds"]])
    report.heading("Recorded activations")
    report.paragraph(
        f"Layers {', '.join(config.record_layers)} of the trained model, average-pooled over space and stored as "
        "float16 Parquet (one row per example, one fixed-size list column per layer), for the per-input stages."
    )
    report.table(["split", "rows", "parts", "MB", "seconds"], rows, digits=1)
    return paths


def _score_stage(
    config: DemoConfig,
    trained: RunResult,
    train: ImageDataset,
    test: ImageDataset,
    acts: dict[str, Path],
    report: Report,
) -> dict:
    """Every coverage detector, fitted on the recorded training activations, against the OOD sets."""
    out = config.out / "scores"
    progress.note(f"[demo] coverage scores: {len(config.score_ood)} OOD sets -> {out}")
    ood = [data.load(spec, data.evaluation_split(spec)) for spec in config.score_ood]
    # a shortened demo (--record-limit) records fewer training rows: size the validation and held-out sets to them
    rows = min(len(train), config.record_limit or len(train), config.score_fit_limit or len(train))
    val_size = min(1000, max(10, rows // 10))
    score_config = ScoreConfig(
        limit=config.score_limit,
        fit_limit=config.score_fit_limit,
        val_size=val_size,
        seed=config.seed,
        params={"parzen_lsh": {"heldout": min(1000, max(10, (rows - val_size) // 4))}},
    )
    result = score_run(
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
    table, _ = read_scores(out)
    scored = ", ".join(f"{s['rows']:,} {s['dataset']}" for s in result["sets"])
    detectors = list(result["detectors"])
    ood_names = [s["dataset"] for s in result["sets"] if s["is_ood"]]
    report.heading("Coverage scores and out-of-distribution detection")
    report.paragraph(
        f"Each detector is fitted on {result['in_distribution']['n_fit']:,} training examples (features of layer "
        f"{result['layer']}, or the logits, or the images themselves) and scores "
        f"{scored} inputs; higher means better "
        "covered by the training data. AUROC separates the in-distribution test inputs from each OOD set; the "
        "last column separates correct from wrong predictions on the test inputs."
    )
    report.table(
        ["detector", *ood_names, "misclassification"],
        [
            [name, *(m["ood"][o]["auroc"] for o in ood_names), m["misclassification_auroc"]]
            for name, m in result["detectors"].items()
        ],
        caption="AUROC per detector and OOD set",
    )
    report.table(
        ["detector", *ood_names],
        [
            [name, *(m["ood"][o]["fpr_at_95_tpr"] for o in ood_names)]
            for name, m in result["detectors"].items()
        ],
        caption="False positive rate at 95% true positive rate (lower is better)",
    )
    report.figure(
        plots.roc_curves(table, detectors), "ROC curves: in-distribution test inputs against each OOD set"
    )
    return result


def _gold_stage(config: DemoConfig, train: ImageDataset, test: ImageDataset, report: Report) -> dict:
    """Certified coverage of every detector (the leaderboard), and how it grows along the demo's own sweep."""
    out = config.out / "gold"
    progress.note(
        f"[demo] gold leaderboard: {len(config.gold_epsilons)} epsilons, {config.gold_splits} splits -> {out}"
    )
    result = gold_run(
        [config.out / "scores"],
        out,
        GoldConfig(
            epsilons=config.gold_epsilons,
            delta=config.gold_delta,
            n_splits=config.gold_splits,
            seed=config.seed,
            mixed=("all",),
        ),
        ablation=config.out / "ablate",
        ablation_options=TrainingSizeOptions(limit=config.score_limit),
        train=train,
        test=test,
    )
    add_gold_section(report, result, out)
    return result


def run_demo(config: DemoConfig) -> Path:
    """Run every demo stage into ``config.out`` and return the path of ``report.html``."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(
        out / "demo.json", {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()}
    )
    report = Report(f"AU demo: {config.model} on {config.data}")
    report.paragraph(
        "AU looks for the relation between a network's training data and its accuracy: across datasets "
        "(how accuracy grows with training data) and per input (how well the training data covers it)."
    )
    train, test = data.load_train_test(config.data)
    trained = _train_stage(config, train, test, report)
    _ablation_stage(config, train, test, report)
    acts = _record_stage(config, trained, train, test, report)
    _score_stage(config, trained, train, test, acts, report)
    _gold_stage(config, train, test, report)
    return report.write(out / "report.html")
