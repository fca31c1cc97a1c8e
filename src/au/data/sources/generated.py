"""``generated:RUN``: the samples a confident classifier's generator made (``au train --confident``), as an
unlabelled dataset - an out-of-distribution set at the edge of the training data.

The run directory's ``generated.parquet`` (an images table, :mod:`au.data.images_table`) is read once
the run is complete, and its SHA-256 is checked against the run's manifest, so a damaged or
replaced table is refused. Option ``n`` keeps the first ``n`` samples.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from au import jobs
from au.data.dataset import ImageDataset
from au.data.sources.parquet import load_parquet
from au.data.spec import DataSpec, parse_spec
from au.errors import AUError
from au.files import sha256_file


def _table(spec: DataSpec) -> Path:
    if not spec.path:
        raise AUError("dataset 'generated' needs a run: generated:RUN, a directory of 'au train --confident'")
    run = Path(spec.path)
    manifest = jobs.read_manifest(run, "train")
    record = manifest.get("confident")
    if record is None:
        raise AUError(
            f"dataset {spec.text!r}: run {run} was not trained with --confident; it has no generator"
        )
    table = run / record["generated"]["file"]
    if not table.is_file() or sha256_file(table) != record["generated"]["sha256"]:
        raise AUError(f"dataset {spec.text!r}: {table} is missing or differs from the run's manifest")
    return table


def load_generated(spec: DataSpec, split: str) -> ImageDataset:
    """The run's generated samples (split ``all``), unlabelled; the first ``n`` with option ``n``."""
    data = load_parquet(parse_spec(f"parquet:{_table(spec)}"), split)
    n = spec.int_option("n", len(data))
    if n < 1:
        raise AUError(f"dataset {spec.text!r}: option n must be at least 1, got {n}")
    kept = data.subset(np.arange(min(n, len(data))), split)
    return replace(kept, name=spec.text)  # the fingerprint is of images, labels and ids: the name is free
