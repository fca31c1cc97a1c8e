"""The data a guarantee needs: certified coverage against training-set size, fitted and extrapolated.

Along an ``au ablate`` sweep (rows of :func:`au.gold.training_size.coverage_vs_training`), the
share of test inputs a score can accept with risk at most ``epsilon`` - certified with probability
``1 - delta`` by the leaderboard's certificate (Learn then Test by default, arXiv 2110.01052; SGR,
arXiv 1705.08500, with ``--method sgr``) - grows with the model's training examples ``m``. Its complement,
the share left uncovered, is fitted with the power law of learning curves (Hestness et al. 2017,
arXiv 1712.00409; the same form with an asymptote as Rosenfeld et al. 2019, arXiv 1909.12673)::

    1 - coverage(m) = a * m^(-b) + c,        c >= 0 the uncovered share no amount of data removes

by least squares on log(1 - coverage) (:func:`au.curves.power_law.fit_power_law`), per
(detector, epsilon). From the fit: the training examples a target coverage needs,
``m* = (a / (1 - target - c))^(1/b)``, "not reachable" when the asymptote ``1 - c`` lies below the
target; bootstrap intervals over trials, resampled within each size
(:func:`au.curves.bootstrap.resample_indices`); and a held-out check like ``au curve``'s: fit on
the keep-fractions up to ``held_out_max_fraction`` (set it below the sweep's largest fraction: a
sweep of fractions 0.002-0.1 holds nothing out at the default 0.2), predict the coverage of the
larger ones, report the miss in percentage points.

Trials whose coverage is 0 (no split certified anything) are *censored*: they say only that the
curve is at or below 0 there, so they are kept in the tables but left out of the fits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from au.curves.bootstrap import interval, resample_indices
from au.curves.power_law import PowerLawFit, fit_power_law
from au.errors import AUError

FORMULA = "1 - coverage(m) = a * m^(-b) + c"
MIN_SIZES = 3  # a power law with an asymptote has three parameters


def needed_data(
    rows: list[dict],
    target: float = 0.95,
    held_out_max_fraction: float = 0.2,
    seed: int = 0,
    *,
    bootstrap: int = 1000,
    level: float = 0.95,
    uncovered_floor: float = 1e-4,
    tolerance_pp: float = 2.0,
) -> dict:
    """Per (detector, epsilon): the fitted coverage curve, the ``m`` that ``target`` needs, a held-out check.

    Parameters
    ----------
    rows : list of dict
        One per (trial, detector, epsilon), as :func:`coverage_vs_training` returns them (the
        columns of ``TRAINING_SIZE_SCHEMA``); read here: ``detector``, ``epsilon``, ``n_train``,
        ``coverage_mean``, ``fraction``, ``trial`` and ``kind`` (rows of a class sweep are skipped).
    target : float
        Certified coverage to reach, in (0, 1).
    held_out_max_fraction : float
        The held-out check fits on keep-fractions <= this and predicts the larger ones.
    seed, bootstrap, level : int, int, float
        Seed and number of bootstrap resamples; central level of every interval and band.
    uncovered_floor : float
        Smallest uncovered share fitted (a coverage of 1 has no logarithm): half an input of a
        5,000-input test part by default.
    tolerance_pp : float
        The held-out check passes when every miss is at most this many percentage points.

    Returns
    -------
    dict (JSON-ready: no NaN or infinity)
        ``formula``, ``target``, ``held_out_max_fraction``, ``tolerance_pp``, ``bootstrap``
        (``samples``, ``level``, ``seed``), ``note`` (or None) and ``entries``, one per (detector,
        epsilon), detectors in the rows' order, epsilons ascending: ``detector``, ``epsilon``, ``note`` (None when fitted),
        ``trials`` and ``sizes`` (the points), ``fit``, ``needed``, ``band``, ``held_out`` (each
        None when not fitted); see :func:`_fit_block`, :func:`_needed_block`, :func:`_band` and
        :func:`_held_out`.
    """
    if not 0.0 < target < 1.0:
        raise AUError(f"needed data: target coverage must be in (0, 1), got {target}")
    if bootstrap < 10:
        raise AUError(f"needed data: bootstrap needs at least 10 resamples, got {bootstrap}")
    if not 0.0 < held_out_max_fraction < 1.0:
        raise AUError(
            f"needed data: held_out_max_fraction must be in (0, 1), got {held_out_max_fraction}; "
            "pass a keep-fraction below the sweep's largest"
        )
    s = _Settings(target, held_out_max_fraction, seed, bootstrap, level, uncovered_floor, tolerance_pp)
    used = [r for r in rows if r.get("kind", "fraction") == "fraction"]
    note = None
    if not rows:
        note = "no rows: nothing to fit"
    elif not used:
        note = "a class sweep: the training-set size hardly changes along it, so no coverage curve is fitted"
    detectors = list(dict.fromkeys(r["detector"] for r in used))
    epsilons = sorted({float(r["epsilon"]) for r in used})
    entries = []
    for det in detectors:
        for eps in epsilons:
            sel = [r for r in used if r["detector"] == det and float(r["epsilon"]) == eps]
            if sel:
                entries.append(_entry(det, eps, sel, s))
    return {
        "formula": FORMULA,
        "target": target,
        "held_out_max_fraction": held_out_max_fraction,
        "tolerance_pp": tolerance_pp,
        "bootstrap": {"samples": bootstrap, "level": level, "seed": seed},
        "note": note,
        "entries": entries,
    }


@dataclass(frozen=True)
class _Settings:
    target: float
    held_out_max_fraction: float
    seed: int
    bootstrap: int
    level: float
    floor: float
    tolerance_pp: float


@dataclass(frozen=True)
class _Points:
    """One (detector, epsilon)'s trials, arrays (n,): training examples, coverage, keep-fraction, trial."""

    m: np.ndarray
    coverage: np.ndarray
    fraction: np.ndarray
    trial: np.ndarray

    @classmethod
    def of(cls, rows: list[dict]) -> _Points:
        def col(values) -> np.ndarray:
            return np.array(list(values), dtype=float)

        return cls(
            m=col(r["n_train"] for r in rows),
            coverage=col(r["coverage_mean"] for r in rows),
            fraction=col(r.get("fraction", r["n_train"]) for r in rows),  # a size's trials share it
            trial=col(r.get("trial", 0) for r in rows),
        )

    def subset(self, sel: np.ndarray) -> _Points:
        return _Points(self.m[sel], self.coverage[sel], self.fraction[sel], self.trial[sel])

    def uncovered(self, floor: float) -> np.ndarray:
        return np.maximum(1.0 - self.coverage, floor)


