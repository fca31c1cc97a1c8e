"""``au decode``: train decoders from recorded layer activations back to images; decode, sample and invert."""

from __future__ import annotations

import argparse
from pathlib import Path

from au.cli.options import names, nonneg_float, nonneg_int, positive_float, positive_int
from au.generate.decode_config import LOSSES, DecodeConfig


def _at_least_two(text: str) -> int:
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"{text} is less than 2 (an interpolation has both ends)")
    return value


def _layers(text: str) -> tuple[str, ...]:
    layers = names(text)
    if not layers:
        raise argparse.ArgumentTypeError("expected comma-separated layer names, e.g. fc1,conv2")
    return layers


def register(sub: argparse._SubParsersAction, help_text: str) -> None:
    p = sub.add_parser(
        "decode",
        help=help_text,
        description="For each layer, train a decoder from the layer's recorded activations (au record of the run's "
        "training split) back to the input image, then decode held-out activations (reconstruction error beside the "
        "mean training image's, classifier accuracy on decoded images beside the originals'), draws from the "
        "parzen density's high- and low-density regions, and interpolations between classes; invert some held-out "
        "activations by optimisation (Mahendran & Vedaldi 2015) for comparison. Writes decoded.parquet, "
        "decoders/<layer>.safetensors, PNG grids and report.html.",
    )
    c = DecodeConfig
    p.add_argument("--run", required=True, type=Path, help="run directory of 'au train'")
    p.add_argument(
        "--acts", required=True, type=Path, help="recording of the run's training split (au record)"
    )
    p.add_argument("--test-acts", required=True, type=Path, help="recording of held-out data (au record)")
    p.add_argument(
        "--layers", required=True, type=_layers, help="comma-separated recorded layers, e.g. fc1,conv2"
    )
    p.add_argument("--out", required=True, type=Path, help="output directory")
    g = p.add_argument_group("decoders")
    g.add_argument(
        "--steps", type=positive_int, default=c.steps, help=f"Adam steps per decoder (default {c.steps})"
    )
    g.add_argument("--batch-size", type=positive_int, default=c.batch_size, help=f"default {c.batch_size}")
    g.add_argument("--lr", type=positive_float, default=c.lr, help=f"learning rate (default {c.lr:g})")
    g.add_argument("--loss", choices=LOSSES, default=c.loss, help=f"reconstruction loss (default {c.loss})")
    g.add_argument(
        "--train-limit",
        type=positive_int,
        default=c.train_limit,
        help=f"training rows used (default {c.train_limit})",
    )
    g.add_argument(
        "--test-limit",
        type=positive_int,
        default=c.test_limit,
        help=f"held-out rows decoded (default {c.test_limit})",
    )
    g.add_argument("--seed", type=nonneg_int, default=c.seed, help=f"default {c.seed}")
    g = p.add_argument_group("sampling")
    g.add_argument(
        "--samples",
        type=positive_int,
        default=c.samples,
        help=f"draws per density region (default {c.samples})",
    )
    g.add_argument(
        "--pairs", type=nonneg_int, default=c.pairs, help=f"interpolated pairs (default {c.pairs})"
    )
    g.add_argument(
        "--interpolation-steps",
        type=_at_least_two,
        default=c.interpolation_steps,
        help=f"points per interpolation, ends included (default {c.interpolation_steps})",
    )
    g = p.add_argument_group("inversion by optimisation")
    g.add_argument(
        "--invert", type=nonneg_int, default=c.invert, help=f"held-out targets inverted (default {c.invert})"
    )
    g.add_argument(
        "--invert-steps",
        type=positive_int,
        default=c.invert_steps,
        help=f"Adam steps (default {c.invert_steps})",
    )
    g.add_argument(
        "--tv-weight",
        type=nonneg_float,
        default=c.tv_weight,
        help=f"total variation weight (default {c.tv_weight:g})",
    )
    g.add_argument(
        "--alpha-weight", type=nonneg_float, default=c.alpha_weight, help="alpha-norm weight (default 0: off)"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from au.cli import text_table
    from au.generate.decode_job import decode_run
    from au.train.rundir import load_run

    config = DecodeConfig(
        layers=args.layers,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        loss=args.loss,
        train_limit=args.train_limit,
        test_limit=args.test_limit,
        samples=args.samples,
        pairs=args.pairs,
        interpolation_steps=args.interpolation_steps,
        invert=args.invert,
        invert_steps=args.invert_steps,
        tv_weight=args.tv_weight,
        alpha_weight=args.alpha_weight,
        seed=args.seed,
    )
    trained = load_run(args.run)
    m = decode_run(
        trained.model,
        args.acts,
        args.test_acts,
        args.out,
        config,
        model_name=trained.manifest["model"],
        weights_sha256=trained.manifest["weights"]["sha256"],
        run_dir=str(args.run),
    )
    header = [
        "layer",
        "MSE",
        "baseline",
        "PSNR",
        "acc decoded",
        "acc original",
        "inversion s/img",
        "decoder s/img",
    ]
    rows = [
        [
            s["layer"],
            f"{s['test_mse']:.4f}",
            f"{s['baseline_mse']:.4f}",
            f"{s['test_psnr']:.1f}",
            _share(s["decoded_accuracy"]),
            _share(s["original_accuracy"]),
            f"{s['inversion_seconds_per_image']:.3f}" if s.get("inverted") else "-",
            f"{s['decoder_seconds_per_image']:.5f}" if s.get("inverted") else "-",
        ]
        for s in m["layers"]
    ]
    print(f"{args.out}  ({m['n_test']:,} held-out images decoded per layer, {m['rows']:,} rows)")
    text_table.print_table(header, rows, left=(0,))
    return 0


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
