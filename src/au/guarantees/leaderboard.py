"""``au gold``: certify every coverage score, check the certificates on random splits, rank them.

Layout of a gold directory::

    leaderboard.json        written last: one entry per (stream, entry, epsilon), ranked by coverage;
                            the configuration, calibration of the softmax, sources and versions
    splits.parquet          every split of the check (:data:`au.guarantees.tables.SPLITS_SCHEMA`)
    training_size.parquet   with an ablation sweep: coverage per trial (``TRAINING_SIZE_SCHEMA``)
    risk_coverage.png, reliability.png, coverage_vs_training.png, report.html
    ablation/<trial>/       with an ablation sweep: each trial model's scores (``au score`` layout)

A directory without ``leaderboard.json`` is unfinished: :func:`read_leaderboard` refuses it. The
ablation scores are resumable; re-running the same command continues there.

The headline numbers of an entry come from the first random split (calibration part: ``threshold``,
``risk_bound``; test part: ``coverage``, ``test_risk``); ``violation_rate``, ``coverage_mean`` and
``test_risk_mean`` summarise all ``n_splits`` splits, and ``aurc`` is measured on the whole stream.
Entries are ranked by ``coverage_mean``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from au import activations, progress
from au.errors import AUError
from au.guarantees import plots
from au.guarantees.bounds import check_level
from au.guarantees.calibration import calibration_summary
from au.guarantees.report import write_report
from au.guarantees.scored import Scored, load_scored
from au.guarantees.selective import aurc, best_possible_bound, optimal_aurc
from au.guarantees.splits import random_splits, split_check
from au.guarantees.tables import (
    SPLITS_FILE,
    SPLITS_SCHEMA,
    TRAINING_SIZE_FILE,
    TRAINING_SIZE_SCHEMA,
    write_table,
)
from au.guarantees.training_size import TrainingSizeOptions, coverage_vs_training
from au.manifest import check_job_dir, environment, job_key, read_json, write_json
from au.report.plots import save as save_figure

LEADERBOARD = "leaderboard.json"
INCOMPLETE = "gold-incomplete.json"
FORMAT = "au-gold/1"
STREAMS = ("in", "mixed")


@dataclass(frozen=True)
class GoldConfig:
    """What to certify and how to check it.

    ``epsilons``: target selective risks; ``delta``: allowed failure probability; ``n_splits``
    random calibration/test splits with ``cal_fraction`` of the inputs calibrating; ``mixed``: OOD
    sets of the mixed stream (``("all",)`` = every OOD set in the scores; empty = no mixed stream);
    ``bins``: reliability-diagram bins.
    """

    epsilons: tuple[float, ...] = (0.01, 0.02, 0.05)
    delta: float = 0.05
    n_splits: int = 200
    cal_fraction: float = 0.5
    seed: int = 0
    mixed: tuple[str, ...] = ()
    bins: int = 15

    def __post_init__(self) -> None:
        if not self.epsilons:
            raise AUError("no epsilon given; pass --epsilon 0.01,0.02 (target selective risks in (0, 1))")
        eps = tuple(sorted({check_level(e, "epsilon") for e in self.epsilons}))
        object.__setattr__(self, "epsilons", eps)
        check_level(self.delta, "delta")
        check_level(self.cal_fraction, "cal_fraction")
        if self.n_splits < 1:
            raise AUError(f"n_splits must be at least 1, got {self.n_splits}")
        if self.bins < 1:
            raise AUError(f"bins must be at least 1, got {self.bins}")
        if self.seed < 0:
            raise AUError(f"seed must be a non-negative integer, got {self.seed}")
        object.__setattr__(self, "mixed", tuple(self.mixed))


def _note(cert_first, n_cal: int, epsilon: float, delta: float) -> str | None:
    if cert_first:
        return None
    floor = best_possible_bound(n_cal, delta)
    if floor > epsilon:
        return (
            f"calibration split too small: {n_cal} inputs can certify at best a risk of {floor:.4f} "
            f"(all accepted, none wrong) > epsilon {epsilon:g}; coverage 0"
        )
    return f"no threshold certified: too many errors among the best-scored inputs for epsilon {epsilon:g}; coverage 0"


def prepare_stream(scored: Scored, stream: str, mixed: tuple[str, ...], config: GoldConfig):
    """(row indices (m,), errors (m,), calibration masks (n_splits, m)) of one stream; checks it can be split."""
    rows, errors = scored.stream(mixed if stream == "mixed" else ())
    return rows, errors, random_splits(len(rows), config.n_splits, config.cal_fraction, config.seed)


def certify_stream(
    scored: Scored, stream: str, prepared, config: GoldConfig
) -> tuple[list[dict], list[dict]]:
    """(leaderboard entries, split-check rows) of one stream prepared by :func:`prepare_stream`."""
    rows, errors, splits = prepared
    is_ood = scored.is_ood[rows]
    test0 = ~splits[0]
    entries, split_rows = [], []
    best_aurc = optimal_aurc(errors)
    for key, all_scores in scored.scores.items():
        s = all_scores[rows]
        area = aurc(s, errors)
        for check in split_check(s, errors, config.epsilons, config.delta, splits):
            first = check.first
            entry = {
                "stream": stream,
                "entry": key,
                **{k: scored.entries[key][k] for k in ("detector", "layer")},
                "epsilon": check.epsilon,
                "delta": check.delta,
                "coverage": float(check.coverage[0]),
                "threshold": first.threshold if first.certified else None,
                "risk_bound": first.risk_bound,
                "test_risk": float(check.test_risk[0]),
                "aurc": area,
                "e_aurc": area - best_aurc,
                "violation_rate": check.violation_rate,
                "certified": bool(first.certified),
                "cal_coverage": first.coverage,
                "coverage_mean": float(check.coverage.mean()),
                "coverage_std": float(check.coverage.std()),
                "test_risk_mean": float(check.test_risk[check.certified].mean())
                if check.certified.any()
                else None,
                "certified_rate": float(check.certified.mean()),
                "n_splits": int(len(check.coverage)),
                "n_cal": int(splits[0].sum()),
                "n_test": int(test0.sum()),
                "note": _note(first.certified, int(splits[0].sum()), check.epsilon, check.delta),
            }
            if stream == "mixed":
                accepted = s[test0] >= first.threshold
                entry["in_coverage"] = float(accepted[~is_ood[test0]].mean())
                entry["ood_accepted"] = float(accepted[is_ood[test0]].mean()) if is_ood[test0].any() else 0.0
            entries.append(entry)
            for i in range(len(check.coverage)):
                split_rows.append(
                    {
                        "stream": stream,
                        "entry": key,
                        "epsilon": check.epsilon,
                        "split": i,
                        "certified": bool(check.certified[i]),
                        "threshold": float(check.threshold[i]) if check.certified[i] else None,
                        "risk_bound": float(check.risk_bound[i]),
                        "cal_coverage": float(check.cal_coverage[i]),
                        "coverage": float(check.coverage[i]),
                        "test_risk": float(check.test_risk[i]),
                        "violated": bool(check.violations[i]),
                    }
                )
    return entries, split_rows


def rank(entries: list[dict]) -> list[dict]:
    """Sort by stream, epsilon, then coverage (desc) and AURC (asc); number each group's entries from 1.

    Coverage here is the mean over all splits (``coverage_mean``): the first split's coverage is a
    single draw, and two scores a few inputs apart would swap places from one seed to the next.
    """
    order = sorted(
        entries,
        key=lambda e: (STREAMS.index(e["stream"]), e["epsilon"], -e["coverage_mean"], e["aurc"], e["entry"]),
    )
    group, n = None, 0
    for e in order:
        n = n + 1 if (e["stream"], e["epsilon"]) == group else 1
        group = (e["stream"], e["epsilon"])
        e["rank"] = n
    return [{"rank": e.pop("rank"), **e} for e in order]


def _test_logits(scored: Scored, rows: np.ndarray) -> np.ndarray | None:
    """Logits of the in-distribution rows, from the first scores directory's recording of the test set.

    None when that recording is absent (calibration is then skipped); a damaged one is an error.
    """
    path = Path(scored.sources[0]["path"]) / "acts" / "test"
    if not path.is_dir():
        return None
    logits = activations.open(path).layer("logits")
    position = {i: k for k, i in enumerate(logits.ids.tolist())}
    try:
        index = np.array([position[i] for i in scored.example_id[rows]], dtype=np.int64)
    except KeyError as e:
        raise AUError(
            f"{path} does not hold the scored test inputs (e.g. {e.args[0]!r}); re-run 'au score'"
        ) from None
    return np.asarray(logits.values, dtype=np.float64)[index]


def gold_run(
    scores,
    out: Path,
    config: GoldConfig = GoldConfig(),
    *,
    ablation: Path | None = None,
    ablation_options: TrainingSizeOptions | None = None,
    train=None,
    test=None,
    factory=None,
) -> dict:
    """Certify every entry of the scores directories ``scores``; write ``out``; return the leaderboard.

    Parameters
    ----------
    scores : list of Path
        Finished ``au score`` directories of one model (several = several layers).
    out : Path
        The gold directory.
    ablation : Path, optional
        An ``au ablate`` sweep directory: each trial's model is scored on its own training subset
        (:mod:`au.guarantees.training_size`) and its certified coverage tabulated against its size.
    ablation_options : TrainingSizeOptions, optional
        Detectors and test-input limit for the sweep's models.
    train, test : ImageDataset, optional
        The sweep's training and test splits (loaded from its data spec when omitted).
    factory : callable, optional
        Builds the sweep's models when they are not in the registry (see :func:`au.ablation.run_sweep`).
    """
    out = Path(out)
    ablation_options = ablation_options or TrainingSizeOptions()
    scored = load_scored(scores)
    mixed = tuple(scored.ood_sets) if config.mixed == ("all",) else config.mixed
    if config.mixed == ("all",) and not mixed:
        raise AUError(
            "--mixed all: the scores hold no OOD inputs; score OOD sets with 'au score --ood', or drop --mixed"
        )
    # every stream and split is drawn before anything is written: a refused call leaves nothing behind
    prepared = {s: prepare_stream(scored, s, mixed, config) for s in ["in"] + (["mixed"] if mixed else [])}
    identity = {
        "format": FORMAT,
        "scores": [s["scores_sha256"] for s in scored.sources],
        "config": {**asdict(config), "mixed": list(mixed)},
        "ablation": str(ablation) if ablation else None,
        "ablation_options": asdict(ablation_options) if ablation else None,
    }
    if ablation is not None:
        from au.ablation import read_trials

        trials = read_trials(ablation)  # refuses an unfinished sweep before anything is written
        identity["ablation_trials"] = sorted(trials.column("run_dir").to_pylist())
    key = job_key(identity)
    done = check_job_dir(out, key, LEADERBOARD, INCOMPLETE, "gold", lambda m: "leaderboard")
    if done is not None:
        progress.note(f"{out}: this leaderboard is already complete; nothing to do")
        return done
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / INCOMPLETE, {"job_key": key, "identity": identity})

    entries, split_rows, figures, stream_info = [], [], {}, {}
    calibration = None
    for stream, (rows, errors, splits) in prepared.items():
        progress.note(
            f"[gold] {stream} stream: {len(scored.scores)} entries x {len(config.epsilons)} epsilon(s) x "
            f"{config.n_splits} splits"
        )
        got, rows_of_splits = certify_stream(scored, stream, (rows, errors, splits), config)
        entries += got
        stream_info[stream] = {"inputs": int(len(rows)), "error_rate": float(errors.mean())}
        split_rows += rows_of_splits
        fig = plots.risk_coverage_curves(
            {k: v[rows] for k, v in scored.scores.items()}, errors, config.epsilons, f"{stream} stream"
        )
        figures[f"risk_coverage_{stream}"] = save_figure(fig, out / f"risk_coverage_{stream}.png")
        if stream == "in":
            logits = _test_logits(scored, rows)
            if logits is None:
                progress.note(
                    f"[gold] no logits recording under {scored.sources[0]['path']}/acts/test: no calibration"
                )
            else:
                calibration = calibration_summary(logits, scored.label[rows], splits[0], config.bins)
                figures["reliability"] = save_figure(
                    plots.reliability_diagram(calibration), out / "reliability.png"
                )
    write_table(out / SPLITS_FILE, split_rows, SPLITS_SCHEMA)

    training = None
    if ablation is not None:
        progress.note(f"[gold] coverage vs training examples: the models of {ablation}")
        size_rows = coverage_vs_training(
            ablation, out / "ablation", config, ablation_options, train=train, test=test, factory=factory
        )
        write_table(out / TRAINING_SIZE_FILE, size_rows, TRAINING_SIZE_SCHEMA)
        training = {"sweep": str(ablation), **asdict(ablation_options), "rows": len(size_rows)}
        figures["coverage_vs_training"] = save_figure(
            plots.coverage_vs_training(size_rows, config.epsilons, config.delta),
            out / "coverage_vs_training.png",
        )

    ranked = rank(entries)
    gold: dict[str, str] = {}  # per stream and epsilon, the best-ranked entry that certifies anything
    for e in ranked:
        if e["coverage_mean"] > 0:
            gold.setdefault(f"{e['stream']}@{e['epsilon']:g}", e["entry"])
    result = {
        "format": FORMAT,
        "job_key": key,
        "config": {**asdict(config), "mixed": list(mixed)},
        "streams": stream_info,
        "gold": gold,
        "entries": ranked,
        "calibration": calibration,
        "training_size": training,
        "figures": {k: p.name for k, p in figures.items()},
        "sources": scored.sources,
        "environment": environment(),
    }
    write_report(result, out)
    write_json(out / LEADERBOARD, result)
    (out / INCOMPLETE).unlink(missing_ok=True)
    return result


def read_leaderboard(path: Path | str) -> dict:
    """A finished gold directory's ``leaderboard.json``; refuses an unfinished one."""
    path = Path(path)
    if not (path / LEADERBOARD).is_file():
        raise AUError(f"{path} holds no finished leaderboard; run 'au gold --out {path}' first")
    result = read_json(path / LEADERBOARD, "leaderboard")
    if result.get("format") != FORMAT:
        raise AUError(f"{path / LEADERBOARD}: not an AU leaderboard (format {result.get('format')!r})")
    return result
