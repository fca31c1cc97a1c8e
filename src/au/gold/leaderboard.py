"""The leaderboard of ``au gold``: each entry's certificate on every split, summarised and ranked.

An entry is one score (a detector, a detector at a layer, or ``combo``, the combined score) under
one certificate (``method``: SGR or Learn then Test). The headline numbers come from the first
random split (calibration part: ``threshold``, ``risk_bound``; test part: ``coverage``,
``test_risk``); ``violation_rate`` (with its 95% interval), ``coverage_mean`` and
``test_risk_mean`` summarise all ``n_splits`` splits, ``population`` the same check against a
large held-out population, and ``verdict`` says whether the guarantee held. ``aurc`` is measured
on the whole stream (``combo``: outside the first split's fitting part). Entries are ranked by
``coverage_mean``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from au.gold.combo import combined_entries, per_split_scores, summary
from au.gold.config import GoldConfig
from au.gold.scored import Scored
from au.guarantees.bounds import clopper_pearson_upper
from au.guarantees.selective import aurc, best_possible_bound, optimal_aurc
from au.guarantees.splits import SplitCheck, fit_parts, random_splits, split_check

STREAMS = ("in", "mixed")
COMBO = "combo"
"""The combined score's entry (:mod:`au.gold.combo`)."""


def _note(cert_first, n_cal: int, epsilon: float, delta: float, method: str) -> str | None:
    if cert_first:
        return None
    floor = best_possible_bound(n_cal, delta) if method == "sgr" else clopper_pearson_upper(0, n_cal, delta)
    if floor > epsilon:
        return (
            f"calibration split too small: {n_cal} certifying inputs can certify at best a risk of {floor:.4f} "
            f"(all accepted, none wrong) > epsilon {epsilon:g}; coverage 0"
        )
    return f"no threshold certified: too many errors among the best-scored inputs for epsilon {epsilon:g}; coverage 0"


@dataclass(frozen=True)
class Stream:
    """One stream drawn for certification: rows (m,), errors (m,), and the splits of both checks.

    ``splits``/``fit``: calibration and fitting masks (n_splits, m) of the split check;
    ``population``/``population_fit``: those of the held-out-population check (None when the
    stream is too small for one).
    """

    rows: np.ndarray
    errors: np.ndarray
    splits: np.ndarray
    fit: np.ndarray
    population: np.ndarray | None
    population_fit: np.ndarray | None


def prepare_stream(scored: Scored, stream: str, mixed: tuple[str, ...], config: GoldConfig) -> Stream:
    """Draw one stream's splits (and its population check's, when it has ``population_min`` inputs)."""
    rows, errors = scored.stream(mixed if stream == "mixed" else ())
    splits = random_splits(len(rows), config.n_splits, config.cal_fraction, config.seed)
    population = population_fit = None
    if config.population_fraction is not None and len(rows) >= config.population_min:
        population = random_splits(len(rows), config.n_splits, config.population_fraction, config.seed + 1)
        population_fit = fit_parts(population, config.fit_fraction, config.seed + 1)
    return Stream(
        rows, errors, splits, fit_parts(splits, config.fit_fraction, config.seed), population, population_fit
    )


def certify_stream(
    scored: Scored, stream: str, drawn: Stream, config: GoldConfig
) -> tuple[list[dict], list[dict], dict | None]:
    """(leaderboard entries, split-check rows, the combined score's fits by epsilon, or None) of one drawn stream.

    Every entry is certified at every epsilon; ``combo`` is fitted for each epsilon on its own
    (:func:`au.gold.combo.choose_combinations`), so each of its certificates has its own scores.
    """
    candidates = {k: (tuple(config.epsilons), v[drawn.rows], v[drawn.rows]) for k, v in scored.scores.items()}
    combination = None
    names = combined_entries(config.combo, scored.detectors)
    if names:
        matrix = np.stack([scored.scores[n][drawn.rows] for n in names], axis=1)
        fitted = per_split_scores(names, matrix, drawn.errors, drawn.fit, drawn.splits & ~drawn.fit,
                                  config.epsilons, config.delta, config.seed)  # fmt: skip
        population = {}
        if drawn.population is not None:
            population = per_split_scores(names, matrix, drawn.errors, drawn.population_fit,
                                          drawn.population & ~drawn.population_fit, config.epsilons,
                                          config.delta, config.seed)  # fmt: skip
        combination = {}
        for eps, (combined, fits) in fitted.items():
            candidates[(COMBO, eps)] = ((eps,), combined, population[eps][0] if population else None)
            combination[f"{eps:g}"] = summary(fits)
    entries, split_rows = [], []
    for key, (epsilons, s, held_out) in candidates.items():
        got, rows = _certify_entry(scored, stream, drawn, config, key if isinstance(key, str) else COMBO,
                                   epsilons, s, held_out)  # fmt: skip
        entries, split_rows = entries + got, split_rows + rows
    return entries, split_rows, combination


