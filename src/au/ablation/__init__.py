"""Data ablation: train one model per (fraction, trial) and tabulate how accuracy follows the data.

>>> from au.ablation import SweepConfig, run_sweep
>>> table = run_sweep(SweepConfig("mnist-cnn", "mnist", fractions=(0.01, 0.1, 1.0)), "runs/ablate")
"""

from au.ablation.config import DEFAULT_FRACTIONS, SWEEP_TRAINING, SweepConfig
from au.ablation.sweep import SWEEP_FILE, run_sweep
from au.ablation.table import TRIALS_FILE, TRIALS_SCHEMA, read_trials
from au.ablation.trials import TrialSpec, plan_trials, registry_factory, run_trial

__all__ = [
    "DEFAULT_FRACTIONS",
    "SWEEP_FILE",
    "SWEEP_TRAINING",
    "TRIALS_FILE",
    "TRIALS_SCHEMA",
    "SweepConfig",
    "TrialSpec",
    "plan_trials",
    "read_trials",
    "registry_factory",
    "run_sweep",
    "run_trial",
]
