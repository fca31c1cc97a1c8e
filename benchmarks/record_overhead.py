"""Recording four pooled layers: ``au record`` against bare inference, captum and TorchLens, in one process.

Every method runs the same model over the same images at the same batch size and thread count:

* bare      - the forward pass alone (logits only), what any inference costs;
* au        - :func:`au.activations.record`: conv1, conv2, fc1, logits, average-pooled, float16,
              written to Parquet with a manifest (disk included);
* captum    - ``captum.attr.LayerActivation`` for the same layers, pooled and converted the same way,
              kept in memory (no disk);
* torchlens - ``torchlens.trace`` saving the same modules, pooled and converted the same way, in memory.

Methods alternate within each round (timings on a small machine drift by tens of percent between
runs, so only side-by-side ratios mean anything). Printed: seconds per pass over the data and the
median ratio to bare inference, at each batch size. Target for au: at most 1.10x (aim 1.05x).

At batch 256, conv2's output of mnist-cnn (256 x 64 x 24 x 24 float32, about 38 MB) is above
glibc's largest mmap threshold, so every forward pass maps and unmaps it and bare inference spends
much of its time in page faults; that inflates the denominator and hides overhead, hence batch 128.

    python benchmarks/record_overhead.py [--run RUN_DIR] [--batch-sizes 128,256] [--rounds 5] [--limit 10000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from au import data
from au.activations import RecordConfig, pool_output, record
from au.allocator import tune_malloc
from au.data import to_tensor
from au.models import build_model
from au.train import load_run

LAYERS = ("conv1", "conv2", "fc1", "logits")


def bare(model, images: np.ndarray, batch: int) -> None:
    with torch.inference_mode():
        for lo in range(0, len(images), batch):
            model(to_tensor(images[lo : lo + batch]))


def au_record(model, dataset, batch: int, scratch: Path) -> None:
    out = Path(tempfile.mkdtemp(dir=scratch))
    record(
        model,
        dataset,
        out,
        RecordConfig(layers=LAYERS, pool="avg", dtype="float16", batch_size=batch),
        show_progress=False,
    )


def _keep(outputs: list[torch.Tensor], store: list) -> None:
    store.append([pool_output(o, "avg").to(torch.float16).numpy() for o in outputs])


def captum_layers(model, images: np.ndarray, batch: int) -> None:
    from captum.attr import LayerActivation

    method = LayerActivation(model, [model.get_submodule(name) for name in LAYERS])
    store: list = []
    with torch.no_grad():
        for lo in range(0, len(images), batch):
            _keep(method.attribute(to_tensor(images[lo : lo + batch])), store)


def torchlens_layers(model, images: np.ndarray, batch: int) -> None:
    import torchlens as tl

    selector = tl.module(LAYERS[0])
    for name in LAYERS[1:]:
        selector = selector | tl.module(name)
    unwrap = tl.options.CaptureOptions(unwrap_when_done=True)
    store: list = []
    with torch.no_grad():
        for lo in range(0, len(images), batch):
            # unwrap afterwards: TorchLens otherwise leaves torch's functions wrapped, slowing every method after it
            trace = tl.trace(model, to_tensor(images[lo : lo + batch]), save=selector, capture=unwrap)
            outs = []
            for name in LAYERS:
                try:
                    outs.append(trace[name].out)
                except tl.AmbiguousOpLookupError:  # "logits" also matches the model's output node
                    outs.append(trace["output_1"].out)
            _keep(outs, store)
            trace.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a trained run (default: a freshly initialised mnist-cnn)")
    parser.add_argument("--data", default="mnist")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=10000)
    parser.add_argument("--batch-sizes", default="128,256")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--skip", default="", help="comma-separated methods to skip (captum, torchlens)")
    parser.add_argument("--default-malloc", action="store_true", help="keep glibc's default thresholds")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not args.default_malloc:
        tune_malloc()  # as the au command does; applies to every method alike

    model = load_run(args.run).model if args.run else build_model("mnist-cnn", seed=0).eval()
    dataset = data.load(args.data, args.split)
    dataset = dataset.subset(np.arange(min(args.limit, len(dataset))))
    images = dataset.images
    skip = set(filter(None, args.skip.split(",")))
    print(
        f"mnist-cnn, {len(images):,} {args.data} {args.split} images, layers {', '.join(LAYERS)} (avg-pooled, "
        f"float16), {args.threads} threads, torch {torch.__version__}"
    )
    with tempfile.TemporaryDirectory() as scratch:
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            methods = {
                "bare": lambda b=batch: bare(model, images, b),
                "au": lambda b=batch: au_record(model, dataset, b, Path(scratch)),
                "captum": lambda b=batch: captum_layers(model, images, b),
                "torchlens": lambda b=batch: torchlens_layers(model, images, b),
            }
            methods = {k: v for k, v in methods.items() if k not in skip}
            for fn in methods.values():  # warm-up: allocator, oneDNN kernels, imports
                fn()
            times: dict[str, list[float]] = {k: [] for k in methods}
            order = list(methods)
            for r in range(args.rounds):
                for name in order if r % 2 == 0 else order[::-1]:
                    start = time.perf_counter()
                    methods[name]()
                    times[name].append(time.perf_counter() - start)
            base = statistics.median(times["bare"])
            print(f"\nbatch {batch}:")
            for name in methods:
                ratios = [t / b for t, b in zip(times[name], times["bare"], strict=True)]
                print(
                    f"  {name:<10} {statistics.median(times[name]):7.3f} s   ratio to bare {statistics.median(ratios):.3f}"
                )
            print(f"  (bare inference: {len(images) / base:,.0f} images/s)")


if __name__ == "__main__":
    main()
