"""AU's training loop against a bare PyTorch loop: same model, data, batch size and threads, one process.

The bare loop is what a researcher writes by hand: the whole training set converted to a float
tensor up front, ``randperm`` batches, Adam on cross-entropy. AU's :func:`au.train.fit` converts
uint8 batches on the fly, seeds its batch order, schedules the learning rate and records every
step's loss. The two alternate for ``--rounds`` rounds (timings on a small machine drift by tens
of percent between runs, so only side-by-side ratios mean anything); the script prints images per
second of each and the ratio AU / bare (target: at least 0.95).

    python benchmarks/train_throughput.py [--model mnist-cnn] [--data mnist] [--steps 150] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.nn import functional as F

from au import data
from au.allocator import tune_malloc
from au.models import build_model, model_spec
from au.train import TrainConfig, fit


def bare_loop(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, steps: int) -> float:
    """Plain PyTorch training for ``steps`` steps; returns seconds."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    start = time.perf_counter()
    perm = torch.randperm(len(x))
    for step in range(steps):
        idx = perm[(step * batch_size) % len(x) :][:batch_size]
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def au_loop(model: torch.nn.Module, train: data.ImageDataset, batch_size: int, steps: int) -> float:
    config = TrainConfig(epochs=1_000, max_steps=steps, batch_size=batch_size, lr=1e-3)
    start = time.perf_counter()
    fit(model, train, config, show_progress=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mnist-cnn")
    parser.add_argument("--data", default="mnist")
    parser.add_argument("--batch-size", type=int, help="default: the model's own training batch size")
    parser.add_argument("--steps", type=int, default=150, help="optimiser steps per timed run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--default-malloc", action="store_true", help="keep glibc's default thresholds")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not args.default_malloc:
        tune_malloc()  # as the au command does; applies to every method alike
    if args.batch_size is None:
        args.batch_size = model_spec(args.model).train_defaults.get("batch_size", 128)

    train = data.load(args.data, "train")
    n = min(len(train), args.steps * args.batch_size)
    train = train.subset(torch.arange(n).numpy())
    x = data.to_tensor(train.images)  # (n, C, H, W) float32, converted once for the bare loop
    y = torch.from_numpy(train.labels)
    print(
        f"{args.model} on {n:,} {args.data} images, batch {args.batch_size}, {args.steps} steps, "
        f"{args.threads} threads, torch {torch.__version__}"
    )

    def fresh() -> torch.nn.Module:
        return build_model(args.model, train.input_shape, train.num_classes, seed=0)

    bare_loop(fresh(), x, y, args.batch_size, 5)  # warm-up (allocator, oneDNN kernels)
    au_loop(fresh(), train, args.batch_size, 5)
    images = args.steps * args.batch_size
    ratios, bare_rates, au_rates = [], [], []
    for r in range(args.rounds):
        first_bare = r % 2 == 0
        timings = {}
        for which in ("bare", "au") if first_bare else ("au", "bare"):
            if which == "bare":
                timings[which] = bare_loop(fresh(), x, y, args.batch_size, args.steps)
            else:
                timings[which] = au_loop(fresh(), train, args.batch_size, args.steps)
        bare_rates.append(images / timings["bare"])
        au_rates.append(images / timings["au"])
        ratios.append(timings["bare"] / timings["au"])
        print(
            f"round {r + 1}: bare {bare_rates[-1]:8.0f} img/s   au {au_rates[-1]:8.0f} img/s   ratio {ratios[-1]:.3f}"
        )
    print(
        f"median: bare {statistics.median(bare_rates):.0f} img/s, au {statistics.median(au_rates):.0f} img/s, "
        f"throughput ratio au/bare = {statistics.median(ratios):.3f} (target >= 0.95)"
    )


if __name__ == "__main__":
    main()
