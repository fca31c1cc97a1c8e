"""The leaderboard as a report section (used by ``au gold`` and ``au demo``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from au.gold.plots import density_detector
from au.gold.tables import TRAINING_SIZE_FILE, TRAINING_SIZE_SCHEMA
from au.report import Report
from au.tables import read_table

# the columns of a printed leaderboard: entry field -> header
COLUMNS = {
    "stream": "stream",
    "epsilon": "epsilon",
    "rank": "rank",
    "entry": "entry",
    "method": "method",
    "coverage": "coverage",
    "coverage_mean": "mean coverage",
    "threshold": "threshold",
    "risk_bound": "risk bound",
    "test_risk": "test risk",
    "aurc": "AURC",
    "violation_rate": "violation rate",
    "verdict": "guarantee",
}


def leaderboard_rows(result: dict, fields=tuple(COLUMNS), stream: str | None = None) -> list[list]:
    """One row of ``fields`` per entry (of ``stream`` only, when given), in rank order."""
    return [[e[f] for f in fields] for e in result["entries"] if stream is None or e["stream"] == stream]


_EXTRA = {"in_coverage": "in-dist. accepted", "ood_accepted": "OOD accepted"}
_STREAM_TEXT = {
    "in": "in-distribution test inputs (an accepted wrong prediction is an error)",
    "mixed": "in-distribution test inputs mixed with OOD inputs (an accepted OOD input is an error too)",
}
_METHOD_TEXT = {
    "ltt": "Learn then Test (Angelopoulos et al. 2021, arXiv 2110.01052): the thresholds are put in order on a "
    "fitting part of the calibration data that never certifies, starting at the one that looks most "
    "certifiable, then towards more coverage; each is tested on the rest at the full delta with the exact "
    "binomial p-value, and testing stops at the first that fails",
    "sgr": "SGR (Geifman & El-Yaniv 2017, arXiv 1705.08500): a binary search over the calibration scores from "
    "half coverage, each tested threshold's Clopper-Pearson bound at delta split over the tests the search "
    "may make",
}


def add_gold_section(report: Report, result: dict, out: Path) -> None:
    """Leaderboards per stream, the guarantee's check, the combined score, calibration, and coverage vs training size."""
    out = Path(out)
    c = result["config"]
    figures = result["figures"]
    methods = ("sgr", "ltt") if c.get("method") == "both" else (c.get("method", "sgr"),)
    report.heading("Certified coverage: the gold leaderboard")
    report.paragraph(
        f"For each coverage score and target risk epsilon, the certificate picks, on a random calibration part "
        f"({100 * c['cal_fraction']:.0f}%) of the inputs, the threshold of largest coverage whose selective risk is "
        f"at most epsilon with probability 1 - delta (delta = {c['delta']:g}). "
        + " ".join(f"{m.upper()}: {_METHOD_TEXT[m]}." for m in methods)
        + f" Coverage and test risk are measured on the rest; the violation rate is the share of {c['n_splits']} "
        "random splits whose test risk exceeded epsilon, which the guarantee keeps at most delta. Threshold, bound, "
        "coverage and test risk are the first split's; entries are ranked by their mean coverage over all splits, "
        "and the first with any coverage is the gold of its epsilon. combo is a score combined from the others, "
        "chosen for each epsilon on each split's fitting part."
    )
    for stream, info in result["streams"].items():
        _stream_section(report, result, stream, info, out)
    if len(methods) == 2:
        _methods_section(report, result)
    cal = result.get("calibration")
    if cal:
        report.heading("Calibration of the softmax", level=3)
        report.paragraph(
            f"Temperature scaling (Guo et al. 2017, arXiv 1706.04599) fitted on the first split's calibration part "
            f"({cal['n_cal']:,} inputs); ECE ({cal['bins']} equal-width bins) and NLL on its test part "
            f"({cal['n_test']:,} inputs)."
        )
        report.table(
            ["", "temperature", "ECE", "NLL"],
            [
                ["softmax", 1.0, cal["ece_before"], cal["nll_before"]],
                ["temperature-scaled", cal["temperature"], cal["ece_after"], cal["nll_after"]],
            ],
        )
        if cal.get("temperature_at_bound"):
            report.paragraph(
                f"The fitted temperature {cal['temperature']:.3g} sits at the edge of the searched range "
                "(0.01 to 100): the optimum lies beyond it.",
                note=True,
            )
        if "reliability" in figures:
            report.image(
                out / figures["reliability"], "Reliability diagrams before and after temperature scaling"
            )
    if result.get("training_size"):
        _training_size_section(report, result, out)


