"""Data ablation (``au ablate``): train one model per (fraction, trial) and tabulate how accuracy follows the data.

>>> from au.ablation import SweepConfig, run_sweep
>>> table = run_sweep(SweepConfig("mnist-cnn", "mnist", fractions=(0.01, 0.1, 1.0)), "runs/ablate")

Modules: ``config`` (SweepConfig), ``trials`` (planning and running one trial), ``table`` (the
trials table), ``ablate_job`` (the resumable sweep).
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "ablate_job": ["run_sweep"],
        "config": ["DEFAULT_FRACTIONS", "SWEEP_TRAINING", "SweepConfig"],
        "table": ["TRIALS_FILE", "TRIALS_SCHEMA", "read_trials"],
        "trials": ["TrialSpec", "plan_trials", "registry_factory", "run_trial"],
    },
)
