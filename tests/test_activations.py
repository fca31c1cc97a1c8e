"""Recording activations: values match a direct forward pass, tools read the table, interruption is safe."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import duckdb
import numpy as np
import pyarrow.dataset as ds
import pytest
import torch

from au import AUError, activations
from au.activations import RecordConfig, record
from au.data import ImageDataset, to_tensor
from au.models import build_model, save_weights
from au.models.layers import layer_names
from au.tables import spark_schema_ddl
from conftest import blob_images, run_au

LAYERS = ("conv1", "conv2", "fc1", "logits")


@pytest.fixture
def mnist_like() -> ImageDataset:
    x, y = blob_images(300, 10, shape=(28, 28, 1))
    return ImageDataset(
        x, y, np.array([f"ex-{i:04d}" for i in range(300)]), tuple("0123456789"), "blobs", "test"
    )


@pytest.fixture
def model() -> torch.nn.Module:
    return build_model("mnist-cnn", seed=3)


def _direct(model, images, layer, pool):
    """The layer's output for ``images`` by a plain forward pass, pooled as AU pools it."""
    out = {}
    handle = model.get_submodule(layer).register_forward_hook(lambda m, i, o: out.__setitem__("x", o))
    try:
        model.eval()
        with torch.no_grad():
            model(to_tensor(images))
    finally:
        handle.remove()
    x = out["x"]
    if x.ndim == 4 and pool == "avg":
        return x.mean(dim=(2, 3)).numpy()
    if x.ndim == 4 and pool == "max":
        return x.amax(dim=(2, 3)).numpy()
    return x.reshape(len(x), -1).numpy()


