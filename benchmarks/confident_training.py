"""The confident classifier's cost: seconds per step and peak memory against plain training, side by side.

Plain training (Adam on cross-entropy) and the confident classifier (the same, plus a DCGAN's
discriminator and generator steps and the KL term on generated samples, arXiv 1711.09325) alternate
for ``--rounds`` rounds, each in a fresh process so that its peak resident memory is its own. Each
prints seconds per step; the script prints the ratio confident / plain per round and its median, and
the time the default budget (the model's own epochs over the full training split) would take at the
measured rate.

    python benchmarks/confident_training.py [--model mnist-cnn] [--data mnist] [--steps 150] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys

CHILD = """
import json, resource, sys, time
from au import data
from au.allocator import tune_malloc
from au.models import build_model, model_spec
from au.train import TrainConfig, fit
from au.generate.confident import ConfidentTrainer
from au.generate.confident_config import ConfidentConfig

model_name, spec, steps, confident = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
tune_malloc()
train, _ = data.load_train_test(spec)
config = TrainConfig(**model_spec(model_name).train_defaults).updated(epochs=1_000, max_steps=steps)
model = build_model(model_name, train.input_shape, train.num_classes, seed=0)
trainer = ConfidentTrainer(model, config, ConfidentConfig(), train.class_names) if confident else None
start = time.perf_counter()
fit(model, train, config, show_progress=False, trainer=trainer)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds_per_step": seconds / steps, "peak_mb": peak, "n_train": len(train),
                  "epochs": TrainConfig(**model_spec(model_name).train_defaults).epochs,
                  "batch_size": config.batch_size}))
"""


def measure(model: str, spec: str, steps: int, confident: bool) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, model, spec, str(steps), "1" if confident else "0"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mnist-cnn")
    parser.add_argument("--data", default="mnist")
    parser.add_argument("--steps", type=int, default=150, help="optimiser steps per timed run")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    ratios, runs = [], {"plain": [], "confident": []}
    print(f"{args.model} on {args.data}, {args.steps} steps per run, alternating")
    for r in range(args.rounds):
        plain = measure(args.model, args.data, args.steps, False)
        confident = measure(args.model, args.data, args.steps, True)
        runs["plain"].append(plain)
        runs["confident"].append(confident)
        ratios.append(confident["seconds_per_step"] / plain["seconds_per_step"])
        print(
            f"round {r + 1}: plain {plain['seconds_per_step'] * 1e3:.1f} ms/step ({plain['peak_mb']:.0f} MB peak), "
            f"confident {confident['seconds_per_step'] * 1e3:.1f} ms/step ({confident['peak_mb']:.0f} MB peak), "
            f"ratio {ratios[-1]:.2f}"
        )
    c = runs["confident"][-1]
    budget = (
        math.ceil(c["n_train"] * 0.9 / c["batch_size"]) * c["epochs"]
    )  # the default 10% validation carve-out
    per_step = statistics.median(x["seconds_per_step"] for x in runs["confident"])
    print(f"median ratio confident / plain: {statistics.median(ratios):.2f}")
    print(
        f"default budget ({c['epochs']} epochs, {budget:,} steps): confident about {budget * per_step / 60:.1f} min "
        f"of training at the median rate; peak memory {max(x['peak_mb'] for x in runs['confident']):.0f} MB"
    )


if __name__ == "__main__":
    main()
