"""From a trials table to learning-curve fits: PAC and power-law forms, bootstrap intervals, a held-out
check and the training examples a target accuracy needs. The result is what ``fits.json`` holds.

The x axis is ``n_train``, the examples a model was trained on (its validation carve-out excluded);
errors are test errors, floored at half an example of the test split so that a perfect score still
has a logarithm.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa

from au.curves.bootstrap import interval, resample_indices
from au.curves.config import CurveOptions
from au.curves.pac import PACFit, fit_pac
from au.curves.power_law import PowerLawFit, fit_power_law
from au.errors import AUError


@dataclass
class Fits:
    """Point fits and their bootstrap refits, for one set of points."""

    pac: PACFit
    power_law: PowerLawFit | None
    pac_boot: list[PACFit] = field(default_factory=list)
    power_boot: list[PowerLawFit] = field(default_factory=list)
    method: str = ""


def curve_points(table: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m = np.asarray(table.column("n_train").to_numpy(), dtype=float)
    acc = np.asarray(table.column("test_accuracy").to_numpy(), dtype=float)
    n_test = np.asarray(table.column("n_test").to_numpy(), dtype=float)
    err = np.maximum(1.0 - acc, 0.5 / n_test)
    return m, acc, err


def fit_with_bootstrap(m: np.ndarray, err: np.ndarray, groups: np.ndarray, options: CurveOptions) -> Fits:
    """Both forms on the points, plus ``options.bootstrap`` refits on resampled points."""
    pac = fit_pac(m, err)
    power = fit_power_law(m, err) if len(np.unique(m)) >= 3 else None
    fits = Fits(pac=pac, power_law=power)
    draws, fits.method = resample_indices(groups, options.bootstrap, options.seed)
    for idx in draws:
        fits.pac_boot.append(fit_pac(m[idx], err[idx]))
        if power is not None and len(np.unique(m[idx])) >= 3:
            fits.power_boot.append(fit_power_law(m[idx], err[idx], start=power))
    return fits


def _goodness(predicted_acc: np.ndarray, acc: np.ndarray, predicted_err: np.ndarray, err: np.ndarray) -> dict:
    residual = predicted_acc - acc
    total = float(np.sum((acc - acc.mean()) ** 2))
    return {
        "rmse_accuracy_pp": float(100.0 * np.sqrt(np.mean(residual**2))),
        "r2_accuracy": float(1.0 - np.sum(residual**2) / total) if total > 0 else None,
        "rmse_log_error": float(np.sqrt(np.mean((np.log(predicted_err) - np.log(err)) ** 2))),
    }


def _param_block(values: dict[str, list[float]], level: float) -> dict:
    return {f"{k}_interval": list(interval(np.array(v), level)) for k, v in values.items()}


def _needed_block(point: float, boot: list[float], level: float, n_max: float) -> dict:
    boot_arr = np.array(boot, dtype=float)
    lo, hi = interval(boot_arr, level)
    reachable = math.isfinite(point)
    return {
        "reachable": reachable,
        "n_train": point if reachable else None,
        "interval": [lo if math.isfinite(lo) else None, hi if math.isfinite(hi) else None],
        "reachable_share": float(np.isfinite(boot_arr).mean()) if len(boot_arr) else None,
        "extrapolation_factor": (point / n_max) if reachable else None,
    }


def analyse_fraction_sweep(
    table: pa.Table, options: CurveOptions, n_parameters: int | None = None
) -> tuple[dict, Fits]:
    """``fits.json`` for a sweep over keep-fractions of every class, and the fits behind it (for plots)."""
    if table.num_rows == 0:
        raise AUError("the trials table is empty: nothing to fit")
    m, acc, err = curve_points(table)
    fractions = np.asarray(table.column("fraction").to_numpy(), dtype=float)
    if len(np.unique(m)) < 2:
        raise AUError("a learning curve needs trials at 2 or more training-set sizes")
    level = options.level
    fits = fit_with_bootstrap(m, err, fractions, options)

    pac, power = fits.pac, fits.power_law
    pac_json = {
        "formula": "accuracy(m) = 1 - sqrt(c / m)",
        "c": pac.c,
        "delta": options.delta,
        "ln_H": pac.ln_h(options.delta),
        **_param_block({"c": [f.c for f in fits.pac_boot]}, level),
        "ln_H_interval": [
            2 * v - math.log(1 / options.delta)
            for v in interval(np.array([f.c for f in fits.pac_boot]), level)
        ],
        "ln_H_parameter_bound": (n_parameters * 32 * math.log(2)) if n_parameters else None,
        **_goodness(pac.accuracy(m), acc, pac.error(m), err),
    }
    result: dict = {
        "points": int(table.num_rows),
        "bootstrap": {
            "samples": options.bootstrap,
            "method": fits.method,
            "level": level,
            "seed": options.seed,
        },
        "per_fraction": _per_fraction(fractions, m, acc),
        "pac": pac_json,
        "power_law": None,
    }
    if power is not None:
        result["power_law"] = {
            "formula": "error(m) = a * m^(-b) + e_inf",
            "a": power.a,
            "b": power.b,
            "e_inf": power.e_inf,
            **_param_block(
                {
                    "a": [f.a for f in fits.power_boot],
                    "b": [f.b for f in fits.power_boot],
                    "e_inf": [f.e_inf for f in fits.power_boot],
                },
                level,
            ),
            **_goodness(power.accuracy(m), acc, power.error(m), err),
        }
        result["better_fit"] = (
            "power_law" if result["power_law"]["rmse_accuracy_pp"] <= pac_json["rmse_accuracy_pp"] else "pac"
        )
    result["holdout"] = _holdout(m, acc, err, fractions, options)
    result["needed"] = [
        {
            "target_accuracy": t,
            "pac": _needed_block(pac.needed(t), [f.needed(t) for f in fits.pac_boot], level, m.max()),
            "power_law": _needed_block(
                power.needed(t), [f.needed(t) for f in fits.power_boot], level, m.max()
            )
            if power is not None
            else None,
        }
        for t in options.targets
    ]
    return result, fits


def _per_fraction(fractions: np.ndarray, m: np.ndarray, acc: np.ndarray) -> list[dict]:
    rows = []
    for f in np.unique(fractions):
        sel = fractions == f
        rows.append(
            {
                "fraction": float(f),
                "n_train_mean": float(m[sel].mean()),
                "trials": int(sel.sum()),
                "accuracy_mean": float(acc[sel].mean()),
                "accuracy_std": float(acc[sel].std(ddof=1)) if sel.sum() > 1 else None,
            }
        )
    return rows


def _holdout(m, acc, err, fractions, options: CurveOptions) -> dict:
    """Fit on fractions <= holdout_max, predict the larger ones."""
    fit_sel = fractions <= options.holdout_max + 1e-12
    held = sorted(set(fractions[~fit_sel].tolist()))
    base = {"fit_max_fraction": options.holdout_max, "points": []}
    if not held:
        return {**base, "skipped": f"no fractions above {options.holdout_max} to hold out"}
    if len(np.unique(m[fit_sel])) < 3:
        return {**base, "skipped": f"fewer than 3 training-set sizes at fractions <= {options.holdout_max}"}
    fits = fit_with_bootstrap(m[fit_sel], err[fit_sel], fractions[fit_sel], options)
    base["power_law"] = asdict(fits.power_law) if fits.power_law else None
    base["pac"] = asdict(fits.pac)
    for f in held:
        sel = fractions == f
        n = float(m[sel].mean())
        measured = float(acc[sel].mean())
        point = {"fraction": f, "n_train": n, "measured_accuracy": measured}
        for name, fit, boot in (
            ("power_law", fits.power_law, fits.power_boot),
            ("pac", fits.pac, fits.pac_boot),
        ):
            if fit is None:
                continue
            predicted = float(fit.accuracy(n))
            point[name] = {
                "predicted_accuracy": predicted,
                "interval": list(interval(np.array([b.accuracy(n) for b in boot]), options.level)),
                "miss_pp": 100.0 * (predicted - measured),
            }
        base["points"].append(point)
    return base


def analyse_class_sweep(table: pa.Table, class_names: tuple[str, ...], options: CurveOptions) -> dict:
    """``fits.json`` for a sweep that shrinks one class: its recall and precision, and the others'."""
    if table.num_rows == 0:
        raise AUError("the trials table is empty: nothing to fit")
    k = int(table.column("ablated_class")[0].as_py())
    cf = np.asarray(table.column("class_fraction").to_numpy(), dtype=float)
    n_k = np.asarray(table.column("n_train_ablated_class").to_numpy(), dtype=float)
    recall = np.array(table.column("per_class_recall").to_pylist(), dtype=float)  # (rows, K)
    precision = np.array(table.column("per_class_precision").to_pylist(), dtype=float)
    acc = np.asarray(table.column("test_accuracy").to_numpy(), dtype=float)
    n_test = np.asarray(table.column("n_test").to_numpy(), dtype=float)
    others = [j for j in range(recall.shape[1]) if j != k]
    points = []
    for f in np.unique(cf):
        sel = cf == f
        points.append(
            {
                "class_fraction": float(f),
                "n_train_class": float(n_k[sel].mean()),
                "trials": int(sel.sum()),
                "class_recall_mean": float(recall[sel, k].mean()),
                "class_recall_std": float(recall[sel, k].std(ddof=1)) if sel.sum() > 1 else None,
                "class_precision_mean": float(precision[sel, k].mean()),
                "others_recall_mean": float(recall[sel][:, others].mean()),
                "others_recall_min": float(recall[sel][:, others].mean(axis=0).min()),
                "others_precision_mean": float(precision[sel][:, others].mean()),
                "others_precision_min": float(precision[sel][:, others].mean(axis=0).min()),
                "test_accuracy_mean": float(acc[sel].mean()),
            }
        )
    result = {
        "ablated_class": k,
        "class_name": class_names[k] if k < len(class_names) else str(k),
        "points": points,
        "class_error_power_law": None,
    }
    class_err = np.maximum(1.0 - recall[:, k], 0.5 / (n_test / max(recall.shape[1], 1)))
    if len(np.unique(n_k)) >= 3:
        fit = fit_power_law(n_k, class_err)
        result["class_error_power_law"] = {
            "formula": "1 - recall_k(n_k) = a * n_k^(-b) + e_inf",
            **asdict(fit),
        }
    return result
