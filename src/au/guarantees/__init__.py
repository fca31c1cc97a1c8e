"""Guarantees: the pure mathematics of certified coverage (arrays in, arrays out; no files).

>>> from au.guarantees import ltt, ltt_sequence, sgr, aurc
>>> order = ltt_sequence(fit_scores, fit_errors, epsilon=0.01, n_certify=len(scores))
>>> cert = ltt(scores, errors, epsilon=0.01, delta=0.05, sequence=order)  # accept scores >= cert.threshold
>>> cert = sgr(scores, errors, epsilon=0.01, delta=0.05)   # SGR's binary search, on all the calibration data

``au gold`` certifies with Learn then Test by default (its thresholds ordered on a fitting part that
never certifies); SGR stays available (``--method sgr|both``).

Modules: :mod:`~au.guarantees.bounds` (Clopper-Pearson, binomial p-values),
:mod:`~au.guarantees.selective` (risk-coverage, AURC, SGR), :mod:`~au.guarantees.ltt` (Learn then Test), :mod:`~au.guarantees.splits` (the empirical split check),
:mod:`~au.guarantees.calibration` (ECE, temperature scaling). The ``au gold`` job that applies
them to scores directories is :mod:`au.gold`.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "bounds": ["binomial_p_value", "clopper_pearson_interval", "clopper_pearson_upper"],
        "calibration": [
            "calibration_summary",
            "expected_calibration_error",
            "fit_temperature",
            "reliability",
        ],
        "selective": [
            "Certificate",
            "Ranked",
            "aurc",
            "best_possible_bound",
            "excess_aurc",
            "optimal_aurc",
            "risk_coverage",
            "sgr",
        ],
        "ltt": ["ltt", "ltt_sequence"],
        "splits": ["SplitCheck", "fit_parts", "random_splits", "split_check"],
    },
)
