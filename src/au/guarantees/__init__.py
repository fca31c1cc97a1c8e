"""Guarantees: from a coverage score to a certified error rate - the "gold" leaderboard.

>>> from au.guarantees import sgr, aurc
>>> cert = sgr(scores, errors, epsilon=0.01, delta=0.05)   # accept scores >= cert.threshold

Modules: :mod:`~au.guarantees.bounds` (Clopper-Pearson), :mod:`~au.guarantees.selective`
(risk-coverage, AURC, SGR), :mod:`~au.guarantees.splits` (the empirical split check),
:mod:`~au.guarantees.calibration` (ECE, temperature scaling), :mod:`~au.guarantees.scored`
(reading scores directories), :mod:`~au.guarantees.training_size` (coverage vs training size),
:mod:`~au.guarantees.leaderboard` (``au gold``).
"""

from au.guarantees.bounds import clopper_pearson_upper
from au.guarantees.calibration import expected_calibration_error, fit_temperature, reliability
from au.guarantees.leaderboard import GoldConfig, gold_run, read_leaderboard
from au.guarantees.selective import (
    Certificate,
    aurc,
    best_possible_bound,
    excess_aurc,
    risk_coverage,
    selective_risk,
    sgr,
)
from au.guarantees.splits import SplitCheck, random_splits, split_check
from au.guarantees.training_size import TrainingSizeOptions, coverage_vs_training

__all__ = [
    "Certificate",
    "GoldConfig",
    "SplitCheck",
    "TrainingSizeOptions",
    "aurc",
    "best_possible_bound",
    "clopper_pearson_upper",
    "coverage_vs_training",
    "excess_aurc",
    "expected_calibration_error",
    "fit_temperature",
    "gold_run",
    "random_splits",
    "read_leaderboard",
    "reliability",
    "risk_coverage",
    "selective_risk",
    "sgr",
    "split_check",
]
