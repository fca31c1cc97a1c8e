"""``au record``: record a trained model's layer activations to a Parquet directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from au.activations.config import DTYPES, POOLS, RecordConfig
from au.cli.options import add_engine, check_engine, positive_int


def register(sub: argparse._SubParsersAction, help_text: str) -> None:
    p = sub.add_parser(
        "record",
        help=help_text,
        description="Run a trained model over a dataset split and write one row per example - id, label, "
        "prediction, logits and one column per layer - to Parquet part files in OUT, with manifest.json last. "
        "Streams batch by batch; a killed recording re-run with the same arguments continues where it stopped.",
    )
    c = RecordConfig
    p.add_argument("--run", required=True, type=Path, help="run directory of 'au train'")
    p.add_argument("--data", help="dataset spec (default: the run's own dataset)")
    p.add_argument(
        "--images", type=Path, help="with --engine spark: the images table to record (au export writes one)"
    )
    p.add_argument("--split", default="test", help="train, test or all (default test)")
    p.add_argument(
        "--layers", default=c.layers, help=f"comma-separated layer names, or 'all' (default {c.layers})"
    )
    p.add_argument(
        "--pool", choices=POOLS, default=c.pool, help=f"reduce conv maps over space (default {c.pool})"
    )
    p.add_argument(
        "--dtype", choices=DTYPES, default=c.dtype, help=f"stored dtype of layer columns (default {c.dtype})"
    )
    p.add_argument("--limit", type=positive_int, help="record only the first N examples")
    p.add_argument("--batch-size", type=positive_int, default=c.batch_size, help=f"default {c.batch_size}")
    p.add_argument("--out", required=True, type=Path, help="recording directory")
    add_engine(p, "the recording")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from au import data
    from au.activations.record_job import record
    from au.train.rundir import load_run

    master = check_engine(args, {"--images": args.images}, {"--data": args.data})
    if master is not None and args.images is None:
        args.parser.error(
            "--engine spark records an images table: give --images TABLE (au export writes one)"
        )
    config = RecordConfig(
        layers=args.layers, pool=args.pool, dtype=args.dtype, batch_size=args.batch_size, limit=args.limit
    )
    trained = load_run(args.run)
    who = {
        "model_name": trained.manifest["model"],
        "weights_sha256": trained.manifest["weights"]["sha256"],
        "run_dir": str(args.run),
    }
    if master is not None:
        from au.engines.spark.record import record_spark

        manifest = record_spark(
            trained.model, args.images, args.out, config, split=args.split, master=master, **who
        )
    else:
        dataset = data.load(args.data or trained.data_spec, args.split)
        manifest = record(trained.model, dataset, args.out, config, **who)
    layers = ", ".join(f"{layer['name']} ({layer['features']})" for layer in manifest["layers"])
    print(f"{args.out}: {manifest['rows']:,} rows, {len(manifest['parts'])} part(s); layers {layers}")
    return 0
