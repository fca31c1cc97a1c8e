"""A Spark session for AU's jobs: checked before it starts, configured once, stopped when AU started it.

Everything a user can get wrong is checked before Spark starts, with one line each:

* Java: Spark 4 needs Java 17 or newer (``JAVA_HOME``, else ``java`` on the ``PATH``);
* the master: ``local[...]``, ``spark://HOST:PORT[,HOST:PORT]``, ``k8s://...`` or ``yarn``; a
  standalone or Kubernetes master must accept a TCP connection within :data:`CONNECT_SECONDS`
  (Spark itself would retry for minutes before it gives up).

The session keeps Python workers alive between tasks (``spark.python.worker.reuse``), so that
a worker loads a model once and reuses it (:mod:`au.engines.spark.worker`), runs the driver's
own Python on the workers (``PYSPARK_PYTHON``; a cluster's workers need the same AU, torch and
Python), and turns the web UI off.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import socket
import subprocess
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

from au import progress
from au.errors import AUError

CONNECT_SECONDS = 10.0
MIN_JAVA = 17
JAVA_FIX = f"install openjdk-17-jre-headless (scripts/setup.sh does) or point JAVA_HOME at a Java {MIN_JAVA}+"
_LOCAL = re.compile(r"^local(\[(\*|\d+)(,\d+)?\])?$")


def java_executable() -> str | None:
    """The ``java`` Spark will start: ``$JAVA_HOME/bin/java``, else the one on the ``PATH``."""
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = Path(home) / "bin" / "java"
        return str(candidate) if candidate.is_file() else None
    return shutil.which("java")


def check_java() -> int:
    """Java's major version, or one line naming the Java looked at, what is wrong with it and what to do."""
    java = java_executable()
    if java is None and os.environ.get("JAVA_HOME"):
        raise AUError(
            f"JAVA_HOME={os.environ['JAVA_HOME']} has no bin/java, and the Spark engine needs Java {MIN_JAVA} "
            f"or newer; point JAVA_HOME at a Java {MIN_JAVA}+ installation, or unset it to use the java on the PATH"
        )
    if java is None:
        raise AUError(
            f"no java on the PATH (JAVA_HOME is not set), and the Spark engine needs Java {MIN_JAVA} or newer; {JAVA_FIX}"
        )
    major = _java_major(java)
    if major < MIN_JAVA:
        raise AUError(f"{java} is Java {major}; Spark 4 needs Java {MIN_JAVA} or newer: {JAVA_FIX}")
    return major


@functools.lru_cache(maxsize=8)
def _java_major(java: str) -> int:
    """The major version ``java -version`` reports, asked once per executable and process (a Spark job
    checks Java before it claims its directory, and its session again)."""
    try:
        text = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired) as e:
        raise AUError(f"the Spark engine cannot run {java} ({e}); {JAVA_FIX}") from None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    if not found:
        raise AUError(f"cannot read the version of {java}; {JAVA_FIX}")
    major = int(found.group(1))
    return int(found.group(2)) if major == 1 and found.group(2) else major  # "1.8" is Java 8


def check_master(master: str) -> str:
    """``master`` if it is a master URL Spark accepts and, for a remote one, answers; else one line."""
    if _LOCAL.match(master) or master == "yarn":
        return master
    if master.startswith("spark://"):
        addresses = master[len("spark://") :].split(",")
    elif master.startswith("k8s://"):
        url = urlparse(master[len("k8s://") :])
        port = url.port or (443 if url.scheme != "http" else 80)
        addresses = [f"{url.hostname}:{port}"] if url.hostname else []
    else:
        raise AUError(
            f"--master {master!r} is not a Spark master URL; use local[N], spark://HOST:PORT or k8s://https://HOST:PORT"
        )
    for address in addresses:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise AUError(f"--master {master!r}: {address!r} is not HOST:PORT")
        try:
            with socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS):
                return master
        except OSError as e:
            reason = e.strerror or type(e).__name__
    raise AUError(f"--master {master}: no answer ({reason}); start the master or check its address")


def _active(master: str):
    """The running session on ``master`` (a test's, or the caller's), if there is one."""
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    if spark is not None and spark.sparkContext.master == master:
        return spark
    return None


def check_spark(master: str) -> str:
    """``master``, once Java, pyspark and the master are fit to start a session on it; else one line.

    Every Spark job calls this before it claims its output directory, so that a bad ``JAVA_HOME``
    or ``--master`` leaves nothing behind (:func:`session` calls it again).
    """
    check_java()
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise AUError(
            "the Spark engine needs pyspark: pip install 'au[spark]' (scripts/setup.sh does)"
        ) from None
    return check_master(master)


@contextmanager
def session(master: str, app: str = "au", arrow_batch: int = 256) -> Iterator:
    """A SparkSession on ``master``: the running one when there is one, else started here and stopped after.

    ``arrow_batch`` is the rows per Arrow batch a Python worker receives.
    """
    check_spark(master)
    from pyspark import SparkContext

    other = SparkContext._active_spark_context
    if other is not None and other.master != master:
        raise AUError(
            f"this process already runs a Spark session on {other.master}; use --master {other.master} "
            "or stop that session first (Spark allows one per process)"
        )
    running = _active(master)
    if running is not None:
        running.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(arrow_batch))
        yield running
        return
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(master)
        .appName(app)
        .config("spark.python.worker.reuse", "true")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(arrow_batch))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.sources.partitionOverwriteMode", "static")
    )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    try:
        yield spark
    finally:
        spark.stop()


def ship_code(*objects) -> None:
    """Let workers unpickle ``objects`` whose code lives in modules they cannot import (a user's own files).

    Objects of installed packages (AU's models, torch) travel by reference, and ``__main__``'s by
    value already; a class or function from a module beside the user's script is registered with
    cloudpickle to travel by value.
    """
    from pyspark import cloudpickle

    for obj in objects:
        obj = obj.func if isinstance(obj, functools.partial) else obj
        name = obj.__module__ if isinstance(obj, (types.FunctionType, type)) else type(obj).__module__
        module = sys.modules.get(name)
        path = getattr(module, "__file__", None) or ""
        installed = name.split(".")[0] in ("au", "torch") or "-packages" in path
        if module is None or name == "__main__" or installed or not path:
            continue
        cloudpickle.register_pickle_by_value(module)


@contextmanager
def task_progress(spark, label: str, rows: int, every: float = 1.0) -> Iterator[None]:
    """A progress bar over the Spark job run inside the block: finished tasks of its stages, as rows.

    Spark reports tasks, not rows; the bar shows the share of finished tasks as that share of
    ``rows``. Polled every ``every`` seconds on a thread of the driver.
    """
    import threading

    stop = threading.Event()
    tracker = spark.sparkContext.statusTracker()
    known = set(tracker.getActiveStageIds())

    def poll(bar) -> None:
        stages: dict[int, tuple[int, int]] = {}
        while not stop.wait(every):
            for stage in tracker.getActiveStageIds():
                info = tracker.getStageInfo(stage)
                if stage not in known and info is not None:
                    stages[stage] = (info.numCompletedTasks, info.numTasks)
            done = sum(d for d, _ in stages.values())
            total = sum(t for _, t in stages.values()) or 1
            bar.n = min(rows, round(rows * done / total))
            bar.refresh()

    with progress.bar(rows, label, "img") as bar:
        thread = threading.Thread(target=poll, args=(bar,), daemon=True)
        thread.start()
        try:
            yield
            bar.n = rows
        finally:
            stop.set()
            thread.join()
