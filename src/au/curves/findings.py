"""The findings of a learning-curve analysis in plain language: the sentences a researcher reads.

"99% test accuracy needs about N training examples by the power law, 95% interval [...]": the CLI
prints them and the report shows them, from a ``fits.json`` (:mod:`au.curves.curve_job`).
"""

from __future__ import annotations

import numpy as np


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