def _certify_entry(scored, stream: str, drawn: Stream, config: GoldConfig, key: str, epsilons, s, population):
    """(entries, split-check rows) of one entry at ``epsilons`` under every method.

    ``s`` are its scores of the stream (n,) or, fitted per split, (n_splits, n); ``population``
    the same for the held-out-population check.
    """
    errors, splits = drawn.errors, drawn.splits
    first = s if s.ndim == 1 else s[0]
    areas = _areas(first, errors, ~drawn.fit[0] if s.ndim == 2 else slice(None))
    who = _who(scored, key)
    entries, split_rows = [], []
    for method in config.methods:
        uses_fit = method == "ltt" or key == COMBO
        fit = drawn.fit if uses_fit else None
        checks = split_check(s, errors, epsilons, config.delta, splits, method=method, fit=fit)
        held_out = _population_checks(population, drawn, config, epsilons, method, uses_fit)
        for k, check in enumerate(checks):
            entry = {"stream": stream, "entry": key, "method": method, **who}
            certifying = splits[0] & ~drawn.fit[0] if uses_fit else splits[0]
            entry.update(_entry(check, certifying, splits[0], areas, method))
            entry["population"] = _population_entry(held_out[k], drawn.population) if held_out else None
            entry["verdict"] = verdict(entry)
            if stream == "mixed":
                entry.update(_mixed_shares(first, check, splits[0], scored.is_ood[drawn.rows]))
            entries.append(entry)
            split_rows += _split_rows(stream, key, method, "split", check)
            if held_out:
                split_rows += _split_rows(stream, key, method, "population", held_out[k])
    return entries, split_rows


def _who(scored: Scored, key: str) -> dict:
    if key == COMBO:
        return {"detector": COMBO, "layer": None}
    return {k: scored.entries[key][k] for k in ("detector", "layer")}


def _population_checks(scores, drawn: Stream, config: GoldConfig, epsilons, method: str, uses_fit: bool):
    """The held-out-population check of one entry and method at ``epsilons`` (empty when the stream has none)."""
    if drawn.population is None:
        return []
    fit = drawn.population_fit if uses_fit else None
    return split_check(scores, drawn.errors, epsilons, config.delta, drawn.population, method=method, fit=fit)


def _population_entry(check: SplitCheck, population: np.ndarray) -> dict:
    lo, hi = check.violation_interval()
    return {
        "violation_rate": check.violation_rate,
        "violation_ci": [lo, hi],
        "coverage_mean": float(check.coverage.mean()),
        "n_cal": int(population[0].sum()),
        "n_test": int((~population[0]).sum()),
    }


def verdict(entry: dict) -> str:
    """Whether an entry's guarantee held: ``held`` (violation rate <= delta), ``within noise`` (above delta
    but delta inside its 95% interval) or ``violated`` (the whole interval above delta).

    Measured against the held-out population where there is one, otherwise on the split check.
    """
    measured = entry["population"] or entry
    if measured["violation_rate"] <= entry["delta"]:
        return "held"
    return "within noise" if measured["violation_ci"][0] <= entry["delta"] else "violated"


