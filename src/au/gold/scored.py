"""The inputs ``au gold`` certifies on: one or more finished scores directories, read as one set.

Several directories scored at different layers (``au score --layer conv2``, ``--layer fc1``)
combine into layer-wise entries: a feature detector's entry is ``detector@layer``; a detector
that reads logits or images is the same at every layer and appears once, as ``detector``. All
directories must hold the same inputs in the same order (same ``--in``, ``--ood``, ``--limit``,
``--seed``) and scores of the same weights.

Two streams are certified:

* ``in``: the labelled in-distribution test inputs; an accepted input is an error when its
  prediction is wrong.
* ``mixed``: those plus the chosen OOD inputs; accepting any OOD input is an error too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from au.data.dataset import NO_LABEL
from au.detectors.registry import NAMES, detector_class
from au.errors import AUError
from au.score.schema import ROW_COLUMNS, SCORES_FILE, detector_columns
from au.score.score_job import read_scores


@dataclass
class Scored:
    """Rows of the scores tables (n,) and every entry's scores (n,), higher = more in-distribution."""

    dataset: np.ndarray
    example_id: np.ndarray
    label: np.ndarray
    correct: np.ndarray
    is_ood: np.ndarray
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    entries: dict[str, dict] = field(default_factory=dict)  # key -> detector, layer, scores_dir
    sources: list[dict] = field(default_factory=list)

    @property
    def detectors(self) -> dict[str, str]:
        """Each entry's detector, in the entries' order: ``knn@fc1`` -> ``knn``."""
        return {key: self.entries[key]["detector"] for key in self.scores}

    @property
    def ood_sets(self) -> list[str]:
        return list(dict.fromkeys(self.dataset[self.is_ood].tolist()))

    def stream(self, mixed: tuple[str, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
        """(row indices, errors) of the ``in`` stream, or of the mixed stream with the OOD sets ``mixed``."""
        unknown = [m for m in mixed if m not in self.ood_sets]
        if unknown:
            raise AUError(
                f"OOD set(s) {', '.join(unknown)} are not in the scores; they hold: {', '.join(self.ood_sets) or 'none'}"
            )
        keep = (~self.is_ood & (self.label != NO_LABEL)) | np.isin(self.dataset, list(mixed)) & self.is_ood
        rows = np.flatnonzero(keep)
        if not len(rows):
            raise AUError("the scores hold no labelled in-distribution test inputs to certify on")
        return rows, ~self.correct[rows] | self.is_ood[rows]


def entry_of(detector: str, layer: str) -> tuple[str, str | None]:
    """(entry key, layer) of a detector scored at ``layer``: detectors that consume features are per layer."""
    consumes = detector_class(detector).consumes.input
    if consumes == "features":
        return f"{detector}@{layer}", layer
    return detector, ("logits" if consumes == "logits" else None)


def test_recording(scores_dir: Path, manifest: dict) -> Path | None:
    """The recording of the in-distribution test set that a scores job made, as its manifest names it."""
    for s in manifest["sets"]:
        if not s["is_ood"] and s.get("recording"):
            path = Path(s["recording"])
            return path if path.is_absolute() else Path(scores_dir) / path
    return None


def load_scored(dirs) -> Scored:
    """Read finished scores directories (``au score --out``) into one :class:`Scored`."""
    dirs = [Path(d) for d in dirs]
    if not dirs:
        raise AUError("no scores directory given; pass --scores DIR (the --out of 'au score')")
    scored: Scored | None = None
    for d in dirs:
        table, manifest = read_scores(d)
        rows = {c: table.column(c).to_numpy(zero_copy_only=False) for c in ROW_COLUMNS}
        rows["dataset"] = np.asarray(table.column("dataset").to_pylist())
        rows["example_id"] = np.asarray(table.column("example_id").to_pylist())
        if scored is None:
            scored = Scored(
                dataset=rows["dataset"],
                example_id=rows["example_id"],
                label=rows["label"].astype(np.int64),
                correct=rows["correct"].astype(bool),
                is_ood=rows["is_ood"].astype(bool),
            )
            weights = manifest["model"]["weights_sha256"]
        elif not (
            np.array_equal(scored.dataset, rows["dataset"])
            and np.array_equal(scored.example_id, rows["example_id"])
        ):
            raise AUError(
                f"{d} holds other inputs than {dirs[0]}; score every directory with the same --in, --ood, --limit and --seed"
            )
        elif manifest["model"]["weights_sha256"] != weights:
            raise AUError(
                f"{d} scores another model than {dirs[0]} (other weights); compare one model's scores"
            )
        layer = manifest["layer"]
        for name in detector_columns(table):
            if name not in NAMES:
                raise AUError(
                    f"{d}/{SCORES_FILE} has scores of a detector {name!r} this version of AU does not know "
                    f"(known: {', '.join(NAMES)}); re-score with this version"
                )
            key, at = entry_of(name, layer)
            if key in scored.entries:
                if "@" in key:
                    raise AUError(
                        f"{key} is scored in two directories ({scored.entries[key]['scores_dir']}, {d}); pass one"
                    )
                continue
            values = table.column(name).to_numpy()
            bad = int((~np.isfinite(values)).sum())
            if bad:
                raise AUError(
                    f"{d}: detector {name!r} has {bad} NaN or infinite score(s); every input needs a finite "
                    "score; re-run 'au score' into a new directory"
                )
            scored.scores[key] = values
            scored.entries[key] = {"detector": name, "layer": at, "scores_dir": str(d)}
        recording = test_recording(d, manifest)
        scored.sources.append(
            {
                "path": str(d),
                "layer": layer,
                "scores_sha256": manifest["outputs"][SCORES_FILE]["sha256"],
                "model": manifest["model"],
                "test_recording": str(recording) if recording else None,
            }
        )
    return scored
