"""``au ablate``: a whole sweep into one directory - resumable, refusing to mix with another, optionally parallel.

Layout of a sweep directory (an ``ablate`` job, :mod:`au.jobs`)::

    trials/<name>/    one run directory per trial, each a ``train`` job (au.train.rundir), e.g. trials/f0.01-t2
    trials.parquet    one row per finished trial (au.ablation.table), rewritten after each trial
    manifest.json     written last: the sweep's identity (config and data hashes) and the table's SHA-256

A sweep killed at any moment and re-run with the same arguments skips finished trials, resumes the
interrupted ones from their checkpoints and ends with the same table as an uninterrupted sweep.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path

import pyarrow as pa
import torch

from au import jobs, progress
from au.ablation.config import SweepConfig
from au.ablation.table import TRIALS_FILE, read_trials, write_trials
from au.ablation.trials import ModelFactory, TrialSpec, plan_trials, registry_factory, run_trial, trial_row
from au.data.dataset import ImageDataset
from au.data.registry import load_train_test
from au.errors import AUError

Runner = Callable[[list[TrialSpec], tuple, Callable[[dict], None]], None]
"""Runs pending trials: ``(specs, (sweep, out, train, test, factory, threads), finished(row))``."""


def run_sweep(
    sweep: SweepConfig,
    out: Path,
    *,
    train: ImageDataset | None = None,
    test: ImageDataset | None = None,
    factory: ModelFactory | None = None,
    workers: int = 1,
    threads: int | None = None,
    runner: Runner | None = None,
    show_progress: bool = True,
) -> pa.Table:
    """Run (or finish) every trial of ``sweep`` into ``out`` and return the complete trials table.

    Parameters
    ----------
    sweep : SweepConfig
    out : Path
        The sweep directory.
    train, test : ImageDataset, optional
        The full training and test splits; default: loaded from ``sweep.data``.
    factory : callable, optional
        ``(input_shape, num_classes, seed) -> nn.Module`` for your own architecture; default: the
        registry model ``sweep.model``. With ``workers > 1`` it must be picklable (a module-level
        function or ``functools.partial`` of one).
    workers : int
        Trials run at once, each in its own process.
    threads : int, optional
        Torch threads per trial; default: CPU cores // workers. Recorded in each row (bit-identical
        results need the same count).
    runner : callable, optional
        ``(pending trial specs, (sweep, out, train, test, factory, threads), finished)`` runs the
        pending trials somewhere and calls ``finished(row)`` for each, e.g.
        :func:`au.engines.spark.ablate.spark_runner`; default: this process, or ``workers`` processes.
    """
    if workers < 1:
        raise AUError(f"--workers must be at least 1, got {workers}")
    if train is None or test is None:
        train, test = load_train_test(sweep.data)
    factory = factory or registry_factory(sweep.model)
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    specs = plan_trials(sweep, train.labels)
    identity = {
        **sweep.to_dict(),
        "data_train_sha256": train.fingerprint(),
        "data_test_sha256": test.fingerprint(),
    }
    claim = jobs.claim(jobs.Job("ablate", out, identity, f"sweep of {sweep.model} on {sweep.data}"))
    if claim.done:
        progress.note(f"{out}: this sweep is already complete; nothing to do")
        return read_trials(claim.out)

    rows, pending = _finished_and_pending(specs, claim)
    table_path = claim.path(TRIALS_FILE)
    write_trials(table_path, rows, len(specs))
    if pending:
        progress.note(
            f"[ablate] {len(rows)} of {len(specs)} trials done; running {len(pending)} "
            f"({workers} worker{'s' if workers > 1 else ''}, {threads} thread{'s' if threads > 1 else ''} each)"
        )
    with progress.bar(len(specs), "trials", "trial", enabled=show_progress, initial=len(rows)) as bar:
        done = {_trial_key(row) for row in rows}

        def finished(row: dict) -> None:
            if _trial_key(row) in done:  # a retried task's second answer: the trial is committed once
                return
            done.add(_trial_key(row))
            rows.append(row)
            write_trials(table_path, rows, len(specs))
            bar.update(1)

        args = (sweep, claim.out, train, test, factory, threads)
        if pending and runner is not None:
            runner(pending, args, finished)
        elif pending and workers == 1:
            _run_here(pending, args, finished, show_progress)
        elif pending:
            _run_in_processes(pending, args, finished, workers)
    claim.finish({"trials": len(rows), "workers": workers, "threads": threads}, outputs=[TRIALS_FILE])
    return read_trials(table_path)


def _finished_and_pending(specs: list[TrialSpec], claim: jobs.Claim) -> tuple[list[dict], list[TrialSpec]]:
    """(the rows of the trials already finished in ``trials/``, the specs of the others)."""
    rows, pending = [], []
    for spec in specs:
        run_dir = claim.path("trials", spec.name)
        if (run_dir / jobs.MANIFEST).is_file():
            rows.append(trial_row(spec, claim.out, run_dir))
        else:
            pending.append(spec)
    return rows, pending


def _trial_key(row: dict) -> tuple:
    """Which trial a row belongs to."""
    return tuple(row[k] for k in ("kind", "fraction", "ablated_class", "class_fraction", "trial"))


def _run_here(pending: list[TrialSpec], args: tuple, finished: Callable[[dict], None], show: bool) -> None:
    """Trials one after another in this process, with the sweep's thread count."""
    sweep, out, train, test, factory, threads = args
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for spec in pending:
            finished(run_trial(spec, sweep, out, train, test, factory, show_progress=show))
    finally:
        torch.set_num_threads(previous)


def _run_in_processes(
    pending: list[TrialSpec], args: tuple, finished: Callable[[dict], None], workers: int
) -> None:
    """Trials in ``workers`` spawned processes, each started once with the data and factory."""
    with ProcessPoolExecutor(
        workers, mp_context=get_context("spawn"), initializer=_init_worker, initargs=args
    ) as pool:
        futures = {pool.submit(_worker_trial, spec) for spec in pending}
        try:
            while futures:
                done, futures = wait(futures, return_when=FIRST_COMPLETED)
                for future in done:
                    finished(future.result())
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


# Worker processes keep the data and factory they were started with (sent once, not once per trial).
_WORKER: dict = {}


def _die_with_parent() -> None:
    """Linux: have the kernel kill this worker when the sweep process dies, even by SIGKILL.

    Without it, workers of a killed sweep keep training their trials for hours, unseen.
    """
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        PR_SET_PDEATHSIG = 1
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):  # no prctl: workers end when their queue closes instead
            pass


def _init_worker(sweep, out, train, test, factory, threads) -> None:
    _die_with_parent()
    torch.set_num_threads(threads)
    os.environ["AU_PROGRESS"] = "0"
    _WORKER.update(sweep=sweep, out=out, train=train, test=test, factory=factory)


def _worker_trial(spec: TrialSpec) -> dict:
    w = _WORKER
    return run_trial(spec, w["sweep"], w["out"], w["train"], w["test"], w["factory"])
