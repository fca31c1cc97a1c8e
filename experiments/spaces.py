"""Is the network's activation space where coverage should be measured? kNN and Parzen in simpler spaces beside it.

For one trained run, ``au score`` is run once per feature space - raw pixels, HOG, bags of ORB and
of BRISK words (``--space``) - and once per network layer, each with the same detectors on the same
inputs (same seed, same limits), then ``au gold`` certifies each. The table compares, per space and
detector: misclassification AUROC (does the space predict which predictions are wrong?), AUROC
against each OOD set (novelty), and the coverage certified on the in-distribution stream at each
epsilon. Every step is a resumable ``au`` job under ``--out``.

    python experiments/spaces.py --run runs/mnist --out runs/spaces-mnist [--ood SPECS] [--layers fc1] [--limit 2000]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from au.cli import main as au

SPACES = ("pixels", "hog", "orb", "brisk")


def run(*argv: str) -> None:
    code = au(["--quiet", *argv])
    if code:
        raise SystemExit(f"au {argv[0]} exited {code}")


def compare(args: argparse.Namespace) -> list[tuple[str, Path]]:
    """Score and certify every space and layer; returns (space, scores directory) pairs."""
    done = []
    common = ["--run", str(args.run), "--detectors", args.detectors, "--val-size", "0", "--seed", "0"]
    common += ["--limit", str(args.limit), "--fit-limit", str(args.fit_limit)]
    if args.ood:
        common += ["--ood", args.ood]
    for space in (*args.layers.split(","), *SPACES):
        option = ["--space", space] if space in SPACES else ["--layer", space]
        scores = args.out / f"scores-{space}"
        run("score", *common, *option, "--out", str(scores))
        run(
            "gold",
            "--scores",
            str(scores),
            "--epsilon",
            args.epsilon,
            "--combo",
            "none",
            "--out",
            str(args.out / f"gold-{space}"),
        )
        done.append((space, scores))
    return done


def markdown(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def table(
    out: Path, done: list[tuple[str, Path]], epsilons: list[float]
) -> tuple[list[str], list[list[str]]]:
    """The header and one row per (space, feature detector)."""
    rows, sets = [], None
    for space, scores in done:
        m = json.loads((scores / "manifest.json").read_text())
        board = json.loads((out / f"gold-{space}" / "leaderboard.json").read_text())
        for name, d in m["detectors"].items():
            if d["consumes"] != "features":
                continue
            sets = sets or list(d["ood"])
            cov = {  # the mean over the check's splits: the first split alone is one noisy draw
                e["epsilon"]: e["coverage_mean"]
                for e in board["entries"]
                if e["stream"] == "in" and e["entry"] == f"{name}@{space}" and e["method"] == "ltt"
            }
            rows.append(
                [
                    space,
                    name,
                    f"{d['misclassification_auroc']:.4f}",
                    *(f"{d['ood'][s]['auroc']:.4f}" for s in sets),
                ]
                + [f"{cov.get(eps, float('nan')):.3f}" for eps in epsilons]
            )
    head = [
        "space",
        "detector",
        "misclassification AUROC",
        *sets,
        *(f"mean certified coverage @{e:g}" for e in epsilons),
    ]
    return head, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="an 'au train' run directory")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--ood", help="comma-separated OOD specs (default: au score's)")
    parser.add_argument("--layers", default="fc1", help="network layers to compare (default fc1)")
    parser.add_argument(
        "--detectors", default="knn,parzen_lsh", help="feature detectors (default knn,parzen_lsh)"
    )
    parser.add_argument("--limit", type=int, default=2000, help="inputs scored per set (default 2000)")
    parser.add_argument(
        "--fit-limit", type=int, default=10000, help="training examples fitted (default 10000)"
    )
    parser.add_argument("--epsilon", default="0.01,0.02,0.05")
    args = parser.parse_args()
    done = compare(args)
    text = markdown(*table(args.out, done, [float(e) for e in args.epsilon.split(",")]))
    (args.out / "spaces.md").write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
