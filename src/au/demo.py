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
from au.manifest import read_json, write_json
from au.models import build_model, model_spec
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


def _train_stage(config: DemoConfig, report: Report) -> RunResult:
    progress.note(f"[demo] training {config.model} on {config.data} -> {config.out / 'train'}")
    train, test = data.load_train_test(config.data)
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
    _train_stage(config, report)
    return report.write(out / "report.html")
