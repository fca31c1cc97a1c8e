"""``au ablate --engine spark``: a sweep's trials as Spark tasks, one trial per task.

The sweep stays an ``ablate`` job in this process (:func:`au.ablation.ablate_job.run_sweep`): it
claims the directory, keeps the trials table and writes the manifest. Spark only runs the pending
trials. Each task runs :func:`au.ablation.trials.run_trial`, which writes its trial's run
directory as a ``train`` job of its own under ``trials/<name>`` - claimed, resumed from its
checkpoint, or returned finished - so a task that Spark retries, or runs twice, finds its trial's
directory and computes nothing twice; the sweep adds each trial's row once, by trial. The sweep
directory must be on a filesystem every worker sees at the same path.
"""

from __future__ import annotations

from collections.abc import Callable

from au.ablation.trials import TrialSpec, run_trial
from au.engines.spark.session import check_spark, session, ship_code


def spark_runner(master: str) -> Callable[[list[TrialSpec], tuple, Callable[[dict], None]], None]:
    """A ``runner`` for :func:`~au.ablation.ablate_job.run_sweep` that fans the trials out on ``master``.

    Java and ``master`` are checked here, when the runner is made - before ``run_sweep`` loads the
    data or claims the sweep directory - so that a bad ``JAVA_HOME`` or ``--master`` is one line
    and leaves nothing behind.
    """
    check_spark(master)

    def run(pending: list[TrialSpec], args: tuple, finished: Callable[[dict], None]) -> None:
        sweep, out, train, test, factory, _threads = args
        with session(master, "au ablate") as spark:
            ship_code(factory)
            shared = spark.sparkContext.broadcast((sweep, out, train, test))  # the data, once per executor
            tasks = spark.sparkContext.parallelize(pending, len(pending))
            # the factory travels with the tasks (cloudpickle: a user's own function, a lambda)
            for row in tasks.map(lambda spec: _trial(spec, shared.value, factory)).toLocalIterator():
                finished(row)

    return run


def _trial(spec: TrialSpec, shared: tuple, factory) -> dict:
    """One trial inside a Spark task, on the one core Spark gives a task."""
    import os

    from au.engines.spark.worker import one_core

    sweep, out, train, test = shared
    one_core()
    os.environ["AU_PROGRESS"] = "0"
    return run_trial(spec, sweep, out, train, test, factory, show_progress=False)
