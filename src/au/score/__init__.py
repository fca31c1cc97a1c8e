"""Coverage scores and OOD evaluation (``au score``): fit detectors on a run's training data, score every set.

>>> from au.score import ScoreConfig, score_run, read_scores
>>> score_run(model, train, test, [ood], "scores/", ScoreConfig(detectors=("knn", "energy")))
>>> table, manifest = read_scores("scores/")

Modules: ``config`` (ScoreConfig), ``schema`` (the scores table), ``sets`` (recording and reading
the scored sets), ``score_job`` (the job).
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "config": ["DEFAULT_OOD", "ScoreConfig"],
        "schema": ["ROW_COLUMNS", "SCORES_FILE", "read_scores_table", "scores_schema"],
        "score_job": ["evaluate", "metrics_rows", "read_scores", "score_run"],
        "sets": ["sample"],
    },
)
