"""The one job protocol: how every AU command owns its output directory.

A *job* is a kind (``train``, ``ablate``, ``curve``, ``record``, ``score``, ``gold``, ``demo``), an
identity (its configuration plus the hashes of its inputs: two jobs with equal identities compute
equal outputs) and an output directory. :func:`claim` decides what may happen to the directory:

==========================================  ===============================================
the directory holds                         claim
==========================================  ===============================================
nothing (new, or an empty directory)        claimed: ``incomplete.json`` written, work starts
``incomplete.json`` of this job             resumed: the job continues from what it kept
``manifest.json`` of this job               finished: returned untouched (``claim.done``)
another job's files, or anything else       refused untouched, with one line
==========================================  ===============================================

A job's body reads top to bottom: check the inputs (before claiming, so a refused call writes
nothing), claim, compute, write the outputs, :meth:`Claim.finish`. ``finish`` writes
``manifest.json`` last and atomically - identity, outputs with their SHA-256, environment,
library versions and times - then removes the marker. A directory is complete exactly when
``manifest.json`` exists; :func:`read_manifest` refuses anything else.

The outputs need not be computed by this process: between :func:`claim` and
:meth:`Claim.finish` another engine (a process pool, a Spark cluster with its own output
committer) may write into :meth:`Claim.path`. The protocol still owns the directory - the marker
says who it belongs to while the engine runs, and only ``finish`` makes it complete - so an
engine killed half-way leaves a directory that can be resumed, never one that passes for complete.
Jobs nest: a sweep's trials are training jobs in its ``trials/``, a score job's recordings are
record jobs in its ``acts/``.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from au.errors import AUError
from au.files import read_json, sha256_file, write_json

MANIFEST = "manifest.json"
INCOMPLETE = "incomplete.json"
FORMAT = "au-job/1"
RESERVED = ("format", "kind", "label", "job_key", "identity", "outputs", "times", "environment")

LIBRARIES = (
    "torch",
    "numpy",
    "scipy",
    "scikit-learn",
    "safetensors",
    "pyarrow",
    "pillow",
    "opencv-python-headless",
    "matplotlib",
    "faiss-cpu",
    "captum",
)


def now() -> str:
    """The current UTC time, ISO 8601 to the second: the timestamps of manifests."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def environment() -> dict[str, Any]:
    """Versions of Python, AU and the libraries whose behaviour the results depend on."""
    import torch

    versions = {}
    for lib in ("au", *LIBRARIES):
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


def job_key(identity: dict) -> str:
    """SHA-256 of an identity (JSON with sorted keys): equal keys, same job."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Job:
    """What a job is: its ``kind``, its ``identity`` and the directory ``out`` it writes.

    ``label`` names the job for people ("run of mnist-cnn on mnist"); it appears in messages
    that refuse a directory holding this job to another one.
    """

    kind: str
    out: Path
    identity: dict
    label: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        # as JSON holds it (tuples become lists), so that it compares equal to a marker's or manifest's
        object.__setattr__(self, "identity", json.loads(json.dumps(self.identity, default=str)))

    @property
    def key(self) -> str:
        return job_key({"kind": self.kind, "identity": self.identity})

    @property
    def what(self) -> str:
        return self.label or f"{self.kind} job"


@dataclass
class Claim:
    """A job's hold on its directory, from :func:`claim` until :meth:`finish`.

    ``done``: the same job had already finished (``manifest`` holds its manifest; nothing may be
    written). ``resumed``: an unfinished run of the same job is being continued.
    """

    job: Job
    manifest: dict | None = None
    resumed: bool = False
    started: str = field(default_factory=now)
    _clock: float = field(default_factory=time.perf_counter)

    @property
    def done(self) -> bool:
        return self.manifest is not None

    @property
    def out(self) -> Path:
        return self.job.out

    def path(self, *parts: str) -> Path:
        """A path inside the job's directory, for this job (or an engine working for it) to write."""
        return self.job.out.joinpath(*parts)

    def finish(self, record: dict, outputs: Iterable[str] = (), scratch: Iterable[str] = ()) -> dict:
        """Write the manifest last and atomically; remove the marker and the ``scratch`` files.

        Parameters
        ----------
        record : dict
            What the job wants its manifest to say (metrics, rows, layers, ...); it may not use the
            protocol's own keys (:data:`RESERVED`).
        outputs : names of files in the directory
            Each is listed in the manifest with its size and SHA-256.
        scratch : names of files in the directory
            Working files (checkpoints) removed once the manifest is written.
        """
        if self.done:
            raise AssertionError(f"{self.job.out}: the job had already finished; nothing may be written")
        clash = sorted(set(record) & set(RESERVED))
        assert not clash, f"a job's record may not set the protocol's keys {clash}"
        files = {}
        for name in outputs:
            path = self.path(name)
            files[name] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
        manifest = {
            "format": FORMAT,
            "kind": self.job.kind,
            "label": self.job.label,
            "job_key": self.job.key,
            "identity": self.job.identity,
            **record,
            "outputs": files,
            "times": {
                "started": self.started,
                "finished": now(),
                "seconds": time.perf_counter() - self._clock,
                "resumed": self.resumed,
            },
            "environment": environment(),
        }
        write_json(self.path(MANIFEST), manifest)
        for name in (INCOMPLETE, *scratch):
            self.path(name).unlink(missing_ok=True)
        # as written (tuples as lists, NaN as null): the same whether the job ran now or had finished
        self.manifest = read_json(self.path(MANIFEST), "job manifest")
        return self.manifest


