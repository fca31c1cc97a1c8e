"""``au gold``: certify every coverage score, check the certificates on random splits, rank them.

Layout of a gold directory (a ``gold`` job, :mod:`au.jobs`)::

    leaderboard.json        one entry per (stream, entry, epsilon), ranked by coverage (au.gold.leaderboard);
                            the configuration, calibration of the softmax, the sources
    splits.parquet          every split of the check (au.gold.tables.SPLITS_SCHEMA)
    training_size.parquet   with an ablation sweep: coverage per trial (TRAINING_SIZE_SCHEMA)
    risk_coverage_<stream>.png, reliability.png, coverage_vs_training.png, report.html
    ablation/<trial>/       with an ablation sweep: each trial model's scores (au score jobs; resumable)
    manifest.json           written last

A directory without ``manifest.json`` is unfinished: :func:`read_leaderboard` refuses it.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from au import activations, jobs, progress
from au.ablation.table import read_trials
from au.errors import AUError
from au.files import read_json, write_json
from au.gold import plots
from au.gold.combo import combined_entries
from au.gold.config import GoldConfig, TrainingSizeOptions
from au.gold.leaderboard import certify_stream, guarantee_line, prepare_stream, rank
from au.gold.needed_data import needed_data
from au.gold.report import write_report
from au.gold.scored import Scored, load_scored
from au.gold.tables import SPLITS_FILE, SPLITS_SCHEMA, TRAINING_SIZE_FILE, TRAINING_SIZE_SCHEMA
from au.gold.training_size import check_options, coverage_vs_training, training_size_method
from au.guarantees.calibration import calibration_summary
from au.report.plots import save as save_figure
from au.tables import write_table

LEADERBOARD = "leaderboard.json"
NEEDED_BOOTSTRAP = 400  # bootstrap draws over the sweep's trials for the needed-data intervals
FORMAT = "au-leaderboard/1"


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
        (:mod:`au.gold.training_size`) and its certified coverage tabulated against its size.
    ablation_options : TrainingSizeOptions, optional
        Detectors and test-input limit for the sweep's models.
    train, test : ImageDataset, optional
        The sweep's training and test splits (loaded from its data spec when omitted).
    factory : callable, optional
        Builds the sweep's models when they are not in the registry (see :func:`au.ablation.run_sweep`).
    """
    options = ablation_options or TrainingSizeOptions()
    scored = load_scored(scores)
    mixed = tuple(scored.ood_sets) if config.mixed == ("all",) else config.mixed
    if config.mixed == ("all",) and not mixed:
        raise AUError(
            "--mixed all: the scores hold no OOD inputs; score OOD sets with 'au score --ood', or drop --mixed"
        )
    identity = {
        "scores": [s["scores_sha256"] for s in scored.sources],
        "config": {**asdict(config), "mixed": list(mixed)},
        "ablation": None,
        "ablation_options": asdict(options) if ablation else None,
    }
    if ablation is not None:
        check_options(options)
        read_trials(ablation)  # refuses an unfinished sweep
        identity["ablation"] = jobs.read_manifest(Path(ablation), "ablate")["job_key"]  # its inputs' hash
    job = jobs.Job("gold", out, identity, f"leaderboard of {', '.join(map(str, scores))}")
    if jobs.finished(job) is not None:
        progress.note(f"{out}: this leaderboard is already complete; nothing to do")
        return read_leaderboard(out)
    # every stream and split is drawn before anything is written: a refused call leaves nothing behind
    combined_entries(config.combo, scored.detectors)
    prepared = {s: prepare_stream(scored, s, mixed, config) for s in ["in"] + (["mixed"] if mixed else [])}
    claim = jobs.claim(job)

    figures: dict[str, Path] = {}
    entries, split_rows, streams = _certify(scored, prepared, config, claim, figures)
    calibration = _calibration(scored, prepared["in"], config, claim, figures)
    write_table(claim.path(SPLITS_FILE), split_rows, SPLITS_SCHEMA)
    training = None
    if ablation is not None:
        training = _training_size(ablation, claim, config, options, figures, (train, test, factory))

    result = {
        "format": FORMAT,
        "config": {**asdict(config), "mixed": list(mixed)},
        "streams": streams,
        "gold": _gold(ranked := rank(entries)),
        "entries": ranked,
        "calibration": calibration,
        "training_size": training,
        "figures": {k: p.name for k, p in figures.items()},
        "sources": scored.sources,
    }
    write_json(claim.path(LEADERBOARD), result)
    write_report(result, claim.out)
    outputs = [LEADERBOARD, SPLITS_FILE, "report.html", *result["figures"].values()]
    claim.finish({"gold": result["gold"]}, outputs=outputs + ([TRAINING_SIZE_FILE] if training else []))
    return result


