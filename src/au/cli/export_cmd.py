"""``au export``: write one split of a dataset as an images table, a Parquet file of PNG images."""

from __future__ import annotations

import argparse
from pathlib import Path

from au.cli.options import positive_int


def register(sub: argparse._SubParsersAction, help_text: str) -> None:
    p = sub.add_parser(
        "export",
        help=help_text,
        description="Write one split of a dataset as an images table: one Parquet file with a row per example - "
        "example_id, split, label, label_name and the image as PNG (lossless) - in row groups a Spark reader "
        "splits the file by, and the dataset spec, split, image shape, class names and fingerprint in its footer "
        "(key au.images). Read it back with --data parquet:OUT. The file is renamed into place only when "
        "complete; re-running the same export does nothing, and any other file at OUT is refused untouched.",
    )
    p.add_argument(
        "--data", required=True, help="dataset spec, e.g. mnist or noise-uniform:n=50 (see 'au datasets')"
    )
    p.add_argument("--split", required=True, help="train, test or all")
    p.add_argument("--out", required=True, type=Path, help="the Parquet file to write, e.g. images.parquet")
    p.add_argument("--limit", type=positive_int, help="export only the first N examples")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from au import data
    from au.data.export_job import export

    dataset = data.load(args.data, args.split)
    metadata = export(dataset, args.out, limit=args.limit)
    shape = "x".join(str(s) for s in metadata["shape"])
    print(f"{args.out}: {metadata['rows']:,} rows, images {shape} (H x W x C)")
    return 0
