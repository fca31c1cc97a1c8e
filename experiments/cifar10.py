"""The CIFAR-10 study: AU's whole pipeline on `alexnet-cifar`, every detector at two layers against the colour OOD
sets, the certificates, the open-set (near-OOD) protocol, the learning curve, and simpler feature spaces.

Each step is an ``au`` command run through the CLI's own entry point, into its own directory under
``--out``; every command is a resumable job, so re-running the script continues where it stopped and
skips what is finished. The steps, in order (``--steps`` picks some):

    train     au train --model alexnet-cifar --data cifar10:FILE   (its default budget, crop-flip augmentation)
    score     au score at fc1 and at conv5 (average-pooled), every detector, the colour OOD sets
    ablate    au ablate --fractions 0.01,...,1 --epochs 6 --batch-size 128 (--trials), then au curve
    gold      au gold over both layers, the mixed stream of all OOD sets, and with the sweep's models
              the training data a certificate needs
    openset   train on classes 0-5, score at fc1 with classes 6-9 as the OOD set (near-OOD)
    explain   au explain --select wrong, au perturb at fc1
    spaces    kNN and Parzen in pixels, HOG, ORB and BRISK words beside fc1 (experiments/spaces.py)

At the end it writes ``OUT/results.md`` (the tables, Markdown) and ``OUT/report.html`` (the same
tables with the learning curve, the risk-coverage curves, attribution maps and the perturbation
sweep), and prints the Markdown.

    python experiments/cifar10.py --cifar ../shared/data/cifar10-jpeg.parquet --out runs/cifar10 [--steps train,score]

On 2 CPU cores with ``--limit 2000`` it took 111 minutes: train 30, score 22 (both layers), openset 28,
ablate 25, gold 2, explain 1, spaces 4.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from spaces import SPACES, compare, markdown, table

from au import jobs
from au.cli import main as au
from au.curves.power_law import PowerLawFit
from au.gold.gold_job import read_leaderboard
from au.report.html import Report

SHORT = {
    "mnist:size=32x32:channels=3": "MNIST",
    "fashion-mnist:size=32x32:channels=3": "Fashion-MNIST",
    "noise-gaussian:n=10000:shape=32x32x3": "Gaussian noise",
    "noise-uniform:n=10000:shape=32x32x3": "uniform noise",
    "photo-patches:n=10000": "photo patches",
}
COLOUR_OOD = tuple(SHORT)
LAYERS = ("fc1", "conv5")
EPSILONS = (0.02, 0.05)
STEPS = ("train", "score", "ablate", "gold", "openset", "explain", "spaces")
SWEEP = ("--fractions", "0.01,0.02,0.05,0.1,0.2,0.5,1", "--epochs", "6", "--batch-size", "128")


def run(*argv: str) -> None:
    code = au(["--quiet", *argv])
    if code:
        raise SystemExit(f"au {argv[0]} exited {code}")


@dataclass(frozen=True)
class Study:
    cifar: str
    out: Path
    trials: int
    limit: int | None

    @property
    def data(self) -> str:
        return f"cifar10:{self.cifar}"

    @property
    def run_dir(self) -> Path:
        return self.out / "train"

    @property
    def limits(self) -> list[str]:
        return ["--limit", str(self.limit)] if self.limit else []

    def scores(self, layer: str) -> Path:
        return self.out / f"scores-{layer}"


def train(s: Study) -> None:
    run("train", "--model", "alexnet-cifar", "--data", s.data, "--out", str(s.run_dir))


def score(s: Study) -> None:
    for layer in LAYERS:
        ood = ",".join(COLOUR_OOD)
        run(
            "score",
            "--run",
            str(s.run_dir),
            "--ood",
            ood,
            "--layer",
            layer,
            "--out",
            str(s.scores(layer)),
            *s.limits,
        )


def ablate(s: Study) -> None:
    sweep = s.out / "ablate"
    run(
        "ablate",
        "--model",
        "alexnet-cifar",
        "--data",
        s.data,
        *SWEEP,
        "--trials",
        str(s.trials),
        "--out",
        str(sweep),
    )
    run("curve", str(sweep))


def gold(s: Study) -> None:
    scores = ",".join(str(s.scores(layer)) for layer in LAYERS)
    epsilons = ",".join(map(str, EPSILONS))
    sweep = [
        "--ablation",
        str(s.out / "ablate"),
        "--ablation-detectors",
        "msp,knn",
        "--ablation-limit",
        "2000",
    ]
    if not (s.out / "ablate" / "manifest.json").exists():
        sweep = []
    run(
        "gold",
        "--scores",
        scores,
        "--mixed",
        "all",
        "--epsilon",
        epsilons,
        *sweep,
        "--out",
        str(s.out / "gold"),
    )


def openset(s: Study) -> None:
    known, unknown = f"{s.data}:classes=0-5", f"{s.data}:classes=6-9"
    run("train", "--model", "alexnet-cifar", "--data", known, "--out", str(s.out / "train-openset"))
    openset_run = str(s.out / "train-openset")
    run(
        "score",
        "--run",
        openset_run,
        "--ood",
        unknown,
        "--layer",
        "fc1",
        "--out",
        str(s.out / "scores-openset"),
        *s.limits,
    )


def explain(s: Study) -> None:
    run(
        "explain",
        "--run",
        str(s.run_dir),
        "--select",
        "wrong",
        "--limit",
        "8",
        "--out",
        str(s.out / "explain"),
    )
    run(
        "perturb",
        "--run",
        str(s.run_dir),
        "--layer",
        "fc1",
        "--limit",
        "2000",
        "--out",
        str(s.out / "perturb"),
    )


def spaces(s: Study) -> None:
    options = argparse.Namespace(
        run=s.run_dir,
        out=s.out / "spaces",
        ood=",".join(COLOUR_OOD),
        layers="fc1",
        detectors="knn,parzen_lsh",
        limit=s.limit or 2000,
        fit_limit=10000,
        epsilon=",".join(map(str, EPSILONS)),
    )
    compare(options)


STEP_FUNCTIONS = {f.__name__: f for f in (train, score, ablate, gold, openset, explain, spaces)}


def _manifest(path: Path, kind: str) -> dict | None:
    """A finished job's manifest, None for a step not run yet; an unfinished or altered one is refused."""
    return jobs.read_manifest(path, kind, verify=True) if (path / "manifest.json").exists() else None


