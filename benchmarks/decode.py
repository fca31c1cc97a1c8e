"""``au decode`` on a real run: decoders from mnist-cnn's layers back to MNIST digits, against inversion.

Steps, each an AU job (a re-run with the same --work reuses what is finished):

1. ``au train --model mnist-cnn --data mnist --max-steps STEPS`` (a briefly trained run);
2. ``au record`` of the first TRAIN training images and TEST test images: ``fc1`` and ``conv2``
   average-pooled over space (vectors of 128 and 64), and - unless --no-map - ``pool`` whole, a
   (64, 12, 12) map, on fewer training images (MAP_TRAIN: 9,216 values an image);
3. :func:`au.generate.decode_job.decode_run` with :class:`DecodeConfig`'s defaults (2,000 Adam steps
   of 64 per decoder, 16 held-out targets inverted by 300 steps of Mahendran & Vedaldi's objective).

Printed per layer: the decoder's training seconds, held-out reconstruction MSE and PSNR beside the
mean training image's, the classifier's accuracy on decoded held-out images beside the originals',
and decoder against inversion on the same 16 targets: relative feature error, pixel MSE, agreement
with the original's prediction, and seconds per image (with their ratio). Wall times depend on the
machine and on what else runs on it; the errors and accuracies do not (seeded, CPU).

    python benchmarks/decode.py [--work DIR] [--threads 2] [--train-steps 300] [--no-map]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from au.cli import main as au
from au.generate.decode_config import DecodeConfig
from au.generate.decode_job import decode_run
from au.train.rundir import load_run


def prepare(work: Path, train_steps: int, train: int, test: int, map_train: int, with_map: bool) -> dict:
    """Train the run and record its layers (each step skipped when already finished); return the paths."""
    run = work / "run"
    assert au(["--quiet", "train", "--model", "mnist-cnn", "--data", "mnist", "--max-steps", str(train_steps),
               "--out", str(run)]) == 0  # fmt: skip
    paths = {"run": run}
    plans = [("vectors", "fc1,conv2", "avg", train)] + (
        [("map", "pool", "none", map_train)] if with_map else []
    )
    for name, layers, pool, limit in plans:
        for split, rows in (("train", limit), ("test", test)):
            out = work / f"acts-{name}-{split}"
            args = ["--quiet", "record", "--run", str(run), "--split", split, "--layers", layers]
            assert au([*args, "--pool", pool, "--limit", str(rows), "--out", str(out)]) == 0
            paths[f"{name}-{split}"] = out
    return paths


def print_layers(manifest: dict, seconds: float) -> None:
    print(
        f"\n  decode job: {seconds:.0f} s wall, {manifest['n_train']:,} training rows, {manifest['n_test']:,} held out"
    )
    print(f"  {'layer':<7} {'input':<14} {'train s':>7} {'MSE':>7} {'baseline':>8} {'PSNR':>5} {'base':>5} "
          f"{'acc dec':>7} {'acc orig':>8}")  # fmt: skip
    for s in manifest["layers"]:
        shape = "x".join(map(str, s["shape"]))
        print(
            f"  {s['layer']:<7} {s['input'] + ' ' + shape:<14} {s['train_seconds']:7.1f} {s['test_mse']:7.4f} "
            f"{s['baseline_mse']:8.4f} {s['test_psnr']:5.1f} {s['baseline_psnr']:5.1f} "
            f"{s['decoded_accuracy']:7.4f} {s['original_accuracy']:8.4f}"
        )
    print(f"\n  {'layer':<7} {'method':<9} {'feat err':>8} {'pix MSE':>8} {'agree':>6} {'s / image':>10}")
    for s in manifest["layers"]:
        for method in ("decoder", "inversion"):
            print(
                f"  {s['layer']:<7} {method:<9} {s[f'{method}_feature_error']:8.4f} {s[f'{method}_mse']:8.4f} "
                f"{s[f'{method}_agreement']:6.3f} {s[f'{method}_seconds_per_image']:10.5f}"
            )
        ratio = s["inversion_seconds_per_image"] / s["decoder_seconds_per_image"]
        print(f"  {'':<7} inversion / decoder time per image: {ratio:,.0f}x  "
              f"(inversion started at feature error {s['inversion_start_error']:.3f})")  # fmt: skip
    for s in manifest["layers"]:
        print(
            f"  {s['layer']:<7} density draws: high log p {s['high_density_target_log_density']:.1f} "
            f"(decoded {s['high_density_decoded_log_density']:.1f}), low {s['low_density_target_log_density']:.1f} "
            f"(decoded {s['low_density_decoded_log_density']:.1f}); interpolation prediction changes "
            f"{s['interpolation_changes']:.2f} per line"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="working directory (default: a new temporary one)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-steps", type=int, default=300, help="mnist-cnn training steps")
    parser.add_argument("--train", type=int, default=20000, help="training images recorded (vectors)")
    parser.add_argument("--map-train", type=int, default=5000, help="training images recorded (map)")
    parser.add_argument("--test", type=int, default=1000, help="test images recorded and decoded")
    parser.add_argument("--no-map", action="store_true", help="skip the whole-map layer")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work = args.work or Path(tempfile.mkdtemp(prefix="au-decode-"))
    started = time.perf_counter()
    paths = prepare(work, args.train_steps, args.train, args.test, args.map_train, not args.no_map)
    trained = load_run(paths["run"])
    print(f"mnist-cnn, {args.train_steps} steps: test accuracy {trained.manifest['metrics']['test_accuracy']:.4f}; "
          f"{torch.get_num_threads()} threads; prepared in {time.perf_counter() - started:.0f} s")  # fmt: skip
    who = {
        "model_name": "mnist-cnn",
        "weights_sha256": trained.manifest["weights"]["sha256"],
        "run_dir": "run",
    }
    jobs = [("vectors", ("fc1", "conv2"))] + ([("map", ("pool",))] if not args.no_map else [])
    for name, layers in jobs:
        config = DecodeConfig(layers=layers, test_limit=args.test)
        begun = time.perf_counter()
        acts = (paths[f"{name}-train"], paths[f"{name}-test"])
        manifest = decode_run(trained.model, *acts, work / f"decode-{name}", config, **who)
        print_layers(manifest, time.perf_counter() - begun)
    print(f"\ntotal {time.perf_counter() - started:.0f} s; outputs in the working directory's decode-*/")


if __name__ == "__main__":
    main()
