"""The CIFAR-10 study: AU's whole pipeline on `alexnet-cifar`, every detector at two layers against the colour OOD
sets, the certificates, and the open-set (near-OOD) protocol.

Each step is an ``au`` command run through the CLI's own entry point, into its own directory under
``--out``; every command is a resumable job, so re-running the script continues where it stopped and
skips what is finished. The steps, in order (``--steps`` picks some):

    train     au train --model alexnet-cifar --data cifar10:FILE            (crop-flip augmentation)
    score     au score at fc1 and at conv5 (average-pooled), every detector, the colour OOD sets
    gold      au gold over both layers, mixed stream of all OOD sets
    openset   train on classes 0-5, score with classes 6-9 as the OOD set (near-OOD)
    ablate    au ablate --fractions 0.01,...,1 (--trials), then au curve
    explain   au explain --select wrong, au perturb at fc1

At the end it prints the results table (AUROC per detector, layer and OOD set, misclassification
AUROC, certified coverage at epsilon 0.02 and 0.05) and writes it to ``OUT/results.md``.

    python experiments/cifar10.py --cifar ../shared/data/cifar10-jpeg.parquet --out runs/cifar10 [--steps train,score,gold]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from au.cli import main as au

COLOUR_OOD = (
    "mnist:size=32x32:channels=3",
    "fashion-mnist:size=32x32:channels=3",
    "noise-gaussian:n=10000:shape=32x32x3",
    "noise-uniform:n=10000:shape=32x32x3",
    "photo-patches:n=10000",
)
LAYERS = ("fc1", "conv5")
STEPS = ("train", "score", "gold", "openset", "ablate", "explain")


def run(*argv: str) -> None:
    code = au(["--quiet", *argv])
    if code:
        raise SystemExit(f"au {argv[0]} exited {code}")


def study(cifar: str, out: Path, steps: tuple[str, ...], trials: int, limit: int | None) -> None:
    data, run_dir = f"cifar10:{cifar}", out / "train"
    scores = [out / f"scores-{layer}" for layer in LAYERS]
    extra = ["--limit", str(limit)] if limit else []
    if "train" in steps:
        run("train", "--model", "alexnet-cifar", "--data", data, "--out", str(run_dir))
    if "score" in steps:
        for layer, d in zip(LAYERS, scores, strict=True):
            run(
                "score",
                "--run",
                str(run_dir),
                "--ood",
                ",".join(COLOUR_OOD),
                "--layer",
                layer,
                "--out",
                str(d),
                *extra,
            )
    if "gold" in steps:
        run(
            "gold",
            "--scores",
            ",".join(map(str, scores)),
            "--mixed",
            "all",
            "--epsilon",
            "0.02,0.05",
            "--out",
            str(out / "gold"),
        )
    if "openset" in steps:
        known, unknown = f"{data}:classes=0-5", f"{data}:classes=6-9"
        run("train", "--model", "alexnet-cifar", "--data", known, "--out", str(out / "train-openset"))
        run(
            "score",
            "--run",
            str(out / "train-openset"),
            "--ood",
            unknown,
            "--out",
            str(out / "scores-openset"),
            *extra,
        )
    if "ablate" in steps:
        fractions = "0.01,0.02,0.05,0.1,0.2,0.5,1"
        run(
            "ablate",
            "--model",
            "alexnet-cifar",
            "--data",
            data,
            "--fractions",
            fractions,
            "--trials",
            str(trials),
            "--out",
            str(out / "ablate"),
        )
        run("curve", str(out / "ablate"))
    if "explain" in steps:
        run(
            "explain",
            "--run",
            str(run_dir),
            "--select",
            "wrong",
            "--limit",
            "8",
            "--out",
            str(out / "explain"),
        )
        run("perturb", "--run", str(run_dir), "--layer", "fc1", "--out", str(out / "perturb"))


def results(out: Path) -> str:
    """The results table as Markdown: per detector and layer, AUROC per OOD set, misclassification AUROC, and
    the certified coverage of the in-distribution stream at epsilon 0.02 and 0.05."""
    rows, header = [], None
    board = (
        json.loads((out / "gold" / "leaderboard.json").read_text())
        if (out / "gold" / "leaderboard.json").exists()
        else None
    )
    for layer in LAYERS:
        manifest_path = out / f"scores-{layer}" / "manifest.json"
        if not manifest_path.exists():
            continue
        m = json.loads(manifest_path.read_text())
        for name, d in m["detectors"].items():
            sets = list(d["ood"])
            header = header or sets
            cov = {}
            for e in board["entries"] if board else []:
                if e["stream"] == "in" and e["entry"] in (name, f"{name}@{layer}") and e["method"] == "ltt":
                    cov[e["epsilon"]] = e["coverage"]
            rows.append(
                [
                    name,
                    layer,
                    *(f"{d['ood'][s]['auroc']:.4f}" for s in sets),
                    f"{d['misclassification_auroc']:.4f}",
                ]
                + [f"{cov[e]:.3f}" if e in cov else "" for e in (0.02, 0.05)]
            )
    if header is None:
        return "no scores yet"
    head = ["detector", "layer", *header, "misclassification AUROC", "coverage @0.02", "coverage @0.05"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cifar", required=True, help="the CIFAR-10 Parquet file (or cifar-10-batches-py folder)"
    )
    parser.add_argument("--out", type=Path, default=Path("runs/cifar10"))
    parser.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated, of {','.join(STEPS)}")
    parser.add_argument("--trials", type=int, default=1, help="ablation trials per fraction (default 1)")
    parser.add_argument("--limit", type=int, help="score at most N inputs of each set")
    args = parser.parse_args()
    steps = tuple(s for s in args.steps.split(",") if s)
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        parser.error(f"unknown step {unknown[0]!r}; steps: {', '.join(STEPS)}")
    study(args.cifar, args.out, steps, args.trials, args.limit)
    table = results(args.out)
    (args.out / "results.md").write_text(table + "\n", encoding="utf-8")
    print(table)


if __name__ == "__main__":
    main()
