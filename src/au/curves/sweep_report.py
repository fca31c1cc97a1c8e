"""``au curve``: analyse a finished sweep directory, write ``fits.json`` and the figures beside it.

Also the sentences a researcher reads in the report ("99% test accuracy needs about N examples").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from safetensors import safe_open

from au.ablation.sweep import SWEEP_FILE
from au.ablation.table import read_trials
from au.curves import plots
from au.curves.learning_curve import (
    CurveOptions,
    analyse_class_sweep,
    analyse_fraction_sweep,
)
from au.errors import AUError
from au.manifest import read_json, write_json
from au.report.plots import save as save_figure
from au.runs import MANIFEST, WEIGHTS

FITS_FILE = "fits.json"


@dataclass
class CurveResult:
    fits: dict
    figures: dict[str, Path]
    table: pa.Table


def _first_run(sweep_dir: Path, table: pa.Table) -> Path:
    return sweep_dir / table.column("run_dir")[0].as_py()


def _count_parameters(weights: Path) -> int | None:
    try:
        with safe_open(str(weights), "pt") as f:
            return int(sum(np.prod(f.get_slice(k).get_shape()) for k in f.keys()))
    except Exception:  # the count is context for the report, not a result
        return None


def analyse_sweep(sweep_dir: Path, options: CurveOptions, out: Path | None = None) -> CurveResult:
    """Fit the sweep in ``sweep_dir`` and write ``fits.json`` and PNG figures into ``out`` (default: the sweep)."""
    sweep_dir = Path(sweep_dir)
    out = Path(out) if out else sweep_dir
    description = read_json(sweep_dir / SWEEP_FILE, "sweep description (sweep.json)")
    table = read_trials(sweep_dir)
    first = _first_run(sweep_dir, table)
    manifest = read_json(first / MANIFEST, "run manifest")
    class_names = tuple(manifest["class_names"])
    identity = description["identity"]
    out.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Path] = {}
    if identity["kind"] == "class":
        fits = analyse_class_sweep(table, class_names, options)
        figures["class_ablation"] = save_figure(plots.class_ablation_curve(fits), out / "class_ablation.png")
    else:
        fits, boot = analyse_fraction_sweep(table, options, _count_parameters(first / WEIGHTS))
        figures["learning_curve"] = save_figure(
            plots.accuracy_curve(table, boot, fits), out / "learning_curve.png"
        )
        figures["error_loglog"] = save_figure(plots.error_loglog(table, boot, fits), out / "error_loglog.png")
        figures["per_class"] = save_figure(plots.per_class_curves(table, class_names), out / "per_class.png")
    fits = {
        "sweep": {k: identity[k] for k in ("model", "data", "kind", "trials", "seed")},
        "options": _options(options),
        **fits,
    }
    write_json(out / FITS_FILE, fits)
    return CurveResult(fits=fits, figures=figures, table=table)


def _options(options: CurveOptions) -> dict:
    return {
        "delta": options.delta,
        "targets": list(options.targets),
        "holdout_max": options.holdout_max,
        "bootstrap": options.bootstrap,
        "level": options.level,
        "seed": options.seed,
    }


def _n(value: float | None) -> str:
    if value is None or not np.isfinite(value):
        return "unbounded"
    return f"{value:,.0f}" if value < 1e7 else f"{value:.2g}"


def sentences(fits: dict) -> list[str]:
    """Plain-language findings of a fraction sweep's fits."""
    if "pac" not in fits:
        return _class_sentences(fits)
    out = []
    level = int(round(100 * fits["bootstrap"]["level"]))
    pl = fits.get("power_law")
    if pl:
        out.append(
            f"Power law: test error = {pl['a']:.3g} * m^-{pl['b']:.3f} + {pl['e_inf']:.4f} "
            f"(exponent b {level}% interval [{pl['b_interval'][0]:.3f}, {pl['b_interval'][1]:.3f}]; "
            f"irreducible error {100 * pl['e_inf']:.2f}%, interval [{100 * pl['e_inf_interval'][0]:.2f}%, "
            f"{100 * pl['e_inf_interval'][1]:.2f}%]); RMSE {pl['rmse_accuracy_pp']:.2f} percentage points."
        )
    pac = fits["pac"]
    out.append(
        f"PAC form: accuracy = 1 - sqrt({pac['c']:.3g} / m), RMSE {pac['rmse_accuracy_pp']:.2f} percentage points; "
        f"at delta = {pac['delta']} it implies an effective ln|H| of {pac['ln_H']:.1f}"
        + (
            f" (a 32-bit count of the model's parameters bounds ln|H| by {pac['ln_H_parameter_bound']:.3g})."
            if pac.get("ln_H_parameter_bound")
            else "."
        )
    )
    if fits.get("better_fit"):
        out.append(
            f"The {'power law' if fits['better_fit'] == 'power_law' else 'PAC form'} fits the measured points better."
        )
    for need in fits["needed"]:
        target = f"{100 * need['target_accuracy']:g}%"
        for form, block in (("power law", need.get("power_law")), ("PAC form", need["pac"])):
            if block is None:
                continue
            if not block["reachable"]:
                out.append(
                    f"{target} test accuracy is not reachable by the fitted {form}: it lies beyond the asymptote 1 - e_inf."
                )
                continue
            lo, hi = block["interval"]
            factor = block["extrapolation_factor"]
            out.append(
                f"{target} test accuracy needs about {_n(block['n_train'])} training examples by the {form}, "
                f"{level}% interval [{_n(lo)}, {_n(hi) if hi is not None else 'not reachable'}]"
                + (f" ({factor:.1f}x the largest subset measured)." if factor and factor > 1 else ".")
            )
    for point in fits["holdout"].get("points", []):
        if "power_law" in point:
            p = point["power_law"]
            out.append(
                f"Held-out check: fitted on fractions <= {fits['holdout']['fit_max_fraction']:g}, the power law predicts "
                f"{100 * p['predicted_accuracy']:.2f}% at fraction {point['fraction']:g} ({_n(point['n_train'])} examples); "
                f"measured {100 * point['measured_accuracy']:.2f}% (miss {p['miss_pp']:+.2f} points)."
            )
    return out


def _class_sentences(fits: dict) -> list[str]:
    pts = fits["points"]
    lo, hi = pts[0], pts[-1]
    return [
        f"Shrinking class {fits['class_name']} from {_n(hi['n_train_class'])} to {_n(lo['n_train_class'])} training "
        f"examples moves its recall from {100 * hi['class_recall_mean']:.2f}% to {100 * lo['class_recall_mean']:.2f}%, "
        f"the other classes' mean recall from {100 * hi['others_recall_mean']:.2f}% to {100 * lo['others_recall_mean']:.2f}% "
        f"and their mean precision from {100 * hi['others_precision_mean']:.2f}% to {100 * lo['others_precision_mean']:.2f}%."
    ]


def require_sweep(path: Path) -> Path:
    path = Path(path)
    if not (path / SWEEP_FILE).is_file():
        raise AUError(f"{path} is not a sweep directory (no {SWEEP_FILE}); pass the --out of 'au ablate'")
    return path
