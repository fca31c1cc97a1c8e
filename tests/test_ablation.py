"""Ablation sweeps: nested stratified subsets, class ablation, resume after SIGKILL, refusals and bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from au import AUError
from au.ablation import SWEEP_TRAINING, SweepConfig, plan_trials, read_trials, run_sweep
from au.data import ImageDataset
from conftest import TinyNet, blob_images, make_dataset, run_au

FAST = SWEEP_TRAINING.updated(max_steps=12, batch_size=16, lr=0.01, patience=2)


def tiny_factory(input_shape, num_classes, seed):
    import torch

    torch.manual_seed(seed)
    return TinyNet(num_classes)


@pytest.fixture
def data() -> tuple[ImageDataset, ImageDataset]:
    return make_dataset(300, 3, seed=0, split="train"), make_dataset(60, 3, seed=1, split="test")


def _sweep(**kwargs) -> SweepConfig:
    return SweepConfig(**{"model": "tiny", "data": "blobs", "trials": 2, "training": FAST, **kwargs})


def _run(sweep, out, data, **kwargs):
    train, test = data
    return run_sweep(sweep, out, train=train, test=test, factory=tiny_factory, show_progress=False, **kwargs)


def _train_ids(out, run_dir) -> set:
    manifest = json.loads((out / run_dir / "manifest.json").read_text())
    return manifest["data"]["train_ids_sha256"], manifest["data"]["n_train"]


def test_sweep_rows_and_nested_subsets(tmp_path, data):
    sweep = _sweep(fractions=(0.1, 0.3, 1.0))
    table = _run(sweep, tmp_path, data)
    assert table.num_rows == 6
    rows = table.to_pylist()
    assert [(r["fraction"], r["trial"]) for r in rows] == [(f, t) for f in (0.1, 0.3, 1.0) for t in (0, 1)]
    assert all(r["seed"] == r["trial"] for r in rows)
    assert all(len(r["per_class_recall"]) == 3 and r["n_test"] == 60 for r in rows)
    # nested and stratified: per-class training counts grow with the fraction, each class in proportion
    train, _ = data
    from au.data import keep_subset

    for t in (0, 1):
        subsets = [keep_subset(train.labels, f, t, FAST.val_fraction).train for f in (0.1, 0.3, 1.0)]
        assert set(subsets[0]) <= set(subsets[1]) <= set(subsets[2])
        counts = [r["per_class_n_train"] for r in rows if r["trial"] == t]
        assert counts[0] == np.bincount(train.labels[subsets[0]]).tolist()
        assert max(counts[0]) - min(counts[0]) <= 1
    # the table is readable by DuckDB-free tools too: plain Parquet with the declared schema
    assert (
        pq.read_table(tmp_path / "trials.parquet").schema.field("per_class_recall").type.value_type.bit_width
        == 64
    )


def test_trials_train_with_the_sweeps_augmentation(tmp_path, data):
    plain = _run(_sweep(fractions=(1.0,), trials=1), tmp_path / "plain", data)
    aug = _run(
        _sweep(fractions=(1.0,), trials=1, training=FAST.updated(augment="crop-flip")), tmp_path / "aug", data
    )
    run_dir = aug.column("run_dir").to_pylist()[0]
    assert (
        json.loads((tmp_path / "aug" / run_dir / "manifest.json").read_text())["config"]["augment"]
        == "crop-flip"
    )
    # same subset, seed and steps: only the augmented batches can make the two trials differ
    assert plain.column("test_loss").to_pylist() != aug.column("test_loss").to_pylist()


def test_class_ablation_keeps_other_classes_whole(tmp_path, data):
    sweep = _sweep(ablate_class=2, class_fractions=(0.1, 0.5), trials=1)
    rows = _run(sweep, tmp_path, data).to_pylist()
    whole = np.bincount(data[0].labels)
    for r in rows:
        counts = r["per_class_n_train"]
        expected_other = [round(n * 0.9) for n in whole]  # validation carve-out of 10% comes off every class
        assert counts[0] == expected_other[0] and counts[1] == expected_other[1]
        assert r["n_train_ablated_class"] == counts[2] < expected_other[2]
        assert r["kind"] == "class" and r["fraction"] == 1.0
    assert (
        rows[0]["class_fraction"] == 0.1
        and rows[0]["n_train_ablated_class"] < rows[1]["n_train_ablated_class"]
    )


def test_rerun_skips_finished_trials_and_different_sweep_is_refused(tmp_path, data):
    sweep = _sweep(fractions=(0.2, 1.0))
    first = _run(sweep, tmp_path, data)
    stamp = (tmp_path / "trials" / "f0.2-t0" / "weights.safetensors").stat().st_mtime_ns
    second = _run(sweep, tmp_path, data)
    assert (tmp_path / "trials" / "f0.2-t0" / "weights.safetensors").stat().st_mtime_ns == stamp
    assert first.drop(["wall_seconds"]).equals(second.drop(["wall_seconds"]))
    before = (tmp_path / "trials.parquet").read_bytes()
    with pytest.raises(AUError, match="finished sweep .*different fractions"):
        _run(_sweep(fractions=(0.2, 0.5)), tmp_path, data)
    assert (tmp_path / "trials.parquet").read_bytes() == before


def test_partial_table_is_refused_by_the_reader(tmp_path, data):
    sweep = _sweep(fractions=(0.2, 1.0), trials=1)
    _run(sweep, tmp_path, data)
    from au.ablation.table import write_trials

    rows = read_trials(tmp_path).to_pylist()
    write_trials(tmp_path / "trials.parquet", rows[:1], expected_rows=2)
    with pytest.raises(AUError, match="1 of 2 trials"):
        read_trials(tmp_path)
    assert read_trials(tmp_path, allow_partial=True).num_rows == 1


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"fractions": (0.0, 0.5)}, r"outside \(0, 1\]"),
        ({"fractions": (1.5,)}, r"outside \(0, 1\]"),
        ({"fractions": (0.001,)}, "fewer than the 3 classes"),
        ({"ablate_class": 7, "class_fractions": (0.5,)}, "out of range"),
        ({"ablate_class": 1, "class_fractions": ()}, "at least one class fraction"),
    ],
)
def test_bad_sweeps(kwargs, message, data):
    with pytest.raises(AUError, match=message):
        plan_trials(_sweep(**kwargs), data[0].labels)


def test_parallel_workers_give_the_same_rows(tmp_path, data):
    sweep = _sweep(fractions=(0.2, 1.0))
    serial = _run(sweep, tmp_path / "serial", data, threads=1)
    parallel = _run(sweep, tmp_path / "parallel", data, workers=2, threads=1)
    assert serial.drop(["wall_seconds"]).equals(parallel.drop(["wall_seconds"]))


@pytest.fixture
def npz_spec(tmp_path):
    x, y = blob_images(400, 10, shape=(28, 28, 1))
    xt, yt = blob_images(100, 10, shape=(28, 28, 1), seed=1)
    path = tmp_path / "blobs10.npz"
    np.savez(path, x_train=x, y_train=y, x_test=xt, y_test=yt)
    return f"npz:{path}"


_KILLED_SWEEP = """
import os, signal, sys
import au.train.train_job as train_job
from au.cli import main

