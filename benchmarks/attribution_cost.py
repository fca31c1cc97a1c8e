"""What each attribution method of ``au explain`` costs per image, relative to one forward pass, in one process.

Every method runs the same model over the same images at the same batch size and thread count:

* forward     - the forward pass alone (``torch.inference_mode``, eval mode), what any inference costs;
* fwd+bwd     - a forward pass and the gradient of each image's target logit w.r.t. the input
                (plain ``torch.autograd.grad``), what a gradient method inherently costs;
* each method - :func:`au.explain.methods.attribute` with that method alone, at ``ExplainConfig``'s
                defaults (the per-call model checks included; Integrated Gradients and SmoothGrad
                at the printed number of steps and samples).

The images are random uint8 (``numpy.random.default_rng(0)``) of each model's input shape, the
targets the model's own predictions, and the weights freshly initialised: the cost of a method does
not depend on training, so no dataset and no trained run are needed.

Methods alternate within each round, the order reversed every other round (timings on a small
machine drift by tens of percent between runs, so only side-by-side ratios mean anything). Printed
per (model, method): the median milliseconds per image, and the medians of the per-round ratios to
the forward pass and to forward+backward of that same round.

    python benchmarks/attribution_cost.py [--images 16] [--repeats 5] [--threads T] [--models mnist-cnn,alexnet-cifar]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch

from au.data.dataset import to_tensor
from au.explain.config import METHODS, ExplainConfig
from au.explain.methods import attribute
from au.models import build_model
from au.models.registry import model_spec

MODELS = ("mnist-cnn", "alexnet-cifar")


def forward(model, images: np.ndarray, batch: int) -> None:
    with torch.inference_mode():
        for lo in range(0, len(images), batch):
            model(to_tensor(images[lo : lo + batch]))


def forward_backward(model, images: np.ndarray, targets: torch.Tensor, batch: int) -> None:
    for lo in range(0, len(images), batch):
        x = to_tensor(images[lo : lo + batch]).requires_grad_()
        logits = model(x)
        picked = logits.gather(1, targets[lo : lo + batch, None]).sum()
        torch.autograd.grad(picked, x)


def predictions(model, images: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return model(to_tensor(images)).argmax(1).numpy()


def candidates(model, images: np.ndarray, config: ExplainConfig) -> dict[str, Callable[[], object]]:
    """The two references and one call of :func:`attribute` per method, each over all ``images``."""
    targets = predictions(model, images)
    t = torch.as_tensor(targets, dtype=torch.int64)
    batch = config.batch_size
    runs: dict[str, Callable[[], object]] = {
        "forward": lambda: forward(model, images, batch),
        "fwd+bwd": lambda: forward_backward(model, images, t, batch),
    }
    for method in METHODS:
        runs[method] = lambda m=method: attribute(model, images, targets, [m], config)
    return runs


def measure(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Seconds of each run in each round: one warm-up round, then ``repeats`` rounds, alternating."""
    for fn in runs.values():  # warm-up: allocator, oneDNN kernels, captum imports
        fn()
    times: dict[str, list[float]] = {name: [] for name in runs}
    order = list(runs)
    for r in range(repeats):
        for name in order if r % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - start)
    return times


def ratio(times: list[float], base: list[float]) -> float:
    return statistics.median(t / b for t, b in zip(times, base, strict=True))


def report(name: str, times: dict[str, list[float]], n: int) -> None:
    print(f"\n{name}:")
    print(f"  {'method':<22} {'ms/image':>9} {'x forward':>10} {'x fwd+bwd':>10}")
    for method, values in times.items():
        ms = 1000 * statistics.median(values) / n
        fwd = ratio(values, times["forward"])
        fb = ratio(values, times["fwd+bwd"])
        print(f"  {method:<22} {ms:9.3f} {fwd:10.1f} {fb:10.2f}")
    per_second = n / statistics.median(times["forward"])
    print(f"  (forward pass: {per_second:,.0f} images/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated registry names")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # captum says so on every call; it sets requires_grad itself, as it should
    warnings.filterwarnings("ignore", message="Input Tensor 0 did not already require gradients")
    config = ExplainConfig()
    print(
        f"{args.images} random images per model, batch {config.batch_size}, ig_steps {config.ig_steps}, "
        f"smoothgrad_samples {config.smoothgrad_samples}, median of {args.repeats} rounds, "
        f"{args.threads} threads, torch {torch.__version__}"
    )
    for name in filter(None, args.models.split(",")):
        c, h, w = model_spec(name).input_shape
        images = np.random.default_rng(0).integers(0, 256, (args.images, h, w, c), dtype=np.uint8)
        model = build_model(name, (c, h, w), 10, seed=0).eval()
        report(name, measure(candidates(model, images, config), args.repeats), args.images)


if __name__ == "__main__":
    main()