def _holder(found: dict, job: Job) -> str:
    """The job a directory holds, for a refusal: its label and, for a job of the same kind, what differs."""
    text = found.get("label") or f"{found.get('kind', 'unknown')} job"
    theirs = found.get("identity")
    if found.get("kind") == job.kind and isinstance(theirs, dict):
        differ = sorted(k for k in set(theirs) | set(job.identity) if theirs.get(k) != job.identity.get(k))
        if differ:
            text += f" (different {', '.join(differ)})"
    return text


def finished(job: Job) -> dict | None:
    """The manifest of ``job`` if it has finished in its directory, else None; writes nothing.

    For a job that checks expensive inputs before it claims: a finished job is returned before
    that work. A directory holding another finished job is refused with one line.
    """
    if not (job.out / MANIFEST).is_file():
        return None
    done = read_json(job.out / MANIFEST, "job manifest")
    if done.get("job_key") != job.key:
        raise AUError(
            f"{job.out} already holds a finished {_holder(done, job)}, not this {job.what}; "
            "choose another --out or delete that directory"
        )
    return done


def claim(job: Job) -> Claim:
    """Claim ``job.out`` for ``job``: finished, resumed, newly started, or refused with one line.

    Refusals leave the directory exactly as they found it.
    """
    out = job.out
    done = finished(job)
    if done is not None:
        return Claim(job, manifest=done)
    if (out / INCOMPLETE).is_file():
        marker = read_json(out / INCOMPLETE, "unfinished-job marker")
        if marker.get("job_key") != job.key:
            raise AUError(
                f"{out} holds an unfinished {_holder(marker, job)}, not this {job.what}; "
                "re-run that job to finish it, or choose another --out"
            )
        return Claim(job, resumed=True, started=marker.get("started") or now())
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise AUError(f"{out} exists and is not an AU job directory; choose an empty or new --out")
    out.mkdir(parents=True, exist_ok=True)
    started = now()
    write_json(
        out / INCOMPLETE,
        {
            "format": FORMAT,
            "kind": job.kind,
            "label": job.label,
            "job_key": job.key,
            "identity": job.identity,
            "started": started,
        },
    )
    return Claim(job, started=started)


def read_manifest(path: Path, kind: str, verify: bool = False, hint: str = "") -> dict:
    """The manifest of a finished ``kind`` job in ``path``, or one line saying why there is none.

    ``verify`` also checks that every listed output still has its recorded SHA-256. ``hint`` is
    the command that makes such a directory (``"au train"``), for the messages.
    """
    path = Path(path)
    make = hint or f"au {kind}"
    if not path.is_dir():
        raise AUError(f"{path} does not exist; pass the --out of '{make}'")
    if not (path / MANIFEST).is_file():
        if (path / INCOMPLETE).is_file():
            raise AUError(
                f"{path} is unfinished (it was interrupted); re-run the same '{make}' command to finish it"
            )
        raise AUError(f"{path} is not a finished AU {kind} directory (no {MANIFEST}); run '{make}' first")
    manifest = read_json(path / MANIFEST, f"{kind} manifest")
    if manifest.get("format") != FORMAT:
        raise AUError(
            f"{path} was written by another version of AU (format {manifest.get('format')!r}); "
            f"re-run '{make}' into a new directory"
        )
    if manifest.get("kind") != kind:
        raise AUError(
            f"{path} holds the output of 'au {manifest.get('kind', '?')}', not of '{make}'; pass the --out of '{make}'"
        )
    if verify:
        for name, meta in manifest.get("outputs", {}).items():
            file = path / name
            if not file.is_file() or sha256_file(file) != meta["sha256"]:
                raise AUError(
                    f"{file} is missing or changed since '{make}' wrote it; re-run '{make}' into a new directory"
                )
    return manifest
