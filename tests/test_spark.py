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
import pyarrow as pa
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
    # the manifest states the schema Spark's files hold: the local columns, layers as list<float32>
    stored = [pq.read_schema(tmp_path / "spark" / part["file"]) for part in m["parts"]]
    assert {s.to_string(show_schema_metadata=False) for s in stored} == {m["schema"]}
    local = activations.open(tmp_path / "local")
    local_schema = pq.read_schema(local.files[0])
    assert stored[0].names == local_schema.names and m["schema"] != local.manifest["schema"]
    for field in local_schema:
        got = stored[0].field(field.name).type
        if pa.types.is_fixed_size_list(field.type):  # float16 too: Spark stores float32
            assert pa.types.is_list(got) and got.value_type == pa.float32(), field.name
        else:
            assert got == field.type, field.name


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


def test_spark_parzen_deann_tracks_the_local_detector(spark, tiny, tmp_path, monkeypatch):
    """parzen_lsh's Spark default: DEANN per block of training rows (arXiv 2107.02736) against the local detector.

    2,980 fitted training rows (200 held out for the bandwidths) in 5 reference blocks of about
    560; queries: 500 test rows and 200 OOD rows (the same blobs plus up to 7 grey levels of
    noise). Measured: largest |score difference| from the local ``deann`` detector 0.40 and from
    the exact sum 0.040 (the local detector from exact: 0.42; log-densities of about 160); AUROC
    0.81297 against local ``deann``'s 0.81331 and exact's 0.81319. Tolerances: no farther from
    exact than the local estimate plus 0.05, 0.6 from local ``deann``; AUROC within 0.002 of both.
    """
    from au.detectors.parzen import ParzenLSH
    from au.engines.spark import score
    from au.ood import auroc
    from au.score.config import ScoreConfig
    from au.score.schema import read_scores_table

    model = _model(tiny)
    train = make_dataset(3000, 3, shape=(28, 28, 1), seed=2, split="train")
    blobs = make_dataset(200, 3, shape=(28, 28, 1), seed=6, split="all")
    noisy = blobs.images + np.random.default_rng(1).integers(0, 8, blobs.images.shape).astype(np.uint8)
    ood = data.ImageDataset(noisy, blobs.labels, blobs.ids, blobs.class_names, "noisy-blobs", "all")
    rec = RecordConfig(layers=("fc1", "logits"), pool="avg", dtype="float32")
    test = data.load(f"npz:{tiny / 'blobs.npz'}", "test")
    for name, dataset in (("train", train), ("test", test), ("ood", ood)):
        record(model, dataset, tmp_path / name, rec, show_progress=False)
    config = ScoreConfig(
        detectors=("parzen_lsh",), layer="fc1", val_size=20, params={"parzen_lsh": {"heldout": 200}}
    )
    monkeypatch.setattr(score, "REFERENCE_BLOCK", 600)  # 5 blocks of 2,980 fitted rows
    m = score.score_spark(tmp_path / "train", [(tmp_path / "test", False), (tmp_path / "ood", True)],
                          tmp_path / "spark", config, master=MASTER)  # fmt: skip
    on_spark = read_scores_table(tmp_path / "spark" / "scores.parquet").column("parzen_lsh").to_numpy()

    features = activations.open(tmp_path / "train").layer("fc1").values
    fit_rows = score._fitting_rows(activations.open(tmp_path / "train"), config)
    local = ParzenLSH(heldout=200).fit(features[fit_rows])
    queries = np.concatenate([activations.open(tmp_path / s).layer("fc1").values for s in ("test", "ood")])
    s_local = local.score_samples(queries)
    s_exact = local.partition_log_densities(queries, method="exact").sum(axis=2).mean(axis=1)

    def area(s: np.ndarray) -> float:
        return auroc(s[:500], s[500:])

    assert np.abs(on_spark - s_exact).max() <= np.abs(s_local - s_exact).max() + 0.05
    assert np.abs(on_spark - s_local).max() <= 0.6
    assert abs(area(on_spark) - area(s_local)) <= 0.002 and abs(area(on_spark) - area(s_exact)) <= 0.002
    assert m["detectors"]["parzen_lsh"]["ood"]["noisy-blobs"]["auroc"] == pytest.approx(
        area(on_spark), abs=1e-12
    )