def _stream_section(report: Report, result: dict, stream: str, info: dict, out: Path) -> None:
    """One stream's leaderboard, the verdict of its guarantee in one line, notes, combo's weights, its figure."""
    rows = [e for e in result["entries"] if e["stream"] == stream]
    fields = [f for f in COLUMNS if f != "stream"]
    if stream == "mixed":
        fields += ["in_coverage", "ood_accepted"]
    report.table(
        [COLUMNS.get(f, _EXTRA.get(f)) for f in fields],
        leaderboard_rows(result, fields, stream),
        caption=f"{_STREAM_TEXT[stream]}: {info['inputs']:,} inputs, error rate {info['error_rate']:.4f}",
    )
    if info.get("guarantee"):
        report.paragraph(info["guarantee"]["line"], note=not info["guarantee"]["held"])
    for n in sorted({e["note"] for e in rows if e["note"]}):
        report.paragraph(n, note=True)
    if info.get("combo"):
        _combo_table(report, stream, info["combo"])
    if f"risk_coverage_{stream}" in result["figures"]:
        report.image(
            out / result["figures"][f"risk_coverage_{stream}"],
            f"Risk-coverage curves, {_STREAM_TEXT[stream]}",
        )


def _combo_table(report: Report, stream: str, combos: dict) -> None:
    """combo on one stream: what its fitting parts chose at each epsilon, and the logistic weights."""
    if "choices" in combos:  # a leaderboard written before combo was chosen per epsilon: one fit for all
        combos = {"all": combos}
    rows = []
    for eps, combo in combos.items():
        kinds = {"combination": 0, "entry": 0, "weakest": 0}
        for choice, count in combo["choices"].items():
            kind = (
                "combination"
                if choice == "combination"
                else "entry"
                if choice in combo["entries"]
                else "weakest"
            )
            kinds[kind] += count
        top, count = max(combo["choices"].items(), key=lambda item: item[1])
        rows.append([eps, kinds["combination"], kinds["entry"], kinds["weakest"], f"{top} ({count})"])
    report.table(
        [
            "epsilon",
            "logistic combination",
            "one entry alone",
            "weakest rank of entries",
            "chosen most often (splits)",
        ],
        rows,
        caption=f"combo on the {stream} stream: the candidate each split's fitting part chose, per epsilon "
        f"(counts of {next(iter(combos.values()))['splits']} splits)",
    )
    combo = next(iter(combos.values()))  # one logistic fit per split serves every epsilon
    report.table(
        ["entry", "weight (first split)", "mean over splits", "sd over splits"],
        [
            [n, combo["weights"][n], combo["weights_mean"][n], combo["weights_std"][n]]
            for n in combo["features"]
        ],
        caption=f"combo's logistic combination on the {stream} stream: weights on each entry's rank log-odds and "
        f"on the weakest of them; equal weights on {combo['equal_weight_splits']} of {combo['splits']} splits "
        "(too few errors in the fitting part)",
    )


def _methods_section(report: Report, result: dict) -> None:
    """Learn then Test beside SGR: the mean coverage of each entry under both, and the difference."""
    by = {(e["stream"], e["epsilon"], e["entry"], e["method"]): e for e in result["entries"]}
    rows = []
    for (stream, eps, entry, method), e in by.items():
        if method == "sgr" and (stream, eps, entry, "ltt") in by:
            ltt = by[(stream, eps, entry, "ltt")]
            rows.append(
                [
                    stream,
                    eps,
                    entry,
                    e["coverage_mean"],
                    ltt["coverage_mean"],
                    ltt["coverage_mean"] - e["coverage_mean"],
                ]
            )
    rows.sort(key=lambda r: (r[0], r[1], -r[4]))
    report.heading("Learn then Test beside SGR", level=3)
    report.table(
        ["stream", "epsilon", "entry", "SGR mean coverage", "LTT mean coverage", "LTT - SGR"],
        rows,
        caption=f"LTT covers at least as much as SGR in {sum(r[5] >= 0 for r in rows)} of {len(rows)} entries",
    )