kill_in = int(sys.argv[1])  # die inside the Nth trial, at its first validation point
fit, trials = train_job.fit, []
def fit_or_die(*args, **kwargs):
    trials.append(1)
    if len(trials) == kill_in:
        kwargs["on_eval"] = lambda entry: os.kill(os.getpid(), signal.SIGKILL)
    return fit(*args, **kwargs)
train_job.fit = fit_or_die
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.slow
def test_sweep_killed_with_sigkill_resumes_to_the_same_table(tmp_path, npz_spec):
    """Killed with SIGKILL inside its third trial; re-run, the sweep ends with the uninterrupted table."""
    args = ["ablate", "--model", "mnist-cnn", "--data", npz_spec, "--fractions", "0.5,1", "--trials", "2"]
    args += ["--max-steps", "10", "--threads-per-trial", "1"]
    whole = run_au("--quiet", *args, "--out", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr

    out = tmp_path / "killed"
    env = {**os.environ, "AU_PROGRESS": "0"}
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_SWEEP, "3", "--quiet", *args, "--out", str(out)],
        env=env,
        capture_output=True,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert pq.read_table(out / "trials.parquet").num_rows == 2
    assert (out / "incomplete.json").is_file() and not (out / "manifest.json").exists()
    with pytest.raises(AUError, match="not finished"):
        read_trials(out)

    resumed = run_au("--quiet", *args, "--out", str(out))
    assert resumed.returncode == 0, resumed.stderr
    a = read_trials(tmp_path / "whole").drop(["wall_seconds", "run_dir"])
    b = read_trials(out).drop(["wall_seconds", "run_dir"])
    assert a.equals(b)
    assert b.num_rows == 4 and len({(r["fraction"], r["trial"]) for r in b.to_pylist()}) == 4


