"""``au score``: the scores table and metrics, reuse of a recording, resumption, and refusals."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from au import data
from au.activations import RecordConfig, record
from au.detectors import DETECTORS
from au.errors import AUError
from au.models import build_model
from au.models.layers import penultimate_layer
from au.score import ROW_COLUMNS, ScoreConfig, read_scores, score_run
from conftest import blob_images, make_dataset, run_au, tiny_net

PARAMS = {
    "parzen_lsh": {"heldout": 40, "partitions": 2, "partitionings": 2},
    "knn": {"k": 5},
    "trust": {"k": 5},
}


def _setting():
    train, test = make_dataset(300, 3, seed=0, split="train"), make_dataset(60, 3, seed=1, split="test")
    noise = data.load("noise-uniform:n=40:shape=8x8x1", "all")
    return tiny_net(), train, test, [noise]


def _config(**kw):
    chosen = kw.get("detectors", tuple(DETECTORS))
    kw.setdefault("val_size", 30)
    return ScoreConfig(params={k: v for k, v in PARAMS.items() if k in chosen}, **kw)


def test_scores_table_and_metrics(tmp_path):
    model, train, test, ood = _setting()
    result = score_run(model, train, test, ood, tmp_path / "s", _config())
    table, metrics = read_scores(tmp_path / "s")
    assert table.column_names == [*ROW_COLUMNS, *DETECTORS]
    assert table.num_rows == 60 + 40
    is_ood = table.column("is_ood").to_numpy(zero_copy_only=False)
    assert is_ood.sum() == 40 and not table.column("correct").to_numpy(zero_copy_only=False)[is_ood].any()
    for name in DETECTORS:
        values = table.column(name).to_numpy()
        assert np.isfinite(values).all(), name
        m = metrics["detectors"][name]["ood"]["noise-uniform:n=40:shape=8x8x1"]
        assert set(m) == {"auroc", "aupr_in", "aupr_out", "fpr_at_95_tpr", "detection_accuracy"}
        assert 0 <= m["auroc"] <= 1
        assert "misclassification_auroc" in metrics["detectors"][name]
    assert result["layer"] == "conv1"  # TinyNet's last layer with weights before logits
    assert metrics["in_distribution"]["n_fit"] == 300 - 30
    # a re-run with the same arguments finds it complete; different arguments are refused, untouched
    before = (tmp_path / "s" / "scores.parquet").read_bytes()
    assert score_run(model, train, test, ood, tmp_path / "s", _config())["job_key"] == result["job_key"]
    with pytest.raises(AUError, match=r"already holds a finished scoring .* \(different config\)"):
        score_run(model, train, test, ood, tmp_path / "s", _config(seed=1))
    assert (tmp_path / "s" / "scores.parquet").read_bytes() == before


def test_reusing_a_recording_gives_the_same_scores(tmp_path):
    model, train, test, ood = _setting()
    names = ("msp", "energy", "mahalanobis", "knn", "trust")
    own = score_run(model, train, test, ood, tmp_path / "own", _config(detectors=names))
    record(
        model,
        train,
        tmp_path / "acts",
        RecordConfig(layers=("conv1", "logits"), dtype="float32"),
        show_progress=False,
    )
    reused = score_run(
        model, train, test, ood, tmp_path / "reused", _config(detectors=names), acts=tmp_path / "acts"
    )
    assert reused["in_distribution"]["n_fit"] == own["in_distribution"]["n_fit"]
    a, b = (
        pq.read_table(tmp_path / "own" / "scores.parquet"),
        pq.read_table(tmp_path / "reused" / "scores.parquet"),
    )
    for name in names:
        np.testing.assert_allclose(a.column(name).to_numpy(), b.column(name).to_numpy(), rtol=1e-6, atol=1e-6)
    # a finished scoring is returned before its recording is read again
    (tmp_path / "acts" / "manifest.json").rename(tmp_path / "acts-manifest.json")
    again = score_run(
        model, train, test, ood, tmp_path / "reused", _config(detectors=names), acts=tmp_path / "acts"
    )
    assert again == reused
    (tmp_path / "acts-manifest.json").rename(tmp_path / "acts" / "manifest.json")
    with pytest.raises(AUError, match="has no layer 'pool'"):
        score_run(
            model,
            train,
            test,
            ood,
            tmp_path / "x",
            _config(detectors=names, layer="pool"),
            acts=tmp_path / "acts",
        )


def test_bad_inputs_fail_before_writing(tmp_path):
    model, train, test, _ = _setting()
    wrong = data.load("noise-uniform:n=10", "all")  # 28x28, the model takes 8x8
    with pytest.raises(
        AUError, match=r"OOD set 'noise-uniform:n=10' has images of shape \(28, 28, 1\).*8x8x1"
    ):
        score_run(model, train, test, [wrong], tmp_path / "s", _config())
    with pytest.raises(AUError, match="unknown layer 'nope'.*conv1"):
        score_run(model, train, test, [], tmp_path / "s", _config(layer="nope"))
    assert not (tmp_path / "s").exists()
    with pytest.raises(AUError, match="val_size must be at least 10, got 5"):
        score_run(
            model, train, test, [], tmp_path / "s", _config(detectors=("mahalanobis_ensemble",), val_size=5)
        )
    assert not (tmp_path / "s").exists()
    with pytest.raises(AUError, match="unknown detector"):
        ScoreConfig(detectors=("msp", "gold"))
    with pytest.raises(AUError, match="not a finished AU score directory"):
        read_scores(tmp_path)


def test_unfinished_or_altered_scores_are_refused(tmp_path):
    model, train, test, ood = _setting()
    out = tmp_path / "s"
    score_run(model, train, test, ood, out, _config(detectors=("msp",)))
    table = pq.read_table(out / "scores.parquet")
    pq.write_table(table.set_column(7, "msp", pa.array(np.zeros(table.num_rows))), out / "scores.parquet")
    with pytest.raises(AUError, match="scores.parquet is missing or changed"):
        read_scores(out)
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").unlink()
    (out / "incomplete.json").write_text(json.dumps({"job_key": manifest["job_key"]}))
    with pytest.raises(AUError, match="is unfinished"):
        read_scores(out)


def test_the_scores_table_has_a_declared_schema(tmp_path):
    from au.score import read_scores_table, scores_schema
    from au.tables import spark_schema_ddl

    model, train, test, ood = _setting()
    score_run(model, train, test, ood, tmp_path / "s", _config(detectors=("msp", "knn")))
    table = read_scores_table(tmp_path / "s" / "scores.parquet")
    assert table.schema.remove_metadata() == scores_schema(("msp", "knn"))
    assert spark_schema_ddl(table.schema).endswith("`is_ood` BOOLEAN, `msp` DOUBLE, `knn` DOUBLE")
    pq.write_table(table.drop(["is_ood"]), tmp_path / "bad.parquet")
    with pytest.raises(AUError, match="does not have the expected columns"):
        read_scores_table(tmp_path / "bad.parquet")


def test_scores_into_another_directory_are_refused(tmp_path):
    """An unrelated non-empty --out, or an unfinished scoring of another job, is refused untouched."""
    model, train, test, ood = _setting()
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("mine")
    with pytest.raises(AUError, match="exists and is not an AU job directory"):
        score_run(model, train, test, ood, other, _config(detectors=("msp",)))
    assert [p.name for p in other.iterdir()] == ["todo.txt"]
    out = tmp_path / "s"
    score_run(model, train, test, ood, out, _config(detectors=("msp",)))
    (out / "manifest.json").unlink()
    (out / "incomplete.json").write_text('{"job_key": "another", "label": "scoring of another model"}')
    with pytest.raises(AUError, match="holds an unfinished scoring of another model, not this scoring"):
        score_run(model, train, test, ood, out, _config(detectors=("msp",)))


def test_penultimate_layer_of_the_registry_models():
    assert penultimate_layer(build_model("mnist-cnn")) == "fc1"
    assert penultimate_layer(build_model("alexnet-cifar")) not in ("logits",)


@pytest.mark.slow
def test_cli_score_prints_the_table(tmp_path):
    from au.train import TrainConfig, train_run

    x, y = blob_images(400, 10, shape=(28, 28, 1))
    xt, yt = blob_images(60, 10, shape=(28, 28, 1), seed=1)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
    spec = f"npz:{tmp_path / 'd.npz'}"
    train, test = data.load_train_test(spec)
    train_run(
        build_model("mnist-cnn", seed=0),
        train,
        test,
        TrainConfig(max_steps=3),
        tmp_path / "run",
        model_name="mnist-cnn",
        data_spec=spec,
        show_progress=False,
    )
    args = [
        "--quiet",
        "score",
        "--run",
        str(tmp_path / "run"),
        "--ood",
        "noise-gaussian:n=30,noise-uniform:n=30",
        "--detectors",
        "msp,energy,mahalanobis,knn",
        "--val-size",
        "20",
        "--out",
        str(tmp_path / "s"),
    ]
    ok = run_au(*args)
    assert ok.returncode == 0, ok.stderr
    assert "noise-gaussian:n=30" in ok.stdout and "misclassification AUROC" in ok.stdout
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert set(manifest["detectors"]) == {"msp", "energy", "mahalanobis", "knn"}
    assert (
        run_au(*args[:-2], "--val-size", "0", "--out", str(tmp_path / "v")).returncode == 0
    )  # zero is allowed
    for option, value in (("--val-size", "-1"), ("--seed", "x"), ("--limit", "0")):
        refused = run_au(*args[:-2], option, value, "--out", str(tmp_path / "w"))
        assert refused.returncode == 2 and option in refused.stderr and not (tmp_path / "w").exists()
    bad = run_au(
        "score",
        "--run",
        str(tmp_path / "run"),
        "--ood",
        "noise-uniform:shape=32x32x3",
        "--out",
        str(tmp_path / "t"),
    )
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr
    assert "has images of shape (32, 32, 3)" in bad.stderr and not (tmp_path / "t").exists()
