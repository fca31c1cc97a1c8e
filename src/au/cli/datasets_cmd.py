"""``au datasets``: the data sources AU can load, and the spec syntax."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction, help_text: str) -> None:
    p = sub.add_parser(
        "datasets",
        help=help_text,
        description="Dataset specs read NAME[:PATH][:KEY=VALUE]..., e.g. mnist, mnist:/data/MNIST/raw, "
        "cifar10:cifar10.parquet, imagefolder:/data/pets:size=32x32, noise-uniform:n=2000:shape=32x32x3. Every "
        "spec also takes size=HxW, channels=1|3 and classes=0-5 (or names), e.g. mnist:size=32x32:channels=3.",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from au.data import SOURCES

    width = max(len(name) for name in SOURCES)
    for name, source in SOURCES.items():
        print(f"{name:<{width}}  {source.summary}")
    print(
        "every spec also takes size=HxW (resize), channels=1|3 (grey <-> colour) and classes=0-5,cat,... (keep, relabel)"
    )
    return 0
