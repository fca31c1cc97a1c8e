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
    "coverage": "coverage",
    "coverage_mean": "mean coverage",
    "threshold": "threshold",
    "risk_bound": "risk bound",
    "test_risk": "test risk",
    "aurc": "AURC",
    "violation_rate": "violation rate",
}


def leaderboard_rows(result: dict, fields=tuple(COLUMNS), stream: str | None = None) -> list[list]:
    """One row of ``fields`` per entry (of ``stream`` only, when given), in rank order."""
    return [[e[f] for f in fields] for e in result["entries"] if stream is None or e["stream"] == stream]


_EXTRA = {"in_coverage": "in-dist. accepted", "ood_accepted": "OOD accepted"}
_STREAM_TEXT = {
    "in": "in-distribution test inputs (an accepted wrong prediction is an error)",
    "mixed": "in-distribution test inputs mixed with OOD inputs (an accepted OOD input is an error too)",
}


def add_gold_section(report: Report, result: dict, out: Path) -> None:
    """Leaderboards per stream, calibration, and coverage vs training size, with their figures from ``out``."""
    out = Path(out)
    c = result["config"]
    figures = result["figures"]
    report.heading("Certified coverage: the gold leaderboard")
    report.paragraph(
        f"For each coverage score and target risk epsilon, SGR (Geifman & El-Yaniv 2017, arXiv 1705.08500) picks, "
        f"on a random calibration part ({100 * c['cal_fraction']:.0f}%) of the inputs, the threshold of largest "
        f"coverage whose Clopper-Pearson upper bound on the selective risk is at most epsilon at confidence "
        f"1 - delta (delta = {c['delta']:g}, split over the thresholds the binary search may test). Coverage and "
        f"test risk are measured on the rest; the violation rate is the share of {c['n_splits']} random "
        "splits whose test risk exceeded epsilon, which the guarantee keeps at most delta. Threshold, bound, "
        "coverage and test risk are the first split's; entries are ranked by their mean coverage over all splits, "
        "and the first with any coverage is the gold of its epsilon."
    )
    for stream, info in result["streams"].items():
        rows = [e for e in result["entries"] if e["stream"] == stream]
        fields = [f for f in COLUMNS if f != "stream"]
        if stream == "mixed":
            fields += ["in_coverage", "ood_accepted"]
        report.table(
            [COLUMNS.get(f, _EXTRA.get(f)) for f in fields],
            leaderboard_rows(result, fields, stream),
            caption=f"{_STREAM_TEXT[stream]}: {info['inputs']:,} inputs, error rate {info['error_rate']:.4f}",
        )
        worst = max(e["violation_rate"] for e in rows)
        report.paragraph(
            f"Largest violation rate over these entries: {worst:.3f} (delta {c['delta']:g}).", note=True
        )
        if worst > c["delta"]:
            report.paragraph(
                f"A rate a little above delta can come from the test half's own sampling noise: the certificate "
                f"bounds the true selective risk, the check measures it on the inputs a threshold accepts among "
                f"{rows[0]['n_test']:,} test inputs; with {c['n_splits']} splits the rate itself is uncertain by "
                f"about {(c['delta'] * (1 - c['delta']) / c['n_splits']) ** 0.5:.3f}. More inputs or splits settle it.",
                note=True,
            )
        notes = sorted({e["note"] for e in rows if e["note"]})
        for n in notes:
            report.paragraph(n, note=True)
        if f"risk_coverage_{stream}" in figures:
            report.image(
                out / figures[f"risk_coverage_{stream}"], f"Risk-coverage curves, {_STREAM_TEXT[stream]}"
            )
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


def write_report(result: dict, out: Path) -> Path:
    """``out/report.html``: the gold section alone."""
    report = Report("AU gold leaderboard")
    add_gold_section(report, result, out)
    return report.write(Path(out) / "report.html")
