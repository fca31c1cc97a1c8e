"""The Spark engine: record, score and ablate on Spark local[2] give the local engine's tables.

One Spark session serves the module (engines reuse the running session on the same master). The
standalone-cluster test starts a master and two workers of its own and kills one mid-recording.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from au import activations, data, jobs
from au.activations.config import RecordConfig
from au.activations.record_job import record
from au.data.images_table import write_images_table
from conftest import blob_images, make_dataset, run_au, tiny_net

pyspark = pytest.importorskip("pyspark")
pytestmark = pytest.mark.slow

MASTER = "local[2]"


@pytest.fixture(scope="module")
def spark():
    from au.engines.spark.session import session

    with session(MASTER, "au tests") as s:
        yield s


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A mnist-cnn run (2 steps) on a 28x28 npz dataset, and its test split as an images table."""
    from au.cli import main

    root = tmp_path_factory.mktemp("spark")
    x, y = blob_images(300, 3, shape=(28, 28, 1))
    xt, yt = blob_images(500, 3, shape=(28, 28, 1), seed=1)
    np.savez(root / "blobs.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
    spec = f"npz:{root / 'blobs.npz'}"
    train = ["--quiet", "train", "--model", "mnist-cnn", "--data", spec, "--max-steps", "2"]
    assert main([*train, "--out", str(root / "run")]) == 0
    write_images_table(data.load(spec, "test"), root / "test.parquet", show_progress=False)
    write_images_table(data.load(spec, "train"), root / "train.parquet", show_progress=False)
    return root


def _model(root: Path):
    from au.train.rundir import load_run

    return load_run(root / "run").model


def _same_tables(a: Path, b: Path, exact: bool = False) -> None:
    """Same rows, layers and manifests; values equal (``exact``) or within rounding.

    Rounding: a Spark task runs torch on one thread, the local engine on every core, and the
    kernels may sum in another order - within 1e-6 relative (a few float32 ulps); stored as float16,
    one float16 ulp (a float32 difference that crosses a rounding boundary).
    """
    ra, rb = activations.open(a), activations.open(b)
    assert ra.num_rows == rb.num_rows and ra.layers == rb.layers
    assert ra.manifest["layers"] == rb.manifest["layers"]
    assert ra.manifest["dataset"]["spec"] == rb.manifest["dataset"]["spec"]
    for layer in [*ra.layers, "logits"]:
        la, lb = ra.layer(layer), rb.layer(layer)
        assert la.values.dtype == lb.values.dtype and la.values.shape == lb.values.shape
        rtol = 0.0 if exact else 2.0**-10 if la.values.dtype == np.float16 else 1e-6
        np.testing.assert_allclose(
            la.values.astype(np.float32), lb.values.astype(np.float32), atol=0 if exact else 1e-6, rtol=rtol
        )
        for field in ("ids", "labels", "pred", "correct"):
            np.testing.assert_array_equal(getattr(la, field), getattr(lb, field))


@pytest.mark.parametrize("dtype, pool", [("float32", "none"), ("float16", "avg")])
def test_spark_record_equals_local(spark, tiny, tmp_path, dtype, pool):
    from au.engines.spark.record import record_spark

    model, table = _model(tiny), tiny / "test.parquet"
    config = RecordConfig(layers=("conv2", "fc1"), pool=pool, dtype=dtype, batch_size=64)
    record(model, data.load(f"parquet:{table}", "test"), tmp_path / "local", config, show_progress=False)
    m = record_spark(model, table, tmp_path / "spark", config, split="test", master=MASTER, rows_per_task=128)
    assert len(m["parts"]) >= 3 and m["engine"]["name"] == "spark"
    _same_tables(tmp_path / "local", tmp_path / "spark")
    assert not list((tmp_path / "spark").glob(jobs.INCOMPLETE))


def test_spark_record_resumes_after_a_kill(spark, tiny, tmp_path, monkeypatch):
    """Killed after Spark's commit (before the manifest) or while Spark wrote: the re-run gives the same table."""
    from au.engines.spark.record import SPARK_DIR, record_spark
    from au.errors import AUError

    model, table = _model(tiny), tiny / "test.parquet"
    config = RecordConfig(layers=("fc1",), dtype="float32", batch_size=64)
    record_spark(model, table, tmp_path / "whole", config, split="test", master=MASTER)

    def killed_before_the_manifest(self, *a, **k):
        raise KeyboardInterrupt

    for case in ("after-commit", "while-writing"):
        out = tmp_path / case
        with monkeypatch.context() as m:
            m.setattr(jobs.Claim, "finish", killed_before_the_manifest)
            with pytest.raises(KeyboardInterrupt):
                record_spark(model, table, out, config, split="test", master=MASTER)
        with pytest.raises(AUError, match="unfinished"):
            activations.open(out)  # partial output never passes for complete
        if case == "while-writing":  # no commit yet: an attempt's leftovers, no _SUCCESS
            (out / SPARK_DIR / "_SUCCESS").unlink()
            (out / SPARK_DIR / "part-99999-leftover.parquet").write_bytes(b"half a part")
            (out / SPARK_DIR / "_temporary" / "0").mkdir(parents=True)
        m = record_spark(model, table, out, config, split="test", master=MASTER)
        assert m["engine"]["resumed_committed"] == (case == "after-commit")
        _same_tables(tmp_path / "whole", out, exact=True)
        assert not (out / SPARK_DIR / "part-99999-leftover.parquet").exists()


def test_spark_score_equals_local(spark, tiny, tmp_path):
    from au.engines.spark.score import score_spark
    from au.score.config import ScoreConfig
    from au.score.schema import read_scores_table
    from au.score.score_job import score_run

    model = _model(tiny)
    train, test = data.load_train_test(f"npz:{tiny / 'blobs.npz'}")
    ood = make_dataset(200, 3, shape=(28, 28, 1), seed=5, split="all")
    rec = RecordConfig(layers=("fc1", "logits"), pool="avg", dtype="float32")
    record(model, train, tmp_path / "train-acts", rec, show_progress=False)
    config = ScoreConfig(
        detectors=("msp", "energy", "mahalanobis", "knn", "parzen_lsh"),
        layer="fc1",
        val_size=20,
        params={"knn": {"k": 5}, "parzen_lsh": {"method": "exact"}},  # Spark sums the kernel exactly
    )
    local = score_run(model, train, test, [ood], tmp_path / "local", config, acts=tmp_path / "train-acts")
    sets = [(tmp_path / "local" / s["recording"], s["is_ood"]) for s in local["sets"]]
    spark_m = score_spark(tmp_path / "train-acts", sets, tmp_path / "spark", config, master=MASTER)
    a, b = (
        read_scores_table(tmp_path / "local" / "scores.parquet"),
        read_scores_table(tmp_path / "spark" / "scores.parquet"),
    )
    for column in ("dataset", "example_id", "label", "pred", "correct", "is_ood"):
        assert a.column(column).to_pylist() == b.column(column).to_pylist(), column
    # float summation order (README): float32 distances in blocks for knn and the Parzen kernel sums
    tolerance = {"msp": 0, "energy": 0, "mahalanobis": 1e-9, "knn": 1e-5, "parzen_lsh": 1e-3}
    for name, atol in tolerance.items():
        x, y = a.column(name).to_numpy(), b.column(name).to_numpy()
        np.testing.assert_allclose(y, x, atol=atol, rtol=1e-9, err_msg=name)
        auroc = local["detectors"][name]["ood"][ood.name]["auroc"]
        # near-equal scores may swap a pair of ranks: at most a few of the 18,000 pairs
        assert abs(spark_m["detectors"][name]["ood"][ood.name]["auroc"] - auroc) <= 2e-4, name
    assert spark_m["in_distribution"]["n_fit"] == local["in_distribution"]["n_fit"]


def test_spark_score_refuses_detectors_that_need_one_process(spark, tiny, tmp_path):
    from au.engines.spark.score import score_spark
    from au.errors import AUError
    from au.score.config import ScoreConfig

    train = data.load(f"npz:{tiny / 'blobs.npz'}", "train")
    record(
        _model(tiny),
        train,
        tmp_path / "acts",
        RecordConfig(layers=("fc1", "logits"), pool="avg", dtype="float32"),
    )
    with pytest.raises(AUError, match="'odin' needs all training rows .* use --engine local"):
        score_spark(
            tmp_path / "acts",
            [(tmp_path / "acts", False)],
            tmp_path / "out",
            ScoreConfig(detectors=("odin",)),
        )
    assert not (tmp_path / "out").exists()


def test_spark_ablation_equals_local_and_counts_each_trial_once(spark, tmp_path):
    from au.ablation.ablate_job import run_sweep
    from au.ablation.config import SWEEP_TRAINING, SweepConfig
    from au.engines.spark.ablate import spark_runner
    from au.engines.spark.session import ship_code

    train, test = make_dataset(120, 3, seed=0), make_dataset(45, 3, seed=1, split="test")
    sweep = SweepConfig(
        model="tiny",
        data="blobs",
        fractions=(0.5, 1.0),
        trials=1,
        training=SWEEP_TRAINING.updated(max_steps=4),
    )

    def factory(shape, classes, seed):
        return tiny_net(seed, classes)

    ship_code(tiny_net)  # the workers cannot import the tests' conftest: its code travels by value

    kw = {"train": train, "test": test, "factory": factory, "show_progress": False}
    local = run_sweep(sweep, tmp_path / "local", threads=1, **kw)
    on_spark = run_sweep(sweep, tmp_path / "spark", runner=spark_runner(MASTER), **kw)
    key = ["fraction", "trial", "test_accuracy", "test_loss", "steps"]
    assert (
        local.select(key).sort_by("fraction").to_pylist()
        == on_spark.select(key).sort_by("fraction").to_pylist()
    )

    def twice(pending, args, finished):  # a retried task answers twice: one row per trial all the same
        spark_runner(MASTER)(pending, args, lambda row: (finished(row), finished(row)))

    again = run_sweep(sweep, tmp_path / "twice", runner=twice, **kw)
    assert again.num_rows == 2 and pq.read_table(tmp_path / "twice" / "trials.parquet").num_rows == 2


@pytest.mark.parametrize("case", ["no-image-column", "unreachable-master", "no-java"])
def test_spark_bad_input_is_one_line_and_writes_nothing(tiny, tmp_path, case):
    table, env, master = tiny / "test.parquet", dict(os.environ), MASTER
    if case == "no-image-column":
        bad = pq.read_table(table).drop_columns(["image"])
        pq.write_table(bad, tmp_path / "bad.parquet")
        table, fragment = tmp_path / "bad.parquet", "no 'image' column"
    elif case == "unreachable-master":
        master, fragment = f"spark://127.0.0.1:{_free_port()}", "no answer"
    else:
        env["JAVA_HOME"], fragment = str(tmp_path / "no-java"), "needs Java 17"
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "au", "--quiet", "record", "--run", str(tiny / "run"), "--engine", "spark",
         "--master", master, "--images", str(table), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, env={**env, "AU_PROGRESS": "0"}, timeout=120,
    )  # fmt: skip
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1 and fragment in lines[0], proc.stderr
    assert time.monotonic() - start < 60
    assert not (tmp_path / "out").exists()