@dataclass(frozen=True)
class _CurveFit:
    """The fit on the trials with coverage > 0, and its refits on bootstrap resamples of the trials."""

    point: PowerLawFit
    boot: list[PowerLawFit]
    skipped: int  # resamples left with fewer than MIN_SIZES covered sizes
    method: str


def coverage_at(fit: PowerLawFit, m) -> np.ndarray:
    """Certified coverage the fit predicts at ``m`` training examples, clipped to [0, 1]."""
    return np.clip(1.0 - fit.error(m), 0.0, 1.0)


def _fit(points: _Points, s: _Settings) -> _CurveFit | str:
    """The power law on the covered trials with bootstrap refits, or a note saying why there is none."""
    sizes = len(np.unique(points.fraction))
    covered = len(np.unique(points.fraction[points.coverage > 0]))
    if sizes < MIN_SIZES:
        return f"only {sizes} training-set size(s); a coverage curve needs {MIN_SIZES}"
    if covered < MIN_SIZES:
        return (
            f"only {covered} of {sizes} training-set sizes have certified coverage > 0; "
            f"a coverage curve needs {MIN_SIZES}"
        )
    uncovered = points.uncovered(s.floor)
    pos = points.coverage > 0
    point = fit_power_law(points.m[pos], uncovered[pos])
    boot, skipped = [], 0
    draws, method = resample_indices(points.fraction, s.bootstrap, s.seed)
    for idx in draws:
        idx = idx[points.coverage[idx] > 0]
        if len(np.unique(points.fraction[idx])) < MIN_SIZES:
            skipped += 1
            continue
        boot.append(fit_power_law(points.m[idx], uncovered[idx], start=point))
    return _CurveFit(point, boot, skipped, method)


