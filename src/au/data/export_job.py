"""``au export``: one split of any dataset as an images table (:mod:`au.data.images_table`), for Spark.

The output is one Parquet file, not a job directory (:mod:`au.jobs`): a Spark reader takes a file
and splits it by row group. The file carries its own identity - dataset spec, split, limit and the
data's fingerprint, in its ``au.images`` footer - and is renamed into place only when complete, so
the footer plays the part of a job's manifest:

================================================  ============================================
``--out`` holds                                   export
================================================  ============================================
nothing                                           written
an images table of this export (same identity)   returned untouched ("already complete")
anything else: another export, another file,      refused untouched, with one line
a directory
================================================  ============================================
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from au import progress
from au.data.dataset import ImageDataset
from au.data.images_table import FORMAT, read_metadata, write_images_table
from au.errors import AUError

IDENTITY = ("format", "dataset", "split", "limit", "fingerprint")
"""The metadata keys that name an export: equal keys, same table."""


def _existing(out: Path) -> dict | None:
    """The ``au.images`` metadata of the images table at ``out``; None when nothing is there.

    Anything at ``out`` that is not an AU images table is refused with one line.
    """
    if out.is_dir():
        raise AUError(
            f"{out} is a directory; --out names the Parquet file to write, e.g. {out / 'images.parquet'}"
        )
    if not out.exists():
        return None
    try:
        found = read_metadata(out)
    except AUError:
        found = None
    if found is None:
        raise AUError(f"{out} exists and is not an AU images table; choose another --out or delete that file")
    return found


def export(data: ImageDataset, out: Path, *, limit: int | None = None, show_progress: bool = True) -> dict:
    """Write ``data`` (its first ``limit`` examples) as an images table at ``out``; return its metadata.

    Parameters
    ----------
    data : ImageDataset
        One split of a dataset, as :func:`au.data.load` gives it; ``data.name`` (the spec) and
        ``data.split`` are recorded, so ``parquet:OUT`` reads back the same ids, labels and pixels.
    out : Path
        The Parquet file. When it already holds this export (same spec, split, limit and
        fingerprint) it is left untouched and its metadata returned; anything else there is refused.
    limit : int, optional
        Export only the first ``limit`` examples.

    Returns
    -------
    dict
        The table's ``au.images`` metadata: dataset, split, limit, rows, shape [H, W, C],
        class_names, fingerprint.
    """
    out = Path(out)
    if limit is not None and limit < 1:
        raise AUError(f"limit must be a positive number of examples, got {limit}")
    found = _existing(out)
    rows = data if limit is None or limit >= len(data) else data.subset(np.arange(limit))
    wanted = {"format": FORMAT, "dataset": data.name, "split": data.split, "limit": limit}
    if found is not None:
        wanted["fingerprint"] = rows.fingerprint()
        differ = [k for k in IDENTITY if found.get(k) != wanted[k]]
        if differ:
            raise AUError(
                f"{out} already holds an images table of {found.get('dataset')!r} ({found.get('split')}), "
                f"not this export (different {', '.join(differ)}); choose another --out or delete that file"
            )
        progress.note(f"{out}: this export is already complete; nothing to do")
        return found
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_images_table(rows, out, limit=limit, show_progress=show_progress)