def test_spark_options_need_the_spark_engine(tiny):
    proc = run_au("record", "--run", str(tiny / "run"), "--images", "x.parquet", "--out", "nowhere")
    assert proc.returncode == 2 and "--images needs --engine spark" in proc.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------- a real cluster


class Cluster:
    """A standalone Spark master and two one-core workers on 127.0.0.1, started with ``spark-class``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.spark_class = Path(pyspark.__file__).parent / "bin" / "spark-class"
        self.env = {
            **os.environ,
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_HOME": str(self.spark_class.parents[1]),
        }
        self.port = _free_port()
        self.master = f"spark://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen] = []
        self.worker_ports: list[int] = []

    def _start(self, *args: str, log: str) -> subprocess.Popen:
        out = open(self.root / log, "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [str(self.spark_class), *args],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def start(self) -> None:
        self._start("org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(self.port),
                    "--webui-port", str(_free_port()), log="master.log")  # fmt: skip
        _wait_port(self.port)
        for k in range(2):
            port = _free_port()
            self.worker_ports.append(port)
            self._start("org.apache.spark.deploy.worker.Worker", self.master, "--host", "127.0.0.1",
                        "--port", str(port), "--cores", "1", "--memory", "2g", "--webui-port", str(_free_port()),
                        "--work-dir", str(self.root / f"work-{k}"), log=f"worker-{k}.log")  # fmt: skip
            _wait_port(port)

    def kill_worker(self, k: int) -> None:
        """SIGKILL worker ``k`` and the executors it started (their command lines name its work folder or port)."""
        mark = (str(self.root / f"work-{k}"), f"Worker@127.0.0.1:{self.worker_ports[k]}")
        os.killpg(self.procs[1 + k].pid, signal.SIGKILL)
        for pid in os.listdir("/proc"):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if pid.isdigit() and any(m in cmd for m in mark):
                os.kill(int(pid), signal.SIGKILL)

    def stop(self) -> None:
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


def _wait_port(port: int, seconds: float = 60) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"nothing listens on port {port}")


def test_standalone_cluster_survives_a_killed_worker(tmp_path):
    """Record on a master and two workers; kill one worker mid-job: the job finishes with exactly N rows, equal to local."""
    import threading

    from au.engines.spark.record import SPARK_DIR, record_spark
    from au.engines.spark.session import session
    from au.models.registry import build_model

    images, labels = blob_images(3000, 10, shape=(28, 28, 1), seed=3)
    dataset = data.ImageDataset(images, labels, np.array([f"x-{i:05d}" for i in range(3000)]),
                                tuple(str(k) for k in range(10)), "blobs", "all")  # fmt: skip
    write_images_table(dataset, tmp_path / "images.parquet", show_progress=False)
    model = build_model("mnist-cnn", (1, 28, 28), 10, seed=0)
    config = RecordConfig(layers=("conv2",), pool="none", dtype="float32", batch_size=32)
    record(
        model,
        data.load(f"parquet:{tmp_path / 'images.parquet'}", "all"),
        tmp_path / "local",
        config,
        show_progress=False,
    )

    cluster = Cluster(tmp_path)
    killed = threading.Event()

    def killer() -> None:  # once the first task has committed its output, kill worker 0
        temporary = tmp_path / "spark" / SPARK_DIR / "_temporary"
        end = time.monotonic() + 300
        while time.monotonic() < end and not killed.is_set():
            if list(temporary.glob("*/task_*")):
                cluster.kill_worker(0)
                killed.set()
                return
            time.sleep(0.2)

    from pyspark.sql import SparkSession

    if SparkSession.getActiveSession() is not None:  # the module's local[2] session: one per process
        SparkSession.getActiveSession().stop()
    try:
        cluster.start()
        with session(cluster.master, "au cluster test") as s:
            assert s.sparkContext.master == cluster.master
            thread = threading.Thread(target=killer, daemon=True)
            thread.start()
            m = record_spark(model, tmp_path / "images.parquet", tmp_path / "spark", config, master=cluster.master,
                             rows_per_task=200)  # fmt: skip
            thread.join(timeout=1)
    finally:
        killed.set()
        cluster.stop()
    assert killed.is_set() and cluster.procs[1].poll() is not None
    assert m["rows"] == 3000
    ids = activations.open(tmp_path / "spark").ids()
    assert len(ids) == 3000 and len(set(ids.tolist())) == 3000
    _same_tables(tmp_path / "local", tmp_path / "spark")


def test_cli_records_and_scores_with_spark(tiny, tmp_path):
    """The commands a user types: record with Spark from an images table, score its recordings with Spark."""
    run, common = str(tiny / "run"), ["--engine", "spark", "--master", MASTER]
    rec = ["--layers", "fc1,logits", "--dtype", "float32"]
    assert (
        run_au("record", "--run", run, "--split", "train", *rec, "--out", str(tmp_path / "train")).returncode
        == 0
    )
    proc = run_au("record", "--run", run, *common, "--images", str(tiny / "test.parquet"), *rec,
                  "--out", str(tmp_path / "test"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    proc = run_au("score", "--run", run, *common, "--acts", str(tmp_path / "train"), "--test-acts",
                  str(tmp_path / "test"), "--ood-acts", str(tmp_path / "train"), "--val-size", "10",
                  "--out", str(tmp_path / "scores"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Spark" in proc.stdout and "mahalanobis" in proc.stdout and "odin" not in proc.stdout
    proc = run_au(
        "score", "--run", run, *common, "--acts", str(tmp_path / "train"), "--out", str(tmp_path / "x")
    )
    assert proc.returncode == 2 and "--test-acts" in proc.stderr
