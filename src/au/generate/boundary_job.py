"""``au boundary``: what the classifier, every detector and the certified selective classifier say of the
samples a confident classifier's generator made - and, beside a standard classifier, whether the
confident one detects OOD inputs better.

It reads finished jobs and computes little: the samples are scored by ``au score --ood
generated:RUN`` like any OOD set, the certificates come from ``au gold``. Layout of a boundary
directory (a ``boundary`` job, :mod:`au.jobs`)::

    boundary.parquet     one row per generated sample: probabilities, prediction, every detector's score
    acceptance.parquet   with --gold: per certified entry, method and epsilon, the samples it would accept
    decisions.parquet    with --gold: per sample and certificate, accepted or not
    guided_backprop.parquet  every sample's guided-backprop map (au explain's attributions columns)
    comparison.parquet   with --baseline: AUROC and TNR at 95% TPR of both classifiers per OOD set and detector
    samples.png, guided_backprop.png, scores.png, report.html
    manifest.json        written last
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from torch import nn

from au import activations, jobs, progress
from au.data.spec import parse_spec
from au.errors import AUError
from au.explain.config import ExplainConfig
from au.explain.methods import attribute, is_signed
from au.explain.schema import attribution_rows, attributions_schema
from au.generate import boundary_report
from au.generate.boundary_config import BoundaryConfig
from au.generate.boundary_tables import (
    ACCEPTANCE_FILE,
    ACCEPTANCE_SCHEMA,
    BOUNDARY_FILE,
    COMPARISON_FILE,
    COMPARISON_SCHEMA,
    DECISIONS_FILE,
    DECISIONS_SCHEMA,
    MAPS_FILE,
    boundary_schema,
)
from au.generate.confident import samples_grid
from au.gold.gold_job import read_leaderboard
from au.gold.scored import entry_of
from au.report.plots import save as save_figure
from au.score.schema import SCORES_FILE, detector_columns
from au.score.score_job import read_scores
from au.tables import write_table
from au.train.rundir import load_run

GUIDED = "guided_backprop"  # the attribution shown beside each sample (au.explain.methods)
GENERATED_SOURCE = "generated"  # the data source of a confident run's samples (au.data.sources.generated)


@dataclass
class _Scores:
    """A finished scores job: its directory, manifest and table."""

    path: Path
    manifest: dict
    table: pa.Table

    @property
    def sha256(self) -> str:
        return self.manifest["outputs"][SCORES_FILE]["sha256"]


def _scores(path: Path) -> _Scores:
    table, manifest = read_scores(path)
    return _Scores(Path(path), manifest, table)


def boundary_run(
    scores: Path,
    out: Path,
    config: BoundaryConfig = BoundaryConfig(),
    *,
    gold: Path | None = None,
    baseline: Path | None = None,
    decode: Path | None = None,
    model: nn.Module | None = None,
) -> dict:
    """Report on the generated samples in the scores directory ``scores``; write ``out``; return the manifest.

    Parameters
    ----------
    scores : Path
        A finished ``au score`` directory of the confident classifier that scored a ``generated:RUN`` set.
    gold : Path, optional
        A finished ``au gold`` directory certified from ``scores``: which samples each certificate accepts.
    baseline : Path, optional
        A finished ``au score`` directory of a standard classifier on the same OOD sets: the comparison.
    decode : Path, optional
        A finished ``au decode`` directory: its grids of decoded high- and low-density samples join the report.
    model : nn.Module, optional
        The confident classifier, for models outside AU's registry (default: loaded from the scores' run).
    """
    confident = _scores(scores)
    spec, rows = _generated_rows(confident, config.generated)
    leaderboard = _leaderboard(gold, confident) if gold is not None else None
    standard = _scores(baseline) if baseline is not None else None
    decoded = _decoded_grids(decode) if decode is not None else []
    if model is None:
        model = load_run(Path(confident.manifest["model"]["run"])).model
    identity = {
        "scores": confident.sha256,
        "generated": spec,
        "gold": jobs.read_manifest(Path(gold), "gold")["job_key"] if gold is not None else None,
        "baseline": standard.sha256 if standard is not None else None,
        "decode": jobs.read_manifest(Path(decode), "decode")["job_key"] if decode is not None else None,
        "config": asdict(config),
    }
    claim = jobs.claim(jobs.Job("boundary", out, identity, f"boundary samples of {spec}"))
    if claim.done:
        progress.note(f"{out}: this boundary report is already complete; nothing to do")
        return claim.manifest

    probs, generated = _probabilities(confident, spec, rows), _generated(confident, spec, rows)
    images = generated.images
    samples = _samples_table(confident, rows, probs)
    write_table(
        claim.path(BOUNDARY_FILE), samples, boundary_schema(probs.shape[1], detector_columns(confident.table))
    )
    maps = attribute(model, images, samples["pred"], [GUIDED])
    write_table(
        claim.path(MAPS_FILE),
        attribution_rows(generated, samples["pred"], samples["pred"], maps),
        attributions_schema(int(np.prod(generated.input_shape))),
    )
    outputs = [BOUNDARY_FILE, MAPS_FILE]
    acceptance = None
    if leaderboard is not None:
        acceptance, decisions = _acceptance(leaderboard, confident, rows, samples["example_id"])
        write_table(claim.path(ACCEPTANCE_FILE), acceptance, ACCEPTANCE_SCHEMA)
        write_table(claim.path(DECISIONS_FILE), decisions, DECISIONS_SCHEMA)
        outputs += [ACCEPTANCE_FILE, DECISIONS_FILE]
    comparison = _comparison(standard, confident) if standard is not None else None
    if comparison is not None:
        write_table(claim.path(COMPARISON_FILE), comparison, COMPARISON_SCHEMA)
        outputs.append(COMPARISON_FILE)
    figures = _figures(model, images, maps[GUIDED], samples, confident, rows, config, claim)
    outputs += ["report.html", *(p.name for p in figures.values())]
    figures |= {f"decoded {p.stem}": p for p in decoded}
    summary = _summary(samples, acceptance, comparison, standard, confident)
    boundary_report.write_report(claim.path("report.html"), spec, summary, acceptance, comparison, figures)
    return claim.finish({"generated": spec, "summary": summary}, outputs=outputs)


def _decoded_grids(decode: Path) -> list[Path]:
    """The grids of decoded high- and low-density samples of a finished decode job, one per layer."""
    jobs.read_manifest(Path(decode), "decode", verify=True)
    return sorted(Path(decode).glob("density-*.png"))


def _generated_rows(scores: _Scores, wanted: str | None) -> tuple[str, np.ndarray]:
    """(the generated set's spec, its row indices in the scores table)."""
    sets = [s["dataset"] for s in scores.manifest["sets"] if s["is_ood"]]
    found = [s for s in sets if (s == wanted if wanted else parse_spec(s).name == GENERATED_SOURCE)]
    if len(found) != 1:
        have = ", ".join(sets) or "none"
        what = (
            f"no OOD set {wanted!r}" if wanted else f"{len(found)} generated sets (need one, or --generated)"
        )
        raise AUError(
            f"{scores.path}: the scores hold {what}; OOD sets: {have}. Score the samples with "
            "'au score --run RUN --ood generated:RUN'"
        )
    dataset = np.asarray(scores.table.column("dataset").to_pylist())
    return found[0], np.flatnonzero(dataset == found[0])


def _leaderboard(gold: Path, scores: _Scores) -> dict:
    result = read_leaderboard(gold)
    if scores.sha256 not in {s["scores_sha256"] for s in result["sources"]}:
        raise AUError(
            f"--gold {gold} was certified from other scores than {scores.path}; run 'au gold --scores {scores.path}'"
        )
    return result


def _probabilities(scores: _Scores, spec: str, rows: np.ndarray) -> np.ndarray:
    """Softmax of the recorded logits of the generated set, in the scores table's row order. (n, K)."""
    record = next(s for s in scores.manifest["sets"] if s["dataset"] == spec)
    path = Path(record["recording"])
    logits = activations.open(path if path.is_absolute() else scores.path / path).layer("logits")
    position = {example_id: i for i, example_id in enumerate(logits.ids)}
    ids = scores.table.column("example_id").to_pylist()
    order = np.array([position[ids[r]] for r in rows], dtype=np.int64)
    return torch.softmax(torch.from_numpy(np.asarray(logits.values[order], np.float32)), dim=1).numpy()


def _generated(scores: _Scores, spec: str, rows: np.ndarray):
    """The generated samples of the scored rows, in their order (``au score --limit`` may have sampled them)."""
    from au.data import load

    data = load(spec, "all")
    position = {example_id: i for i, example_id in enumerate(data.ids)}
    ids = scores.table.column("example_id").to_pylist()
    return data.subset(np.array([position[ids[r]] for r in rows], dtype=np.int64))


def _samples_table(scores: _Scores, rows: np.ndarray, probs: np.ndarray) -> dict:
    t = scores.table
    columns = {
        "example_id": np.asarray(t.column("example_id").to_pylist())[rows],
        "pred": np.asarray(t.column("pred").to_numpy())[rows],
        "max_prob": probs.max(axis=1).astype(np.float64),
        "probs": list(probs.astype(np.float32)),
    }
    for d in detector_columns(t):
        columns[d] = t.column(d).to_numpy()[rows]
    return columns


def _acceptance(leaderboard: dict, scores: _Scores, rows: np.ndarray, ids) -> tuple[list[dict], dict]:
    """Per certified entry of the ``in`` stream that these scores hold: how many generated samples it accepts
    (one row per entry, method and epsilon), and which (the decisions table's columns, one row per sample
    and certificate)."""
    layer = scores.manifest["layer"]
    columns = {
        entry_of(d, layer)[0]: scores.table.column(d).to_numpy()[rows] for d in detector_columns(scores.table)
    }
    out, decisions = [], {k: [] for k in DECISIONS_SCHEMA.names}
    for e in leaderboard["entries"]:
        if e["stream"] != "in" or e["entry"] not in columns:
            continue  # a combined score, or another layer's scores: not computed for these samples
        threshold, score = e["threshold"], columns[e["entry"]]
        taken = score >= threshold if threshold is not None else np.zeros(len(score), dtype=bool)
        accepted = int(taken.sum())
        for key, value in (("entry", e["entry"]), ("method", e["method"]), ("epsilon", e["epsilon"])):
            decisions[key] += [value] * len(score)
        decisions["example_id"] += list(ids)
        decisions["score"] += score.tolist()
        decisions["threshold"] += [threshold] * len(score)
        decisions["accepted"] += taken.tolist()
        out.append(
            {
                "entry": e["entry"],
                "method": e["method"],
                "epsilon": e["epsilon"],
                "certified": bool(e["certified"]),
                "threshold": threshold,
                "in_coverage": e["coverage"],
                "accepted": accepted,
                "accepted_share": accepted / len(rows),
            }
        )
    return out, decisions


def _comparison(standard: _Scores, confident: _Scores) -> list[dict]:
    """AUROC and TNR at 95% TPR of both classifiers, per OOD set scored by both and detector of both: read from
    the two scores jobs' manifests, where ``au score`` measured them (:func:`au.ood.metrics.ood_metrics`)."""
    ours, theirs = confident.manifest["detectors"], standard.manifest["detectors"]
    out = []
    for ood in [s["dataset"] for s in confident.manifest["sets"] if s["is_ood"]]:
        for d in [d for d in ours if d in theirs and ood in theirs[d]["ood"]]:
            row = {"ood_set": ood, "detector": d}
            for name, m in (("standard", theirs[d]["ood"][ood]), ("confident", ours[d]["ood"][ood])):
                row[f"auroc_{name}"] = m["auroc"]
                row[f"tnr95_{name}"] = 1.0 - m["fpr_at_95_tpr"]
            out.append(row)
    return out


def _figures(
    model, images, maps, samples: dict, scores: _Scores, rows, config: BoundaryConfig, claim
) -> dict:
    """The samples grid, the guided-backprop ``maps`` of the first ``config.maps`` samples and the score
    histograms (every sample's map is in the maps table)."""
    figures = {"samples": save_figure(samples_grid(model, images[:64]), claim.path("samples.png"))}
    k = min(config.maps, len(images))
    pred, maps = samples["pred"][:k], maps[:k]
    ids, msp = samples["example_id"][:k], samples["max_prob"][:k]
    labels = [f"{i.split('-')[-1]}: {p} ({m:.2f})" for i, p, m in zip(ids, pred, msp, strict=True)]
    grid = boundary_report.maps_grid(images[:k], maps, labels, is_signed(GUIDED, ExplainConfig()))
    figures["guided_backprop"] = save_figure(grid, claim.path("guided_backprop.png"))
    figures["scores"] = save_figure(
        boundary_report.score_histograms(scores.table, rows), claim.path("scores.png")
    )
    return figures


def _summary(samples: dict, acceptance, comparison, standard: _Scores | None, confident: _Scores) -> dict:
    """The headline numbers: the samples' confidence, what the gold entries accept, the two accuracies."""
    summary = {
        "samples": int(len(samples["pred"])),
        "mean_msp": float(np.mean(samples["max_prob"])),
        "predicted_classes": np.bincount(samples["pred"], minlength=len(samples["probs"][0])).tolist(),
    }
    if acceptance:
        summary["largest_accepted_share"] = max(a["accepted_share"] for a in acceptance)
    for name, s in (("standard", standard), ("confident", confident)):
        if s is not None:
            correct = s.table.column("correct").to_numpy(zero_copy_only=False)
            is_ood = s.table.column("is_ood").to_numpy(zero_copy_only=False)
            summary[f"test_accuracy_{name}"] = float(correct[~is_ood].mean())
    return summary