def _coverage(board: dict | None, names: tuple[str, ...]) -> list[str]:
    """The mean certified coverage of the in-distribution stream (Learn then Test) at each epsilon."""
    cov = {}
    for e in board["entries"] if board else []:
        if e["stream"] == "in" and e["entry"] in names and e["method"] == "ltt":
            cov[e["epsilon"]] = e["coverage_mean"]
    return [f"{cov[e]:.3f}" if e in cov else "" for e in EPSILONS]


def detector_table(s: Study) -> tuple[list[str], list[list[str]]]:
    """Per detector and layer: AUROC per OOD set, misclassification AUROC, certified coverage at each epsilon."""
    rows, sets = [], None
    board = read_leaderboard(s.out / "gold") if _manifest(s.out / "gold", "gold") else None
    for layer in LAYERS:
        m = _manifest(s.scores(layer), "score")
        for name, d in (m or {"detectors": {}})["detectors"].items():
            if layer != LAYERS[0] and d["consumes"] != "features":
                continue  # logit scores do not depend on the layer: one row
            sets = sets or list(d["ood"])
            where = layer if d["consumes"] == "features" else d["consumes"]
            aurocs = [f"{d['ood'][o]['auroc']:.4f}" for o in sets]
            cov = _coverage(board, (name, f"{name}@{layer}"))
            rows.append([name, where, *aurocs, f"{d['misclassification_auroc']:.4f}", *cov])
    if board and rows:  # the combined score (au gold --combo): certified coverage only
        rows.append(["combo", "combined", *[""] * (len(sets) + 1), *_coverage(board, ("combo",))])
    head = ["detector", "layer", *(SHORT.get(o, o) for o in sets or []), "misclassification AUROC"]
    return head + [f"coverage @ε {e:g}" for e in EPSILONS], rows


def openset_table(s: Study) -> tuple[list[str], list[list[str]]]:
    """The near-OOD protocol: per detector, AUROC of classes 6-9 against the test split of classes 0-5."""
    m, rows = _manifest(s.out / "scores-openset", "score"), []
    for name, d in (m or {"detectors": {}})["detectors"].items():
        (auroc,) = [v["auroc"] for v in d["ood"].values()]
        rows.append([name, f"{auroc:.4f}", f"{d['misclassification_auroc']:.4f}"])
    return ["detector", "AUROC, classes 6-9 (near-OOD)", "misclassification AUROC"], rows


def trends(s: Study) -> list[str]:
    """OpenOOD v1.5's CIFAR-10 trends, checked: kNN the best near-OOD score; MSP ahead of ODIN and Mahalanobis."""
    m = _manifest(s.out / "scores-openset", "score")
    if m is None:
        return []
    near = {name: next(iter(d["ood"].values()))["auroc"] for name, d in m["detectors"].items()}
    best, runner_up = sorted(near, key=near.get, reverse=True)[:2]
    other = runner_up if best == "knn" else best
    held = "holds" if best == "knn" else f"does not hold: {best} leads"
    lines = [f"kNN the best near-OOD score: {held} (kNN {near['knn']:.4f}, {other} {near[other]:.4f})."]
    for rival in ("odin", "mahalanobis"):
        verdict = "holds" if near["msp"] > near[rival] else "does not hold"
        lines.append(
            f"MSP ahead of {rival} on near-OOD: {verdict} (MSP {near['msp']:.4f}, {rival} {near[rival]:.4f})."
        )
    return lines


