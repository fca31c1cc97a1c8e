"""The leaderboard of ``au gold``: each entry's certificate on every split, summarised and ranked.

The headline numbers of an entry come from the first random split (calibration part: ``threshold``,
``risk_bound``; test part: ``coverage``, ``test_risk``); ``violation_rate``, ``coverage_mean`` and
``test_risk_mean`` summarise all ``n_splits`` splits, and ``aurc`` is measured on the whole stream.
Entries are ranked by ``coverage_mean``.
"""

from __future__ import annotations

import numpy as np

from au.gold.config import GoldConfig
from au.gold.scored import Scored
from au.guarantees.selective import aurc, best_possible_bound, optimal_aurc
from au.guarantees.splits import SplitCheck, random_splits, split_check

STREAMS = ("in", "mixed")


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
    entries, split_rows = [], []
    best_aurc = optimal_aurc(errors)
    for key, all_scores in scored.scores.items():
        s = all_scores[rows]
        area = aurc(s, errors)
        for check in split_check(s, errors, config.epsilons, config.delta, splits):
            entry = {
                "stream": stream,
                "entry": key,
                **{k: scored.entries[key][k] for k in ("detector", "layer")},
                **_entry(check, splits[0], area, best_aurc),
            }
            if stream == "mixed":
                test0 = ~splits[0]
                accepted = s[test0] >= check.first.threshold
                entry["in_coverage"] = float(accepted[~is_ood[test0]].mean())
                entry["ood_accepted"] = float(accepted[is_ood[test0]].mean()) if is_ood[test0].any() else 0.0
            entries.append(entry)
            split_rows += _split_rows(stream, key, check)
    return entries, split_rows


def _entry(check: SplitCheck, cal0: np.ndarray, area: float, best_aurc: float) -> dict:
    """The numbers of one (entry, epsilon): the first split's certificate, and summaries over all splits."""
    first = check.first
    return {
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
        "test_risk_mean": float(check.test_risk[check.certified].mean()) if check.certified.any() else None,
        "certified_rate": float(check.certified.mean()),
        "n_splits": int(len(check.coverage)),
        "n_cal": int(cal0.sum()),
        "n_test": int((~cal0).sum()),
        "note": _note(first.certified, int(cal0.sum()), check.epsilon, check.delta),
    }


def _split_rows(stream: str, key: str, check: SplitCheck) -> list[dict]:
    """One row of ``splits.parquet`` per split of one (stream, entry, epsilon)."""
    return [
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
        for i in range(len(check.coverage))
    ]


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