def _certify(scored: Scored, prepared: dict, config: GoldConfig, claim: jobs.Claim, figures: dict):
    """Every stream's entries and split rows, its size and error rate, and its risk-coverage figure."""
    entries, split_rows, streams = [], [], {}
    for stream, prepared_stream in prepared.items():
        progress.note(
            f"[gold] {stream} stream: {len(scored.scores)} entries x {len(config.epsilons)} epsilon(s) x "
            f"{config.n_splits} splits"
        )
        got, rows_of_splits, combination = certify_stream(scored, stream, prepared_stream, config)
        entries, split_rows = entries + got, split_rows + rows_of_splits
        rows, errors = prepared_stream.rows, prepared_stream.errors
        streams[stream] = {
            "inputs": int(len(rows)),
            "error_rate": float(errors.mean()),
            "combo": combination,
            "guarantee": guarantee_line(got, config.delta),
        }
        fig = plots.risk_coverage_curves(
            {k: v[rows] for k, v in scored.scores.items()}, errors, config.epsilons, f"{stream} stream"
        )
        figures[f"risk_coverage_{stream}"] = save_figure(fig, claim.path(f"risk_coverage_{stream}.png"))
    return entries, split_rows, streams


def _gold(ranked: list[dict]) -> dict[str, str]:
    """Per stream and epsilon, the best-ranked entry that certifies anything (``entry (method)`` when both run)."""
    gold: dict[str, str] = {}
    both = len({e["method"] for e in ranked}) > 1
    for e in ranked:
        if e["coverage_mean"] > 0:
            gold.setdefault(
                f"{e['stream']}@{e['epsilon']:g}", f"{e['entry']} ({e['method']})" if both else e["entry"]
            )
    return gold


def _calibration(
    scored: Scored, prepared, config: GoldConfig, claim: jobs.Claim, figures: dict
) -> dict | None:
    """Softmax calibration of the in-distribution test inputs, on the first split; None without logits."""
    rows, splits = prepared.rows, prepared.splits
    logits = _test_logits(scored, rows)
    if logits is None:
        progress.note("[gold] the scores job recorded no logits of the test set: no calibration")
        return None
    calibration = calibration_summary(logits, scored.label[rows], splits[0], config.bins)
    figures["reliability"] = save_figure(
        plots.reliability_diagram(calibration), claim.path("reliability.png")
    )
    return calibration


def _test_logits(scored: Scored, rows: np.ndarray) -> np.ndarray | None:
    """Logits of the in-distribution rows, from the recording of the test set named in the first scores job's manifest.

    None when that recording is absent (calibration is then skipped); a damaged one is an error.
    """
    path = scored.sources[0].get("test_recording")
    if not path or not Path(path).is_dir():
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


def _training_size(ablation: Path, claim: jobs.Claim, config, options, figures: dict, data: tuple) -> dict:
    """Coverage along the sweep's models: ``training_size.parquet`` and its figure."""
    train, test, factory = data
    progress.note(f"[gold] coverage vs training examples: the models of {ablation}")
    size_rows = coverage_vs_training(
        ablation, claim.path("ablation"), config, options, train=train, test=test, factory=factory
    )
    write_table(claim.path(TRAINING_SIZE_FILE), size_rows, TRAINING_SIZE_SCHEMA)
    figures["coverage_vs_training"] = save_figure(
        plots.coverage_vs_training(size_rows, config.epsilons, config.delta),
        claim.path("coverage_vs_training.png"),
    )
    progress.note(f"[gold] the training data a certified coverage of {options.target:g} needs")
    floor = _floor(config, options, test)
    needed = needed_data(
        size_rows,
        options.target,
        options.held_out_max_fraction,
        seed=config.seed,
        bootstrap=NEEDED_BOOTSTRAP,
        uncovered_floor=floor,
    )
    if needed["entries"] and any(e["fit"] for e in needed["entries"]):
        figures["needed_data"] = save_figure(plots.needed_data_figure(needed), claim.path("needed_data.png"))
    return {
        "sweep": str(ablation),
        **asdict(options),
        "method": training_size_method(config),
        "rows": len(size_rows),
        "needed_data": needed,
    }


def _floor(config: GoldConfig, options: TrainingSizeOptions, test) -> float:
    """The smallest uncovered share a split's test part can show: half an input of it."""
    n = options.limit or (len(test) if test is not None else None)
    return 0.5 / ((1 - config.cal_fraction) * n) if n else 1e-4


def read_leaderboard(path: Path | str) -> dict:
    """A finished gold directory's leaderboard; refuses an unfinished or altered one."""
    jobs.read_manifest(Path(path), "gold", verify=True)
    result = read_json(Path(path) / LEADERBOARD, "leaderboard")
    if result.get("format") != FORMAT:
        raise AUError(f"{Path(path) / LEADERBOARD}: not an AU leaderboard (format {result.get('format')!r})")
    return result