def test_spark_statistics_are_added_up_by_spark(spark, monkeypatch):
    """Mahalanobis's class sums and d x d Gram matrices are added up by the executors: the driver receives the totals."""
    from pyspark import RDD

    from au.detectors import registry
    from au.engines.spark import score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 600)
    x = (rng.normal(size=(600, 16)) + y[:, None]).astype(np.float32)
    table = pa.table({"_row": np.arange(600), "label": y,
                      "feat": pa.array(list(x), type=pa.list_(pa.float32()))})  # fmt: skip
    frame = spark.createDataFrame(table.to_pandas()).repartition(12)
    received = []

    def counted(collect):
        def wrapper(self, *a, **k):
            out = collect(self, *a, **k)
            received.append(len(out))
            return out

        return wrapper

    monkeypatch.setattr(score, "FAN_IN", 3)  # a tree of three levels: 12 partitions -> 4 -> 2 -> 1
    monkeypatch.setattr(RDD, "collect", counted(RDD.collect))
    monkeypatch.setattr(
        type(frame), "collect", counted(type(frame).collect)
    )  # Spark 4: the classic DataFrame
    det = registry.build("mahalanobis")
    score._fit(det, frame, "feat", 16, np.arange(600))
    # one collect per pass, of one row per key: 3 class counts and 3 sums; then the Gram matrix and the rows
    assert received == [6, 2]
    local = registry.build("mahalanobis").fit(x, y)
    np.testing.assert_allclose(det.means_, local.means_, rtol=1e-12)
    np.testing.assert_allclose(det.precision_, local.precision_, rtol=1e-9)


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
    lsh = ScoreConfig(detectors=("parzen_lsh",), params={"parzen_lsh": {"method": "lsh"}})
    with pytest.raises(AUError, match="method='lsh' cannot be scaled out"):  # its tables need every row
        score_spark(tmp_path / "acts", [(tmp_path / "acts", False)], tmp_path / "out", lsh)
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


@pytest.fixture(scope="module")
def tiny_acts(tiny):
    """Local recordings of the tiny run's training and test splits (fc1 and the logits), for au score."""
    from au.train.rundir import load_run

    trained, spec = load_run(tiny / "run"), f"npz:{tiny / 'blobs.npz'}"
    config = RecordConfig(layers=("fc1", "logits"), pool="avg", dtype="float32")
    weights = trained.manifest["weights"]["sha256"]  # the run's: au score --run accepts these recordings
    for split in ("train", "test"):
        dataset = data.load(spec, split)
        record(
            trained.model,
            dataset,
            tiny / f"acts-{split}",
            config,
            weights_sha256=weights,
            show_progress=False,
        )
    return tiny


BAD_INPUTS = {  # case: (what the one line must say)
    "unreachable-master": "no answer (Connection refused); start the master",
    "invalid-master": "is not a Spark master URL; use local[N]",
    "java-home-without-java": "has no bin/java, and the Spark engine needs Java 17 or newer; point JAVA_HOME",
    "no-java": "no java on the PATH (JAVA_HOME is not set), and the Spark engine needs Java 17 or newer",
}


def _spark_command(command: str, tiny: Path, table: Path, master: str, out: Path) -> list[str]:
    """The arguments of a correct ``au COMMAND --engine spark`` on the tiny run, but for ``master``."""
    engine = ["--engine", "spark", "--master", master, "--out", str(out)]
    if command == "record":
        return ["record", "--run", str(tiny / "run"), "--images", str(table), *engine]
    if command == "score":
        return ["score", "--run", str(tiny / "run"), "--acts", str(tiny / "acts-train"),
                "--test-acts", str(tiny / "acts-test"), "--val-size", "10", *engine]  # fmt: skip
    return ["ablate", "--model", "mnist-cnn", "--data", f"npz:{tiny / 'blobs.npz'}", "--fractions", "1",
            "--trials", "1", "--max-steps", "2", *engine]  # fmt: skip