def _num(x) -> float | None:
    """A float for JSON: None for NaN or infinity."""
    return float(x) if x is not None and math.isfinite(x) else None


def _interval(values, level: float) -> list[float | None]:
    return [_num(v) for v in interval(np.asarray(values, dtype=float), level)]


def _entry(detector: str, epsilon: float, rows: list[dict], s: _Settings) -> dict:
    points = _Points.of(rows)
    entry = {
        "detector": detector,
        "epsilon": epsilon,
        "note": None,
        "trials": [
            {"trial": int(t), "fraction": float(f), "n_train": int(m), "coverage": float(c)}
            for t, f, m, c in zip(points.trial, points.fraction, points.m, points.coverage, strict=True)
        ],
        "sizes": _sizes(points),
        "fit": None,
        "needed": None,
        "band": None,
        "held_out": _held_out(points, s),
    }
    fit = _fit(points, s)
    if isinstance(fit, str):
        entry["note"] = fit
        return entry
    entry["fit"] = _fit_block(fit, points, s)
    entry["needed"] = _needed_block(fit, points, s)
    entry["band"] = _band(fit, points, entry["needed"]["n_train"], s)
    return entry


def _sizes(points: _Points) -> list[dict]:
    """Per keep-fraction: mean training examples, trials, mean, lowest and highest coverage."""
    out = []
    for f in np.unique(points.fraction):
        sel = points.fraction == f
        cov = points.coverage[sel]
        out.append(
            {
                "fraction": float(f),
                "n_train_mean": float(points.m[sel].mean()),
                "trials": int(sel.sum()),
                "coverage_mean": float(cov.mean()),
                "coverage_min": float(cov.min()),
                "coverage_max": float(cov.max()),
                "fitted_trials": int((cov > 0).sum()),
            }
        )
    return out


def _fit_block(fit: _CurveFit, points: _Points, s: _Settings) -> dict:
    """``a``, ``b``, ``c``, the asymptotic coverage ``1 - c``, their intervals, and the fit's RMSE in pp."""
    pos = points.coverage > 0
    residual = coverage_at(fit.point, points.m[pos]) - points.coverage[pos]
    p = fit.point
    return {
        "a": p.a,
        "b": p.b,
        "c": p.e_inf,
        "asymptotic_coverage": 1.0 - p.e_inf,
        "a_interval": _interval([f.a for f in fit.boot], s.level),
        "b_interval": _interval([f.b for f in fit.boot], s.level),
        "c_interval": _interval([f.e_inf for f in fit.boot], s.level),
        "asymptotic_coverage_interval": _interval([1.0 - f.e_inf for f in fit.boot], s.level),
        "rmse_coverage_pp": float(100.0 * np.sqrt(np.mean(residual**2))),
        "trials_fitted": int(pos.sum()),
        "trials_censored": int((~pos).sum()),
        "draws": len(fit.boot),
        "draws_skipped": fit.skipped,
        "method": fit.method,
    }