@pytest.mark.slow
def test_cli_bad_input(tmp_path, npz_spec):
    base = ["ablate", "--model", "mnist-cnn", "--data", npz_spec, "--out", str(tmp_path / "s")]
    for extra, fragment in (
        (["--fractions", "0.5,2"], "not in (0, 1]"),
        (["--fractions", "0.001"], "fewer than the 10 classes"),
        (["--ablate-class", "12", "--class-fractions", "0.5"], "out of range"),
        (["--ablate-class", "1"], "needs --class-fractions"),
    ):
        proc = run_au(*base, *extra)
        assert proc.returncode != 0
        assert len(proc.stderr.strip().splitlines()) == 1 and fragment in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_curve_writes_fits_and_plots(tmp_path, data):
    from au.cli import main

    _run(_sweep(fractions=(0.05, 0.1, 0.2, 0.5, 1.0)), tmp_path, data)
    assert main(["--quiet", "curve", str(tmp_path), "--bootstrap", "50", "--targets", "0.9"]) == 0
    fits = json.loads((tmp_path / "curve" / "fits.json").read_text())
    assert {"pac", "power_law", "holdout", "needed"} <= set(fits)
    assert {"a", "b", "e_inf"} <= set(fits["power_law"])
    assert [p["fraction"] for p in fits["holdout"]["points"]] == [0.5, 1.0]
    assert fits["needed"][0]["target_accuracy"] == 0.9
    for name in ("learning_curve.png", "error_loglog.png", "per_class.png"):
        assert (tmp_path / "curve" / name).read_bytes()[:4] == b"\x89PNG"
    # a finished analysis is kept; other options into the same directory are refused
    assert main(["--quiet", "curve", str(tmp_path), "--bootstrap", "50", "--targets", "0.9"]) == 0
    assert main(["--quiet", "curve", str(tmp_path), "--bootstrap", "60", "--targets", "0.9"]) == 1


def test_curve_on_class_sweep_and_on_a_non_sweep(tmp_path, data, capsys):
    from au.cli import main

    _run(_sweep(ablate_class=0, class_fractions=(0.05, 0.2, 0.5, 1.0), trials=1), tmp_path / "c", data)
    assert (
        main(["--quiet", "curve", str(tmp_path / "c"), "--bootstrap", "20", "--out", str(tmp_path / "f")])
        == 0
    )
    fits = json.loads((tmp_path / "f" / "fits.json").read_text())
    assert fits["ablated_class"] == 0 and len(fits["points"]) == 4
    assert (tmp_path / "f" / "class_ablation.png").is_file()
    assert main(["curve", str(tmp_path / "nothing")]) == 1
    assert "does not exist; pass the --out of 'au ablate'" in capsys.readouterr().err
    assert main(["curve", str(tmp_path / "f")]) == 1  # a curve directory is not a sweep
    assert "holds the output of 'au curve', not of 'au ablate'" in capsys.readouterr().err


def _workers_of(pid: int) -> list[int]:
    """Child processes of ``pid`` that are multiprocessing workers (not its resource tracker)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    out = []
    for child in map(int, children):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
            out.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"  # a zombie has ended
    except (OSError, IndexError):
        return False


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux's /proc and PR_SET_PDEATHSIG")
def test_workers_die_when_the_sweep_is_killed(tmp_path, npz_spec):
    args = ["ablate", "--model", "mnist-cnn", "--data", npz_spec, "--fractions", "0.5,1", "--trials", "2"]
    args += [
        "--max-steps",
        "100000",
        "--workers",
        "2",
        "--threads-per-trial",
        "1",
        "--out",
        str(tmp_path / "s"),
    ]
    env = {**os.environ, "AU_PROGRESS": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "au", "--quiet", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 120
        workers: list[int] = []
        while time.time() < deadline and len(workers) < 2:
            workers = _workers_of(proc.pid)
            time.sleep(0.1)
        assert len(workers) == 2, "the sweep did not start its two workers"
        os.kill(proc.pid, signal.SIGKILL)  # the sweep alone, not its process group
        proc.wait()
        deadline = time.time() + 20
        while time.time() < deadline and any(_alive(w) for w in workers):
            time.sleep(0.1)
        assert not any(_alive(w) for w in workers), "workers outlived the killed sweep"
    finally:
        try:  # whatever is left of the process group, workers included
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