def curve_table(s: Study) -> tuple[list[str], list[list[str]]]:
    """The ablation sweep's mean test accuracy per training-set size, beside the power law's fit."""
    curve = s.out / "ablate" / "curve"
    if _manifest(curve, "curve") is None:
        return [], []
    fits = json.loads((curve / "fits.json").read_text())
    law = fits["power_law"] and PowerLawFit(*(fits["power_law"][k] for k in ("a", "b", "e_inf")))
    rows = []
    for p in fits["per_fraction"]:
        fitted = law.accuracy(p["n_train_mean"]) if law else float("nan")
        rows.append(
            [f"{p['fraction']:g}", f"{p['n_train_mean']:,.0f}", f"{p['accuracy_mean']:.4f}", f"{fitted:.4f}"]
        )
    return ["fraction", "training examples", "test accuracy", "power-law fit"], rows


def spaces_table(s: Study) -> tuple[list[str], list[list[str]]]:
    done = [(sp, s.out / "spaces" / f"scores-{sp}") for sp in ("fc1", *SPACES)]
    done = [
        (sp, d)
        for sp, d in done
        if _manifest(d, "score") and _manifest(s.out / "spaces" / f"gold-{sp}", "gold")
    ]
    if not done:
        return [], []
    head, rows = table(s.out / "spaces", done, list(EPSILONS))
    return [SHORT.get(h, h) for h in head], rows


def training_lines(s: Study) -> list[str]:
    lines = []
    for what, d in (("alexnet-cifar", s.run_dir), ("open-set model (classes 0-5)", s.out / "train-openset")):
        m = _manifest(d, "train")
        if m:
            t, c = m["training"], m["config"]
            lines.append(
                f"{what}: test accuracy {m['metrics']['test_accuracy']:.4f}, {c['epochs']} epochs of batch "
                f"{c['batch_size']}, augment {c['augment']}, {t['train_seconds'] / 60:.1f} min of training."
            )
    return lines


TABLES = (
    ("Every detector at fc1 and conv5 against the colour OOD sets", detector_table),
    ("Near-OOD: the open-set split", openset_table),
    ("Simpler feature spaces beside the network's", spaces_table),
    ("Test accuracy against training-set size", curve_table),
)
FIGURES = (
    ("ablate/curve/learning_curve.png", "Test accuracy against training-set size (au ablate, au curve)"),
    ("gold/risk_coverage_in.png", "Risk against coverage on the CIFAR-10 test stream (au gold)"),
    ("gold/needed_data.png", "Certified coverage against training examples, and the data a target needs"),
    (
        "explain/attributions-1.png",
        "Attribution maps of misclassified test images (au explain --select wrong)",
    ),
    ("perturb/sigma_sweep.png", "Gaussian noise on fc1's activations (au perturb)"),
)


def write_results(s: Study) -> str:
    """Write OUT/results.md and OUT/report.html; return the Markdown."""
    report, parts = Report("AU: the CIFAR-10 study"), []
    for line in training_lines(s):
        report.paragraph(line)
        parts.append(line)
    for title, build in TABLES:
        head, rows = build(s)
        if rows:
            report.heading(title)
            report.table(head, rows)
            parts += [f"### {title}", markdown(head, rows)]
        if build is openset_table:
            for line in trends(s):
                report.paragraph(line)
                parts.append(f"- {line}")
    for path, caption in FIGURES:
        if (s.out / path).exists():
            report.image(s.out / path, caption)
    report.write(s.out / "report.html")
    text = "\n\n".join(parts) if parts else "no results yet"
    (s.out / "results.md").write_text(text + "\n", encoding="utf-8")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cifar", required=True, help="the CIFAR-10 Parquet file (or cifar-10-batches-py folder)"
    )
    parser.add_argument("--out", type=Path, default=Path("runs/cifar10"))
    parser.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated, of {','.join(STEPS)}")
    parser.add_argument("--trials", type=int, default=1, help="ablation trials per fraction (default 1)")
    parser.add_argument(
        "--limit", type=int, default=2000, help="score at most N inputs of each set (default 2000)"
    )
    args = parser.parse_args()
    steps = tuple(x for x in args.steps.split(",") if x)
    unknown = [x for x in steps if x not in STEPS]
    if unknown:
        parser.error(f"unknown step {unknown[0]!r}; steps: {', '.join(STEPS)}")
    study = Study(args.cifar, args.out, args.trials, args.limit)
    for step in STEPS:
        if step in steps:
            STEP_FUNCTIONS[step](study)
    print(write_results(study))


if __name__ == "__main__":
    main()