@pytest.mark.parametrize("pool,dtype", [("avg", "float16"), ("max", "float32"), ("none", "float16")])
def test_values_match_a_direct_forward_pass(tmp_path, mnist_like, model, pool, dtype):
    record(
        model,
        mnist_like,
        tmp_path / "r",
        RecordConfig(layers=LAYERS, pool=pool, dtype=dtype, batch_size=64),
        show_progress=False,
    )
    rec = activations.open(tmp_path / "r", verify=True)
    assert rec.num_rows == 300 and rec.layers == list(LAYERS)
    for layer in LAYERS:
        got = rec.layer(layer)
        expected = _direct(model, mnist_like.images, layer, pool)
        assert got.values.shape == expected.shape
        if layer == "logits":
            assert got.values.dtype == np.float32
            np.testing.assert_allclose(got.values, expected, rtol=1e-5, atol=1e-5)
        elif dtype == "float16":
            assert got.values.dtype == np.float16
            # float16 keeps 11 significant bits: relative error <= 2^-11, plus subnormal absolute error
            np.testing.assert_allclose(got.values.astype(np.float32), expected, rtol=2**-10, atol=1e-4)
        else:
            np.testing.assert_allclose(got.values, expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(got.ids, mnist_like.ids)
        np.testing.assert_array_equal(got.labels, mnist_like.labels)
    logits = rec.layer("logits")
    np.testing.assert_array_equal(logits.pred, logits.values.argmax(1))
    np.testing.assert_array_equal(logits.correct, logits.pred == mnist_like.labels)


def test_duckdb_and_pyarrow_read_the_table(tmp_path, mnist_like, model):
    config = RecordConfig(layers=LAYERS, batch_size=32, part_bytes=20_000)
    record(model, mnist_like, tmp_path / "r", config, show_progress=False)
    rec = activations.open(tmp_path / "r")
    assert len(rec.files) > 2  # small parts: several files, each of whole batches
    manifest = rec.manifest
    assert all(p["rows"] % 32 == 0 for p in manifest["parts"][:-1])
    glob = str(tmp_path / "r" / "part-*.parquet")
    n, distinct, correct = duckdb.sql(
        f"select count(*), count(distinct example_id), sum(correct::int) from '{glob}'"
    ).fetchall()[0]
    assert n == 300 and distinct == 300
    fc1 = rec.layer("fc1")
    assert correct == int(fc1.correct.sum())
    # DuckDB lists are 1-based; float16 columns arrive as FLOAT
    row = duckdb.sql(
        f"select example_id, fc1[5], len(fc1), conv2[1] from '{glob}' where example_id = 'ex-0123'"
    ).fetchall()[0]
    i = int(np.flatnonzero(fc1.ids == "ex-0123")[0])
    assert row[0] == "ex-0123" and row[2] == 128
    assert row[1] == pytest.approx(float(fc1.values[i, 4]))
    table = ds.dataset([str(f) for f in rec.files], format="parquet").to_table(columns=["example_id", "fc1"])
    assert table.num_rows == 300 and table.schema.field("fc1").type.list_size == 128


def test_all_layers_and_original_shapes_in_the_manifest(tmp_path, mnist_like, model):
    manifest = record(
        model, mnist_like, tmp_path / "r", RecordConfig(layers="all", limit=10), show_progress=False
    )
    names = [layer["name"] for layer in manifest["layers"]]
    assert names == layer_names(model)
    conv2 = next(layer for layer in manifest["layers"] if layer["name"] == "conv2")
    assert conv2["shape"] == [64, 24, 24] and conv2["pool"] == "avg" and conv2["features"] == 64
    assert manifest["rows"] == 10 and manifest["dtype"] == "float16"
    assert activations.open(tmp_path / "r").layer("flatten").values.shape == (10, 9216)


def test_hooks_removed_and_mode_restored_after_failure(tmp_path, mnist_like, model):
    model.train()
    bad = ImageDataset(
        mnist_like.images[:, :20, :20], mnist_like.labels, mnist_like.ids, mnist_like.class_names, "b", "t"
    )
    with pytest.raises(AUError):
        record(model, bad, tmp_path / "r", RecordConfig(layers=LAYERS), show_progress=False)
    assert model.training
    assert all(not m._forward_hooks for m in model.modules())


def test_unknown_layer_lists_valid_names(tmp_path, mnist_like, model):
    with pytest.raises(AUError, match=r"unknown layer 'fc9'; valid layers: normalize, conv1, .* logits"):
        record(model, mnist_like, tmp_path / "r", RecordConfig(layers=("fc1", "fc9")), show_progress=False)
    assert not (tmp_path / "r").exists()


def test_different_recording_refused_and_untouched(tmp_path, mnist_like, model):
    out = tmp_path / "r"
    record(model, mnist_like, out, RecordConfig(layers=("fc1",)), show_progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(AUError, match=r"finished recording of .* \(different layers\)"):
        record(model, mnist_like, out, RecordConfig(layers=("conv1",)), show_progress=False)
    again = record(model, mnist_like, out, RecordConfig(layers=("fc1",)), show_progress=False)
    assert again["rows"] == 300
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_reader_refuses_incomplete_or_inconsistent_recordings(tmp_path, mnist_like, model):
    out = tmp_path / "r"
    record(
        model,
        mnist_like,
        out,
        RecordConfig(layers=("fc1",), batch_size=50, part_bytes=10_000),
        show_progress=False,
    )
    manifest = json.loads((out / "manifest.json").read_text())
    (out / manifest["parts"][1]["file"]).unlink()
    with pytest.raises(AUError, match="missing"):
        activations.open(out)
    (out / "manifest.json").unlink()
    with pytest.raises(AUError, match="no manifest.json"):
        activations.open(out)
    with pytest.raises(AUError, match="was not recorded"):
        record(model, mnist_like, tmp_path / "s", RecordConfig(layers=("fc1",)), show_progress=False)
        activations.open(tmp_path / "s").layer("conv1")


_KILLABLE = textwrap.dedent(
    """
    import os, signal, sys, numpy as np
    from au import activations
    from au.activations import parts
    from au.data import ImageDataset
    from au.models import build_model
    sys.path.insert(0, {tests!r})
    from conftest import blob_images

    kill_after = {kill_after!r}
    write = parts.PartWriter._write
    def write_then_maybe_die(self, buffer, part):
        write(self, buffer, part)
        if kill_after and len(self.parts) == kill_after:  # the Nth part is on disk: die at once
            os.kill(os.getpid(), signal.SIGKILL)
    parts.PartWriter._write = write_then_maybe_die

    x, y = blob_images(2000, 10, shape=(28, 28, 1))
    data = ImageDataset(x, y, np.array([f"ex-{{i:05d}}" for i in range(2000)]), tuple("0123456789"), "blobs", "test")
    config = activations.RecordConfig(layers=("conv1", "fc1", "logits"), pool="none", batch_size=50, part_bytes=150_000)
    activations.record(build_model("mnist-cnn", seed=3), data, {out!r}, config, show_progress=False)
    """
)


@pytest.mark.slow
def test_recording_killed_with_sigkill_resumes_to_identical_values(tmp_path):
    """Killed with SIGKILL the moment its third part is written; resumed, the table equals an uninterrupted one."""
    tests = os.path.dirname(__file__)
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    env = {**os.environ, "AU_PROGRESS": "0"}

    def recording(out, kill_after=None):
        script = _KILLABLE.format(tests=tests, out=str(out), kill_after=kill_after)
        return subprocess.run([sys.executable, "-c", script], env=env)

    assert recording(whole).returncode == 0
    assert recording(cut, kill_after=3).returncode == -signal.SIGKILL
    assert sorted(p.name for p in cut.glob("part-*.parquet")) == [f"part-0000{i}.parquet" for i in range(3)]
    assert not (cut / "manifest.json").exists()
    with pytest.raises(AUError, match="is unfinished"):
        activations.open(cut)
    assert recording(cut).returncode == 0
    a, b = activations.open(whole, verify=True), activations.open(cut, verify=True)
    assert b.manifest["resumed_from_row"] > 0 and b.num_rows == 2000
    for layer in ("conv1", "fc1", "logits"):
        la, lb = a.layer(layer), b.layer(layer)
        assert len(set(lb.ids)) == 2000
        np.testing.assert_array_equal(la.ids, lb.ids)
        np.testing.assert_array_equal(la.values, lb.values)


def test_cli_record_and_bad_weights(tmp_path):
    from au.train import TrainConfig, train_run

    x, y = blob_images(120, 10, shape=(28, 28, 1))
    xt, yt = blob_images(40, 10, shape=(28, 28, 1), seed=1)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
    spec = f"npz:{tmp_path / 'd.npz'}"
    from au.data import load_train_test

    train, test = load_train_test(spec)
    model = build_model("mnist-cnn", seed=0)
    train_run(
        model,
        train,
        test,
        TrainConfig(max_steps=2),
        tmp_path / "run",
        model_name="mnist-cnn",
        data_spec=spec,
        show_progress=False,
    )
    ok = run_au(
        "--quiet",
        "record",
        "--run",
        str(tmp_path / "run"),
        "--layers",
        "fc1,logits",
        "--out",
        str(tmp_path / "a"),
    )
    assert ok.returncode == 0, ok.stderr
    assert activations.open(tmp_path / "a").layer("fc1").values.shape == (40, 128)

    # weights of another architecture in the run directory: refused with a message naming both
    manifest_path = tmp_path / "run" / "manifest.json"
    sha = save_weights(build_model("alexnet-cifar"), tmp_path / "run" / "weights.safetensors")
    manifest = json.loads(manifest_path.read_text())
    manifest["weights"]["sha256"] = sha
    manifest_path.write_text(json.dumps(manifest))
    bad = run_au("record", "--run", str(tmp_path / "run"), "--out", str(tmp_path / "b"))
    assert bad.returncode == 1 and "holds weights of 'alexnet-cifar'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and not (tmp_path / "b").exists()


def test_spark_schema_ddl(tmp_path, mnist_like, model):
    record(model, mnist_like, tmp_path / "r", RecordConfig(layers=("fc1", "logits")), show_progress=False)
    schema = ds.dataset(str(tmp_path / "r" / "part-00000.parquet")).schema
    ddl = spark_schema_ddl(schema)
    assert ddl.startswith("`example_id` STRING, `dataset` STRING") and "`fc1` ARRAY<FLOAT>" in ddl


def test_batch_columns_own_their_memory(model, mnist_like):
    """Buffered columns are not views of tensors: a view pins its tensor's heap block, and buffering
    a whole part of views kept gigabytes of freed activation buffers resident."""
    from au.activations.hooks import capture
    from au.activations.record_job import batch_columns, check_record_inputs

    config = RecordConfig(layers=("conv2", "fc1", "logits"), pool="none", dtype="float32")
    _, specs, _, _ = check_record_inputs(model, mnist_like, config)
    model.eval()
    with torch.inference_mode(), capture(model, ["conv2", "fc1"], "none") as outputs:
        columns = batch_columns(
            model,
            mnist_like.images[:8],
            mnist_like.labels[:8],
            mnist_like.ids[:8],
            specs,
            outputs,
            torch.float32,
        )
    for name in ("pred", "logits", "conv2", "fc1"):
        assert columns[name].flags.owndata, name
    np.testing.assert_array_equal(columns["fc1"], _direct(model, mnist_like.images[:8], "fc1", "none"))
