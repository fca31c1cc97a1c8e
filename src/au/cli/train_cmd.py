"""``au train``: train one model on a keep-fraction of a dataset into a run directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from au.cli.options import add_augment, fraction, nonneg_int, positive_float, positive_int, unit_fraction
from au.generate.confident_config import ConfidentConfig
from au.train.config import TrainConfig


def register(sub: argparse._SubParsersAction, help_text: str) -> None:
    p = sub.add_parser(
        "train",
        help=help_text,
        description="Train a model on a stratified, seeded subset of a dataset's training split, validate on a "
        "carve-out of that subset, test on the test split, and write a run directory (weights as safetensors, "
        "manifest.json, per_class.csv, history.json). Re-running the same command resumes or skips.",
    )
    p.add_argument("--model", required=True, help="registered model (see 'au models')")
    p.add_argument("--data", required=True, help="dataset spec, e.g. mnist, cifar10:PATH (see 'au datasets')")
    p.add_argument("--out", required=True, type=Path, help="run directory to write")
    p.add_argument(
        "--keep",
        type=fraction,
        default=TrainConfig.keep,
        help=f"share of the training split to use, in (0, 1] (default {TrainConfig.keep:g})",
    )
    p.add_argument(
        "--seed",
        type=nonneg_int,
        default=TrainConfig.seed,
        help=f"seeds subset, weights, batch order and dropout (default {TrainConfig.seed})",
    )
    p.add_argument("--epochs", type=positive_int, help="passes over the kept data (default: the model's own)")
    p.add_argument("--max-steps", type=positive_int, help="stop after this many optimiser steps")
    p.add_argument("--batch-size", type=positive_int, help="examples per step (default: the model's own)")
    p.add_argument("--lr", type=positive_float, help="Adam's peak learning rate (default: the model's own)")
    p.add_argument(
        "--val-fraction",
        type=unit_fraction,
        help=f"share of the kept data held out for validation, in [0, 1) (default {TrainConfig.val_fraction:g})",
    )
    add_augment(p)
    g = p.add_argument_group(
        "confident classifier (Lee et al. 2018, arXiv 1711.09325)",
        "train the classifier jointly with a DCGAN whose samples it must find uninformative; the run also holds "
        "the generator, the discriminator and generated samples (a dataset: generated:RUN)",
    )
    g.add_argument("--confident", action="store_true", help="train the confident classifier with its GAN")
    g.add_argument(
        "--beta",
        type=positive_float,
        help=f"weight of the KL term, > 0 (default {ConfidentConfig.beta:g}; needs --confident)",
    )
    g.add_argument(
        "--gan-steps",
        type=positive_int,
        help=f"discriminator and generator updates per classifier step (default {ConfidentConfig.gan_steps}; "
        "needs --confident)",
    )
    g.add_argument(
        "--samples",
        type=positive_int,
        help=f"generated samples written at the end (default {ConfidentConfig.samples}; needs --confident)",
    )
    p.set_defaults(handler=run, parser=p)


def run(args: argparse.Namespace) -> int:
    from au import data
    from au.models import build_model, model_spec
    from au.train.train_job import train_run

    spec = model_spec(args.model)
    config = TrainConfig(**spec.train_defaults).updated(
        keep=args.keep,
        seed=args.seed,
        epochs=args.epochs,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        lr=args.lr,
        val_fraction=args.val_fraction,
        augment=args.augment,
    )
    confident = _confident(args)
    train, test = data.load_train_test(args.data)
    model = build_model(args.model, train.input_shape, train.num_classes, seed=args.seed)
    trainer = None
    if confident is not None:
        from au.generate.confident import ConfidentTrainer

        trainer = ConfidentTrainer(model, config, confident, train.class_names)
    result = train_run(
        model, train, test, config, args.out, model_name=args.model, data_spec=args.data, trainer=trainer
    )
    m = result.manifest
    print(
        f"{args.out}: test accuracy {m['metrics']['test_accuracy']:.4f} on {m['data']['n_test']:,} images "
        f"(train {m['metrics']['train_accuracy']:.4f}, {m['data']['n_train']:,} training examples, "
        f"{m['training']['steps']:,} steps)"
    )
    return 0


def _confident(args: argparse.Namespace) -> ConfidentConfig | None:
    """The confident classifier's settings, or None; its options without --confident are a usage error."""
    given = {"beta": args.beta, "gan_steps": args.gan_steps, "samples": args.samples}
    if not args.confident:
        named = [f"--{k.replace('_', '-')}" for k, v in given.items() if v is not None]
        if named:
            args.parser.error(f"{named[0]} needs --confident")
        return None
    return ConfidentConfig(**{k: v for k, v in given.items() if v is not None})