def _needed_block(fit: _CurveFit, points: _Points, s: _Settings) -> dict:
    """Training examples for ``s.target``: the point estimate, its bootstrap interval, unreachable draws."""
    point = fit.point.needed(s.target)  # PowerLawFit reads "accuracy" as 1 - its fitted quantity
    boot = np.array([f.needed(s.target) for f in fit.boot], dtype=float)
    reachable = math.isfinite(point)
    unreachable = int((~np.isfinite(boot)).sum())
    return {
        "target": s.target,
        "reachable": reachable,
        "n_train": _num(point),
        "interval": _interval(boot, s.level) if len(boot) else [None, None],
        "draws": len(boot),
        "unreachable_draws": unreachable,
        "reachable_share": float(1.0 - unreachable / len(boot)) if len(boot) else None,
        "extrapolation_factor": _num(point / points.m.max()),
        "note": None if reachable else _unreachable(fit, s),
    }


def _unreachable(fit: _CurveFit, s: _Settings) -> str:
    asymptote = 1.0 - fit.point.e_inf
    if asymptote < s.target:
        return f"not reachable: the fitted asymptote 1 - c = {asymptote:.4f} is below the target {s.target:g}"
    return (
        f"not reachable: the fit is too flat to reach {s.target:g} at any training-set size a float can count"
    )


def _band(fit: _CurveFit, points: _Points, needed: float | None, s: _Settings) -> dict:
    """The fitted coverage and its bootstrap band on a log grid of ``m`` (up to past the needed ``m``)."""
    top = 2.0 * points.m.max()
    if needed is not None and needed < 100.0 * points.m.max():
        top = max(top, 1.3 * needed)
    grid = np.logspace(np.log10(0.8 * points.m.min()), np.log10(top), 120)
    band = {"n_train": grid.tolist(), "coverage": coverage_at(fit.point, grid).tolist()}
    if fit.boot:
        curves = np.array([coverage_at(f, grid) for f in fit.boot])  # (draws, grid)
        tail = (1.0 - s.level) / 2.0
        band["lower"] = np.quantile(curves, tail, axis=0).tolist()
        band["upper"] = np.quantile(curves, 1.0 - tail, axis=0).tolist()
    return band


def _held_out(points: _Points, s: _Settings) -> dict:
    """Fit on keep-fractions <= ``s.held_out_max_fraction``; predict each larger one's mean coverage."""
    fit_sel = points.fraction <= s.held_out_max_fraction + 1e-12
    held = np.unique(points.fraction[~fit_sel])
    out = {"fit_max_fraction": s.held_out_max_fraction, "skipped": None, "fit": None, "points": [],
           "max_abs_miss_pp": None, "mean_abs_miss_pp": None, "within_tolerance": None}  # fmt: skip
    if not len(held):
        out["skipped"] = (
            f"no keep-fractions above {s.held_out_max_fraction:g} to hold out (the sweep's largest is "
            f"{points.fraction.max():g}); fit on fewer with a smaller held_out_max_fraction (au gold --holdout-max)"
        )
        return out
    fit = _fit(points.subset(fit_sel), s)
    if isinstance(fit, str):
        out["skipped"] = f"at keep-fractions <= {s.held_out_max_fraction:g}: {fit}"
        return out
    p = fit.point
    out["fit"] = {"a": p.a, "b": p.b, "c": p.e_inf, "needed_n_train": _num(p.needed(s.target))}
    for f in held:
        sel = points.fraction == f
        n, measured = float(points.m[sel].mean()), float(points.coverage[sel].mean())
        predicted = float(coverage_at(p, n))
        out["points"].append(
            {
                "fraction": float(f),
                "n_train": n,
                "measured_coverage": measured,
                "predicted_coverage": predicted,
                "interval": _interval([coverage_at(b, n) for b in fit.boot], s.level),
                "miss_pp": 100.0 * (predicted - measured),
            }
        )
    misses = np.abs([q["miss_pp"] for q in out["points"]])
    out["max_abs_miss_pp"], out["mean_abs_miss_pp"] = float(misses.max()), float(misses.mean())
    out["within_tolerance"] = bool(misses.max() <= s.tolerance_pp)
    return out