@pytest.mark.parametrize(
    "command, case",
    [("record", "no-image-column")] + [(c, k) for c in ("record", "score", "ablate") for k in BAD_INPUTS],
)
def test_spark_bad_input_is_one_line_and_writes_nothing(tiny, tiny_acts, tmp_path, command, case):
    """Java, the master and the input are checked before the output directory is claimed: one line, exit 1."""
    table, master = tiny / "test.parquet", MASTER
    env = {k: v for k, v in os.environ.items() if k != "AU_DEBUG"}
    if case == "no-image-column":
        pq.write_table(pq.read_table(table).drop_columns(["image"]), tmp_path / "bad.parquet")
        table, fragment = tmp_path / "bad.parquet", "no 'image' column"
    else:
        fragment = BAD_INPUTS[case]
    if case == "unreachable-master":
        master = f"spark://127.0.0.1:{_free_port()}"
    elif case == "invalid-master":
        master = "spark//127.0.0.1:7077"
    elif case == "java-home-without-java":
        env["JAVA_HOME"] = str(tmp_path / "no-java")
        fragment = f"JAVA_HOME={tmp_path / 'no-java'} {fragment}"
    elif case == "no-java":
        env.pop("JAVA_HOME", None)
        env["PATH"] = str(tmp_path)  # nothing on it: no java
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "au", *_spark_command(command, tiny, table, master, tmp_path / "out")],
        capture_output=True, text=True, env={**env, "AU_PROGRESS": "0"}, timeout=120,
    )  # fmt: skip
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1 and fragment in lines[0], proc.stderr
    assert lines[0].startswith(f"au {command}: error: ") and "Traceback" not in proc.stderr
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

    def executors(self, k: int) -> list[int]:
        """The process ids of the executors worker ``k`` started: their command lines name its URL."""
        mark, found = f"Worker@127.0.0.1:{self.worker_ports[k]}", []
        for pid in os.listdir("/proc"):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if pid.isdigit() and "CoarseGrainedExecutorBackend" in cmd and mark in cmd:
                found.append(int(pid))
        return found

    def kill_worker(self, k: int) -> list[int]:
        """SIGKILL worker ``k`` and the executors it started; returns the executors' process ids.

        The executors are listed before the kill: they share the worker's process group, so the
        kill may take them before a later look could find them."""
        executors = self.executors(k)
        os.killpg(self.procs[1 + k].pid, signal.SIGKILL)
        for pid in executors:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return executors

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
    out, returned, seen = tmp_path / "spark", threading.Event(), {}

    def killer() -> None:
        """Once a task has committed and worker 0 runs an executor, kill worker 0; note what the job had done by then."""
        try:
            end = time.monotonic() + 300
            while time.monotonic() < end and not returned.is_set():
                committed = list((out / SPARK_DIR / "_temporary").glob("*/task_*"))
                if committed and cluster.executors(0):  # mid-job, and worker 0 runs an executor
                    seen["tasks_committed"] = len(committed)
                    seen["job_committed"] = (out / SPARK_DIR / "_SUCCESS").exists()
                    seen["job_returned"] = returned.is_set()
                    seen["executors"] = cluster.kill_worker(0)
                    seen["worker_exit"] = cluster.procs[1].wait(timeout=30)
                    seen["at"] = time.monotonic()
                    seen["executors_left"] = _still_running(seen["executors"])
                    return
                time.sleep(0.2)
        except BaseException as e:  # the test reads it below: a failing killer must not pass for a kill
            seen["error"] = repr(e)

    from pyspark.sql import SparkSession

    if SparkSession.getActiveSession() is not None:  # the module's local[2] session: one per process
        SparkSession.getActiveSession().stop()
    try:
        cluster.start()
        with session(cluster.master, "au cluster test") as s:
            assert s.sparkContext.master == cluster.master
            thread = threading.Thread(target=killer, daemon=True)
            thread.start()
            m = record_spark(model, tmp_path / "images.parquet", out, config, master=cluster.master,
                             rows_per_task=200)  # fmt: skip
            returned.set()
            finished = time.monotonic()
            thread.join(timeout=60)
        # while the cluster still runs: worker 0 and its executors were killed, during the recording
        assert not thread.is_alive() and "error" not in seen, seen
        assert "at" in seen, (
            "worker 0 was never killed: within 300 s no task committed while it ran an executor"
        )
        assert seen["worker_exit"] == -signal.SIGKILL and cluster.procs[1].poll() == -signal.SIGKILL
        assert cluster.procs[0].poll() is None and cluster.procs[2].poll() is None  # the master, worker 1
        assert seen["executors"] and not seen["executors_left"], seen
        partitions = 3000 // 200
        assert seen["at"] < finished and not seen["job_returned"] and not seen["job_committed"], seen
        assert seen["tasks_committed"] < partitions, seen
    finally:
        returned.set()
        cluster.stop()
    assert m["rows"] == 3000 and len(m["parts"]) == partitions
    ids = activations.open(out).ids()
    assert len(ids) == 3000 and len(set(ids.tolist())) == 3000
    _same_tables(tmp_path / "local", out)


def _still_running(pids: list[int], seconds: float = 10) -> list[int]:
    """Those of ``pids`` still running (not gone, nor a zombie) after up to ``seconds``."""
    end = time.monotonic() + seconds
    while True:
        left = []
        for pid in pids:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state not in ("Z", "X"):
                left.append(pid)
        if not left or time.monotonic() > end:
            return left
        time.sleep(0.2)


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
