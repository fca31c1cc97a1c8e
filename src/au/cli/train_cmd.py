"""``au train``: train one model on a keep-fraction of a dataset into a run directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from au import data
from au.cli.options import fraction, positive_int
from au.models import MODELS, build_model, model_spec
from au.train import TrainConfig, train_run


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model on a stratified, seeded keep-fraction of a dataset",
        description="Train a model on a stratified, seeded subset of a dataset's training split, validate on a "
        "carve-out of that subset, test on the test split, and write a run directory (weights as safetensors, "
        "manifest.json, per_class.csv, history.json). Re-running the same command resumes or skips.",
    )
    p.add_argument("--model", required=True, help=f"registered model: {', '.join(MODELS)}")
    p.add_argument("--data", required=True, help="dataset spec, e.g. mnist, cifar10:PATH (see 'au datasets')")
    p.add_argument("--out", required=True, type=Path, help="run directory to write")
    p.add_argument(
        "--keep", type=fraction, default=1.0, help="share of the training split to use, in (0, 1] (default 1)"
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seeds subset, weights, batch order and dropout (default 0)"
    )
    p.add_argument("--epochs", type=positive_int, help="passes over the kept data (default: the model's own)")
    p.add_argument("--max-steps", type=positive_int, help="stop after this many optimiser steps")
    p.add_argument("--batch-size", type=positive_int, help="examples per step (default: the model's own)")
    p.add_argument("--lr", type=float, help="Adam's peak learning rate (default: the model's own)")
    p.add_argument(
        "--val-fraction", type=float, help="share of the kept data held out for validation (default 0.1)"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    spec = model_spec(args.model)
    config = TrainConfig(**spec.train_defaults).updated(
        keep=args.keep,
        seed=args.seed,
        epochs=args.epochs,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        lr=args.lr,
        val_fraction=args.val_fraction,
    )
    train, test = data.load_train_test(args.data)
    model = build_model(args.model, train.input_shape, train.num_classes, seed=args.seed)
    result = train_run(model, train, test, config, args.out, model_name=args.model, data_spec=args.data)
    m = result.manifest["metrics"]
    n_test = result.manifest["data"]["n_test"]
    print(
        f"{args.out}: test accuracy {m['test_accuracy']:.4f} on {n_test:,} images "
        f"(train {m['train_accuracy']:.4f}, {result.manifest['data']['n_train']:,} training examples, "
        f"{result.manifest['training']['steps']:,} steps)"
    )
    return 0