def guarantee_line(entries: list[dict], delta: float) -> dict:
    """One stream's verdict: whether the guarantee held over its entries, in one line, and the counts."""
    counts = {v: sum(e["verdict"] == v for e in entries) for v in ("held", "within noise", "violated")}
    measured = [e["population"] or e for e in entries]
    worst = max(range(len(entries)), key=lambda i: measured[i]["violation_rate"])
    w = measured[worst]
    where = (
        f"measured on a held-out population of {w['n_test']:,} inputs per draw"
        if entries[worst]["population"]
        else f"measured on split test parts of {w['n_test']:,} inputs"
    )
    largest = (
        f"largest violation rate {w['violation_rate']:.3f} (95% CI {w['violation_ci'][0]:.3f}-"
        f"{w['violation_ci'][1]:.3f}, {entries[worst]['entry']}, {entries[worst]['method']}, "
        f"epsilon {entries[worst]['epsilon']:g})"
    )
    if counts["violated"]:
        head = f"The guarantee failed: {counts['violated']} of {len(entries)} certificates violated delta = {delta:g} beyond their 95% interval"
    elif counts["within noise"]:
        head = (
            f"The guarantee held within noise: {counts['held']} of {len(entries)} certificates at or below delta = "
            f"{delta:g}, {counts['within noise']} above it but with delta inside their 95% interval"
        )
    else:
        head = f"The guarantee held: all {len(entries)} certificates at or below delta = {delta:g}"
    return {"held": not counts["violated"], "counts": counts, "line": f"{head}; {largest}, {where}."}


def _mixed_shares(scores: np.ndarray, check: SplitCheck, cal0: np.ndarray, is_ood: np.ndarray) -> dict:
    """Shares of the first split's test in-distribution and OOD inputs that its certificate accepts."""
    test0 = ~cal0
    accepted = scores[test0] >= check.first.threshold
    return {
        "in_coverage": float(accepted[~is_ood[test0]].mean()),
        "ood_accepted": float(accepted[is_ood[test0]].mean()) if is_ood[test0].any() else 0.0,
    }


def _areas(scores: np.ndarray, errors: np.ndarray, rows) -> tuple[float, float]:
    """(AURC, E-AURC) of ``scores`` on ``rows`` of the stream (a combined score: outside its fitting part)."""
    area = aurc(scores[rows], errors[rows])
    return area, area - optimal_aurc(errors[rows])


def _entry(check: SplitCheck, certifying0, cal0, areas: tuple[float, float], method: str) -> dict:
    """The numbers of one (entry, method, epsilon): the first split's certificate, and summaries over all splits."""
    first = check.first
    return {
        "epsilon": check.epsilon,
        "delta": check.delta,
        "coverage": float(check.coverage[0]),
        "threshold": first.threshold if first.certified else None,
        "risk_bound": first.risk_bound,
        "test_risk": float(check.test_risk[0]),
        "aurc": areas[0],
        "e_aurc": areas[1],
        "violation_rate": check.violation_rate,
        "violation_ci": list(check.violation_interval()),
        "certified": bool(first.certified),
        "cal_coverage": first.coverage,
        "coverage_mean": float(check.coverage.mean()),
        "coverage_std": float(check.coverage.std()),
        "test_risk_mean": float(check.test_risk[check.certified].mean()) if check.certified.any() else None,
        "certified_rate": float(check.certified.mean()),
        "n_splits": int(len(check.coverage)),
        "n_cal": int(cal0.sum()),
        "n_certify": int(certifying0.sum()),
        "n_test": int((~cal0).sum()),
        "note": _note(first.certified, int(certifying0.sum()), check.epsilon, check.delta, method),
    }


def _split_rows(stream: str, key: str, method: str, kind: str, check: SplitCheck) -> list[dict]:
    """One row of ``splits.parquet`` per split of one (stream, entry, method, check, epsilon)."""
    return [
        {
            "stream": stream,
            "entry": key,
            "method": method,
            "check": kind,
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
        key=lambda e: (
            STREAMS.index(e["stream"]),
            e["epsilon"],
            -e["coverage_mean"],
            e["aurc"],
            e["entry"],
            e["method"],
        ),
    )
    group, n = None, 0
    for e in order:
        n = n + 1 if (e["stream"], e["epsilon"]) == group else 1
        group = (e["stream"], e["epsilon"])
        e["rank"] = n
    return [{"rank": e.pop("rank"), **e} for e in order]