def _training_size_section(report: Report, result: dict, out: Path) -> None:
    ts = result["training_size"]
    rows = read_table(out / TRAINING_SIZE_FILE, TRAINING_SIZE_SCHEMA, "au gold").to_pylist()
    eps = result["config"]["epsilons"][len(result["config"]["epsilons"]) // 2]
    detectors = list(dict.fromkeys(r["detector"] for r in rows))
    density = density_detector(detectors)
    report.heading("Certified coverage vs training examples", level=3)
    report.paragraph(
        f"Each model of the ablation sweep {ts['sweep']} gets its detectors fitted on its own training subset and "
        f"scores {'at most ' + format(ts['limit'], ',') + ' ' if ts['limit'] else 'all '}test inputs; the same "
        "certification on the same number of random splits gives its coverage under the guarantee."
    )
    fractions = sorted({r["fraction"] for r in rows})
    table = []
    for f in fractions:
        sel = [r for r in rows if r["fraction"] == f and r["epsilon"] == eps]
        by = {d: [r for r in sel if r["detector"] == d] for d in detectors}
        first = by[detectors[0]]
        table.append(
            [
                f,
                int(round(np.mean([r["n_train"] for r in first]))),
                float(np.mean([r["test_accuracy"] for r in first])),
                *(float(np.mean([r["coverage_mean"] for r in by[d]])) for d in detectors),
                *([float(np.mean([r["score_mean"] for r in by[density]]))] if density else []),
            ]
        )
    report.table(
        [
            "fraction",
            "training examples",
            "test accuracy",
            *(f"coverage {d}" for d in detectors),
            *([f"mean {density} log-density"] if density else []),
        ],
        table,
        caption=f"Mean over trials; coverage certified at epsilon {eps:g}, delta {result['config']['delta']:g}",
    )
    if "coverage_vs_training" in result["figures"]:
        report.image(
            out / result["figures"]["coverage_vs_training"],
            "Certified coverage vs training examples, and the mean coverage score of the test inputs",
        )
    if ts.get("needed_data"):
        _needed_data_section(report, ts["needed_data"], result, out)


def _needed_data_section(report: Report, needed: dict, result: dict, out: Path) -> None:
    """The training examples a target certified coverage needs, per detector and epsilon, with the held-out check."""
    report.heading("The data a guarantee needs", level=3)
    report.paragraph(
        f"Certified coverage against training examples m, fitted per detector and epsilon as {needed['formula']} "
        f"(a power law on the uncovered share with its floor c; trials that certified nothing are left out), "
        f"with {needed['bootstrap']['samples']} bootstrap draws over the trials. Needed: the m at which the fit "
        f"reaches a certified coverage of {needed['target']:g}, 'not reachable' where its asymptote 1 - c stays "
        f"below. Held out: the same fit on keep-fractions <= {needed['held_out_max_fraction']:g}, predicting the "
        f"larger ones; the miss is in percentage points (target: at most {needed['tolerance_pp']:g})."
    )
    if needed.get("note"):
        report.paragraph(needed["note"], note=True)
    rows = []
    for e in needed["entries"]:
        if e["note"]:
            rows.append([e["detector"], e["epsilon"], None, e["note"], None])
            continue
        n = e["needed"]
        lo, hi = n["interval"]
        need = f"{n['n_train']:,.0f} [{_count(lo)}, {_count(hi)}]" if n["reachable"] else "not reachable"
        held = e["held_out"]
        rows.append(
            [e["detector"], e["epsilon"], e["fit"]["asymptotic_coverage"], need, held.get("max_abs_miss_pp")]
        )
    report.table(
        [
            "detector",
            "epsilon",
            "asymptotic coverage 1 - c",
            f"examples for {needed['target']:g}",
            "held-out miss (pp)",
        ],
        rows,
    )
    report.paragraph(held_out_line(needed), note=True)
    if "needed_data" in result["figures"]:
        report.image(
            out / result["figures"]["needed_data"], "Certified coverage vs training examples, fitted"
        )


def held_out_line(needed: dict) -> str:
    """The held-out check of the needed-data fits in one line: the largest miss, or why there is none."""
    checks = [e["held_out"] for e in needed["entries"] if e.get("held_out")]
    done = [h for h in checks if h["max_abs_miss_pp"] is not None]
    head = f"Held-out check (fit on keep-fractions <= {needed['held_out_max_fraction']:g}): "
    if not done:
        reasons = sorted({h["skipped"] for h in checks if h["skipped"]})
        return head + ("not made: " + "; ".join(reasons) if reasons else "no entries") + "."
    worst = max(done, key=lambda h: h["max_abs_miss_pp"])
    predicted = sorted({p["fraction"] for h in done for p in h["points"]})
    within = sum(bool(h["within_tolerance"]) for h in done)
    unchecked = len(checks) - len(done)
    return (
        head + f"predicting keep-fractions {', '.join(f'{f:g}' for f in predicted)}, the largest miss is "
        f"{worst['max_abs_miss_pp']:.1f} pp of certified coverage (mean "
        f"{sum(h['mean_abs_miss_pp'] for h in done) / len(done):.1f} pp); within {needed['tolerance_pp']:g} pp "
        f"in {within} of {len(done)} entries checked"
        + (f"; {unchecked} not checked (too few sizes certifying anything there)." if unchecked else ".")
    )


def _count(n) -> str:
    return "open" if n is None else f"{n:,.0f}"


def write_report(result: dict, out: Path) -> Path:
    """``out/report.html``: the gold section alone."""
    report = Report("AU gold leaderboard")
    add_gold_section(report, result, out)
    return report.write(Path(out) / "report.html")
