"""The gold leaderboard (``au gold``): certified coverage of every coverage score, checked on random splits.

>>> from au.gold import GoldConfig, gold_run, read_leaderboard
>>> gold_run(["scores/"], "gold/", GoldConfig(epsilons=(0.01, 0.02), delta=0.05, mixed=("all",)))

Modules: ``config``, ``scored`` (reading scores directories), ``leaderboard`` (entries and ranks),
``combo`` (the combined score), ``training_size`` (coverage along an ablation sweep),
``needed_data`` (the training data a certified coverage needs), ``tables``, ``plots``, ``report``,
and ``gold_job`` (the job). The mathematics is :mod:`au.guarantees`.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "config": ["GoldConfig", "TrainingSizeOptions"],
        "gold_job": ["LEADERBOARD", "gold_run", "read_leaderboard"],
        "report": ["add_gold_section"],
        "needed_data": ["needed_data"],
        "training_size": ["coverage_vs_training"],
    },
)
