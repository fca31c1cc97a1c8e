"""Run manifests: JSON written atomically and last, with library versions for reproducibility."""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from au.errors import AUError

_LIBRARIES = (
    "torch",
    "numpy",
    "scipy",
    "scikit-learn",
    "safetensors",
    "pyarrow",
    "pillow",
    "matplotlib",
    "faiss-cpu",
    "captum",
)


def environment() -> dict[str, Any]:
    """Versions of Python, AU and the libraries whose behaviour the results depend on."""
    import torch

    versions = {}
    for lib in ("au", *_LIBRARIES):
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            versions[lib] = None
    return {
        "python": sys.version.split()[0],
        "platform": f"{platform.system()}-{platform.machine()}",
        "torch_threads": torch.get_num_threads(),
        "versions": versions,
    }


def _clean(value: Any) -> Any:
    """JSON has no NaN or infinity: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def now() -> str:
    """The current UTC time, ISO 8601 to the second: the timestamps of manifests."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A hidden temporary sibling of ``path`` to write; renamed onto ``path`` when the block succeeds.

    Readers see the old file or the new one, never half of one; a failed write leaves no temporary.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)


def write_json(path: Path, value: Any) -> None:
    """Write ``value`` as JSON to ``path`` atomically: readers see the old file or the new one, never half."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(_clean(value), f, indent=2, sort_keys=False, allow_nan=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def read_json(path: Path, what: str = "file") -> Any:
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise AUError(f"{path}: {what} not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise AUError(f"{path}: damaged {what} ({e})") from None


def job_key(identity: dict) -> str:
    """SHA-256 of a job's identity (its arguments, as JSON with sorted keys): equal keys, same job."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def check_job_dir(out: Path, key: str, manifest: str, marker: str, what: str, describe) -> dict | None:
    """Whether ``out`` may hold the job whose :func:`job_key` is ``key``.

    Returns the finished manifest (file ``manifest``, with this ``job_key``) when the job is done,
    None when it may start or resume (``out`` is new or empty, or its unfinished-job ``marker``
    has this key), and raises for a directory of another job or of anything else. ``what`` names
    the kind of directory in messages; ``describe(manifest)`` names what a conflicting finished one
    holds ("finished run (model ..., data ...)").
    """
    out = Path(out)
    if (out / manifest).is_file():
        done = read_json(out / manifest, f"{what} manifest")
        if done.get("job_key") == key:
            return done
        raise AUError(
            f"{out} already holds a different {describe(done)}; choose another --out or delete that directory"
        )
    if (out / marker).is_file():
        if read_json(out / marker, f"unfinished-{what} marker").get("job_key") != key:
            raise AUError(
                f"{out} holds an unfinished {what} of a different job; re-run that job to finish it, or choose another --out"
            )
        return None
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise AUError(f"{out} exists and is not an AU {what} directory; choose an empty or new --out")
    return None
