"""``au decode``: decoders that beat the mean image, inversion that matches features, kernel draws with the
density's bandwidths, a reproducible table whose images are what was scored, and refusals of bad input."""

from __future__ import annotations

import io

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from au.activations import RecordConfig, record
from au.cli import main
from au.data import to_tensor
from au.errors import AUError
from au.generate.decode_config import KINDS, DecodeConfig
from browser import CHROMIUM, render
from conftest import blob_images, make_dataset, tiny_net

LAYERS = ("flatten", "conv1")
QUICK = {"steps": 300, "batch_size": 32, "invert": 6, "invert_steps": 150, "samples": 8, "pairs": 2}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run fastest, and as reproducibly, on one thread (and a busy machine slows two a lot)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _trained(train, steps: int = 60, seed: int = 0):
    """TinyNet trained a few Adam steps on the blobs (it then classifies them all right)."""
    model = tiny_net(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    torch.manual_seed(seed)
    for step in range(steps):
        rows = np.arange(step * 32, step * 32 + 32) % len(train)
        loss = F.cross_entropy(model(to_tensor(train.images[rows])), torch.from_numpy(train.labels[rows]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A trained TinyNet, its blobs, recordings of conv1 (a whole (4, 8, 8) map) and flatten (64,), one decoding."""
    from au.generate.decode_job import decode_run

    root = tmp_path_factory.mktemp("decode")
    train, test = make_dataset(240, 3, seed=0, split="train"), make_dataset(60, 3, seed=1, split="test")
    model = _trained(train)
    config = RecordConfig(layers=("conv1", "flatten"), pool="none", dtype="float32")
    record(model, train, root / "train-acts", config, show_progress=False)
    record(model, test, root / "test-acts", config, show_progress=False)
    decode_config = DecodeConfig(layers=LAYERS, **QUICK)
    data = {"train_data": train, "test_data": test}
    manifest = decode_run(model, root / "train-acts", root / "test-acts", root / "out", decode_config, **data)
    return {
        "root": root,
        "model": model,
        "train": train,
        "test": test,
        "data": data,
        "config": decode_config,
        "manifest": manifest,
    }


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
def test_report_as_a_reader_sees_it(setup):
    """Every grid loads and nothing is wider than the page (the tables scroll in their own boxes)."""
    seen = render(setup["root"] / "out" / "report.html")
    assert seen["images"] >= 3 * len(LAYERS) and seen["broken"] == 0, seen
    assert seen["page_width"] <= seen["window_width"] and not seen["wide"], seen


def _layer(setup, name: str) -> dict:
    return next(s for s in setup["manifest"]["layers"] if s["layer"] == name)


def _rows(setup, **where) -> list[dict]:
    rows = pq.read_table(setup["root"] / "out" / "decoded.parquet").to_pylist()
    return [r for r in rows if all(r[k] == v for k, v in where.items())]


def _png(data: bytes) -> np.ndarray:
    image = np.asarray(Image.open(io.BytesIO(data)))
    return image[..., None] if image.ndim == 2 else image


@pytest.mark.parametrize("layer", LAYERS)
def test_decoders_beat_the_mean_image_and_keep_the_class(setup, layer):
    """Held out: MSE under a fifth of the mean training image's (measured: 0.004 and 0.001 against 0.086)."""
    s = _layer(setup, layer)
    assert s["original_accuracy"] == 1.0
    assert s["test_mse"] < 0.2 * s["baseline_mse"], s
    assert s["test_psnr"] > s["baseline_psnr"] + 7, s
    assert s["decoded_accuracy"] >= 0.95 and s["decoded_agreement"] >= 0.95, s
    assert s["input"] == ("vector" if layer == "flatten" else "map")


def _check_feature_scores(setup, rows, images):
    """Every registered detector that reads logits or features scores each decoded image; the feature ones at
    the row's layer, fitted on the training rows (conv1's map averaged over space, as the density reads it)."""
    from au.detectors import registry
    from au.detectors.inputs import Inputs, fit_detector, score_detector
    from au.explain.density import layer_features

    names = [n for n in registry.reading("logits", "features") if n != registry.DENSITY]
    assert {"msp", "energy", "knn", "mahalanobis", "trust"} <= set(names) <= set(rows[0])
    model, train = setup["model"], setup["train"]
    fitted_features, fitted_logits = layer_features(model, train.images, "conv1")
    features, logits = layer_features(model, images, "conv1")
    fitted = Inputs(logits=fitted_logits, features=fitted_features, labels=train.labels)
    scored = Inputs(logits=logits, features=features, pred=logits.argmax(1))
    for name in ("knn", "mahalanobis", "trust"):
        expected = score_detector(fit_detector(registry.build(name), fitted), scored)
        np.testing.assert_allclose([r[name] for r in rows], expected, rtol=1e-4, atol=1e-5, err_msg=name)


def test_the_table_holds_every_kind_and_its_images_are_what_was_scored(setup):
    model, test, config = setup["model"], setup["test"], setup["config"]
    for layer in LAYERS:
        counts = {kind: len(_rows(setup, layer=layer, kind=kind)) for kind in KINDS}
        assert counts == {
            "test": len(test),
            "high_density": config.samples,
            "low_density": config.samples,
            "interpolation": config.pairs * config.interpolation_steps,
            "inversion": config.invert,
        }
    rows = _rows(setup, layer="conv1")
    images = np.stack([_png(r["png"]) for r in rows])  # (n, 8, 8, 1) uint8
    with torch.inference_mode():
        logits = model(to_tensor(images))
    np.testing.assert_array_equal(logits.argmax(1).numpy(), [r["pred"] for r in rows])
    probs = np.array([r["probs"] for r in rows])
    np.testing.assert_allclose(probs, torch.softmax(logits, 1).numpy(), atol=1e-6)
    np.testing.assert_allclose([r["msp"] for r in rows], probs.max(axis=1), atol=1e-6)
    np.testing.assert_allclose([r["energy"] for r in rows], torch.logsumexp(logits, 1).numpy(), atol=1e-4)
    _check_feature_scores(setup, rows, images)
    tests = [r for r in rows if r["kind"] == "test"]
    assert [r["source_ids"] for r in tests] == [[i] for i in test.ids]
    originals = test.images.astype(float) / 255
    mse = [((_png(r["png"]) / 255 - o) ** 2).mean() for r, o in zip(tests, originals, strict=True)]
    np.testing.assert_allclose([r["pixel_mse"] for r in tests], mse)
    lines = [r for r in rows if r["kind"] == "interpolation"]
    assert all(len(r["source_ids"]) == 2 and r["label"] is None for r in lines)
    assert [r["t"] for r in lines[: config.interpolation_steps]] == pytest.approx(
        np.linspace(0, 1, config.interpolation_steps)
    )


def test_saved_decoders_reload_and_decode_the_same_images(setup):
    from au.activations import open as open_recording
    from au.generate.decoder import build_decoder, decode, to_uint8
    from au.models.weights import load_weights

    values = open_recording(setup["root"] / "test-acts").layer("conv1").values  # (60, 256)
    decoder = build_decoder((4, 8, 8), (1, 8, 8), seed=123)  # other initial weights: all are loaded
    load_weights(decoder, setup["root"] / "out" / "decoders" / "conv1.safetensors")
    tests = _rows(setup, layer="conv1", kind="test")
    np.testing.assert_array_equal(
        to_uint8(decode(decoder, values)), np.stack([_png(r["png"]) for r in tests])
    )


def test_high_density_draws_are_denser_than_low_density_draws(setup):
    for layer in LAYERS:
        s = _layer(setup, layer)
        assert s["high_density_anchor_log_density"] > s["low_density_anchor_log_density"]
        high = [r["target_log_density"] for r in _rows(setup, layer=layer, kind="high_density")]
        low = [r["target_log_density"] for r in _rows(setup, layer=layer, kind="low_density")]
        assert np.mean(high) > np.mean(low), (layer, high, low)
        assert np.median(high) > np.median(low), (layer, high, low)


def test_kernel_draws_have_the_density_bandwidths_and_keep_a_maps_average():
    """Around one anchor, each partition's standardised noise has the partition's bandwidth as its deviation."""
    from au.detectors.parzen import ParzenLSH
    from au.generate.decode_job import LayerInput
    from au.generate.density_draws import kernel_draws

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 8)) * np.arange(1, 9)
    density = ParzenLSH(partitions=2, partitionings=1, seed=0).fit(x)
    vector = LayerInput("fc", "none", (8,))
    draws = kernel_draws(density, vector, np.repeat(x[:1], 4000, axis=0), np.random.default_rng(1))
    z = (draws - x[0]) / density.scale_  # (4000, 8)
    for p, idx in enumerate(density.partitionings_[0]):
        np.testing.assert_allclose(z[:, idx].std(axis=0), density.bandwidths_[0, p], rtol=0.06)
        np.testing.assert_allclose(z[:, idx].mean(axis=0), 0, atol=0.1 * density.bandwidths_[0, p])
    maps = rng.normal(size=(400, 8, 3, 3)) + np.arange(1, 9)[:, None, None]
    as_map = LayerInput("conv", "none", (8, 3, 3))
    density = ParzenLSH(partitions=2, seed=0).fit(as_map.density_features(maps.reshape(400, -1)))
    anchors = maps[:5].reshape(5, -1)
    drawn = kernel_draws(density, as_map, anchors, np.random.default_rng(2))  # (5, 72)
    shift = drawn.reshape(5, 8, 9) - anchors.reshape(5, 8, 9)
    np.testing.assert_allclose(shift, shift[:, :, :1].repeat(9, axis=2), atol=1e-12)  # one shift per channel
    assert np.abs(shift).max() > 0


def test_inversion_matches_the_features_and_leaves_the_model_as_it_was():
    """Mahendran & Vedaldi's objective brings the relative feature error from ~0.5 to under a fifth of it
    (measured: 0.02-0.08 of it on three trained TinyNets)."""
    from au.activations.hooks import capture
    from au.generate.invert import invert

    model = _trained(make_dataset(240, 3, seed=0), seed=1)
    images, _ = blob_images(6, 3, seed=3)
    with torch.inference_mode(), capture(model, ["flatten"], "none") as out:
        model(to_tensor(images))
    targets = out["flatten"].numpy()
    model.train().zero_grad(set_to_none=True)
    found = invert(model, "flatten", "none", targets, (1, 8, 8), steps=150, lr=0.1, tv_weight=0.01, seed=0)
    assert found.images.shape == (6, 1, 8, 8) and 0 <= found.images.min() and found.images.max() <= 1
    assert (found.feature_error < 0.2 * found.start_error).all(), (found.start_error, found.feature_error)
    assert model.training and all(p.grad is None for p in model.parameters())
    assert not any(m._forward_hooks for m in model.modules())
    again = invert(model, "flatten", "none", targets, (1, 8, 8), steps=150, lr=0.1, tv_weight=0.01, seed=0)
    np.testing.assert_array_equal(found.images, again.images)


def test_inversion_and_decoder_are_compared_on_the_same_targets(setup):
    for layer in LAYERS:
        s = _layer(setup, layer)
        assert s["inverted"] == setup["config"].invert
        assert s["inversion_feature_error"] < 0.3 * s["inversion_start_error"], s
        assert s["inversion_seconds_per_image"] > s["decoder_seconds_per_image"] > 0
        inverted = _rows(setup, layer=layer, kind="inversion")
        assert [r["source_ids"] for r in inverted] == [[i] for i in setup["test"].ids[: len(inverted)]]


def test_same_seed_same_table_another_seed_another_and_a_rerun_is_untouched(setup, tmp_path):
    from au.generate.decode_job import decode_run

    root, model, data = setup["root"], setup["model"], setup["data"]
    small = DecodeConfig(layers=("flatten",), steps=40, invert=2, invert_steps=10, samples=4, pairs=1)
    acts = (root / "train-acts", root / "test-acts")
    first = decode_run(model, *acts, tmp_path / "a", small, **data)
    decode_run(model, *acts, tmp_path / "b", small, **data)
    decode_run(model, *acts, tmp_path / "c", DecodeConfig(**{**small.__dict__, "seed": 1}), **data)
    table = (tmp_path / "a" / "decoded.parquet").read_bytes()
    assert table == (tmp_path / "b" / "decoded.parquet").read_bytes()
    assert table != (tmp_path / "c" / "decoded.parquet").read_bytes()
    stamp = (tmp_path / "a" / "decoded.parquet").stat().st_mtime_ns
    assert decode_run(model, *acts, tmp_path / "a", small, **data)["job_key"] == first["job_key"]
    assert (tmp_path / "a" / "decoded.parquet").stat().st_mtime_ns == stamp
    with pytest.raises(AUError, match="different config"):
        decode_run(model, *acts, tmp_path / "a", DecodeConfig(**{**small.__dict__, "steps": 41}), **data)


def test_an_interrupted_job_resumes_with_its_decoders_and_ends_as_an_uninterrupted_one(
    setup, tmp_path, monkeypatch
):
    from au.generate import decode_job

    root, model, data = setup["root"], setup["model"], setup["data"]
    small = DecodeConfig(layers=LAYERS, steps=40, invert=2, invert_steps=10, samples=4, pairs=1)
    acts = (root / "train-acts", root / "test-acts")
    decode_job.decode_run(model, *acts, tmp_path / "clean", small, **data)

    def killed(*_args, **_kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(decode_job, "write_table", killed)  # killed after both decoders were saved
        with pytest.raises(KeyboardInterrupt):
            decode_job.decode_run(model, *acts, tmp_path / "r", small, **data)
    assert (tmp_path / "r" / "incomplete.json").is_file() and not (tmp_path / "r" / "manifest.json").exists()
    saved = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "r" / "decoders").iterdir()}
    assert sorted(saved) == ["conv1.safetensors", "flatten.safetensors"]

    def retrain(*_args, **_kwargs):
        raise AssertionError("a decoder the interrupted run had saved was trained again")

    monkeypatch.setattr(decode_job, "train_decoder", retrain)
    manifest = decode_job.decode_run(model, *acts, tmp_path / "r", small, **data)
    assert manifest["times"]["resumed"]
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "r" / "decoders").iterdir()} == saved
    clean = (tmp_path / "clean" / "decoded.parquet").read_bytes()
    assert (tmp_path / "r" / "decoded.parquet").read_bytes() == clean


def test_bad_input_is_refused_in_one_line_before_anything_is_written(setup, tmp_path):
    from au.generate.decode_job import decode_run

    root, model, data = setup["root"], setup["model"], setup["data"]
    acts = (root / "train-acts", root / "test-acts")
    out = tmp_path / "refused"
    with pytest.raises(AUError, match=r"^layer 'logits' was not recorded in .*; recorded: conv1, flatten$"):
        decode_run(model, *acts, out, DecodeConfig(layers=("flatten", "logits")), **data)
    with pytest.raises(AUError, match="recorded with other weights than this model's"):
        decode_run(tiny_net(seed=5), *acts, out, DecodeConfig(layers=("flatten",)), **data)
    with pytest.raises(AUError, match="holds the training split; pass a recording of held-out data"):
        decode_run(model, acts[0], acts[0], out, DecodeConfig(layers=("flatten",)), **data)
    other = {"train_data": make_dataset(240, 3, seed=9), "test_data": data["test_data"]}
    with pytest.raises(AUError, match="was recorded from other examples than 'blobs'"):
        decode_run(model, *acts, out, DecodeConfig(layers=("flatten",)), **other)
    assert not out.exists()
    for bad, fragment in [
        ({"steps": 0}, "steps must be an integer of at least 1, got 0"),
        ({"layers": ()}, "name at least one recorded layer"),
        ({"loss": "l1"}, "--loss must be one of mse, bce"),
        ({"tv_weight": float("nan")}, "tv_weight must be a finite number >= 0"),
    ]:
        with pytest.raises(AUError, match=fragment):
            DecodeConfig(**{"layers": ("fc1",), **bad})


def _au(*args) -> int:
    return main(["--quiet", *(str(a) for a in args)])


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """A mnist-cnn run on a tiny 28x28 npz dataset, and recordings of fc1 and conv2 on both splits."""
    root = tmp_path_factory.mktemp("decode-cli")
    x, y = blob_images(60, 3, shape=(28, 28, 1))
    xt, yt = blob_images(20, 3, shape=(28, 28, 1), seed=1)
    np.savez(root / "blobs.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
    train = ("train", "--model", "mnist-cnn", "--data", f"npz:{root / 'blobs.npz'}", "--max-steps", 3)
    assert _au(*train, "--out", root / "run") == 0
    for split in ("train", "test"):
        recording = ("record", "--run", root / "run", "--split", split, "--layers", "fc1,conv2")
        assert _au(*recording, "--out", root / f"acts-{split}") == 0
    return root


def _decode_args(root, *extra) -> list:
    return [
        "decode",
        "--run",
        root / "run",
        "--acts",
        root / "acts-train",
        "--test-acts",
        root / "acts-test",
        *extra,
    ]


def test_cli_decodes_and_prints_a_row_per_layer(cli_run, capsys):
    quick = ("--steps", 30, "--invert", 2, "--invert-steps", 5, "--samples", 3, "--pairs", 1)
    args = _decode_args(cli_run, "--layers", "fc1,conv2", *quick, "--out", cli_run / "d")
    assert _au(*args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[:2] == ["layer", "MSE"] and [line.split()[0] for line in out[2:]] == [
        "fc1",
        "conv2",
    ]
    table = pq.read_table(cli_run / "d" / "decoded.parquet")
    assert set(table.column("layer").to_pylist()) == {"fc1", "conv2"}
    assert (cli_run / "d" / "decoders" / "conv2.safetensors").is_file()
    html = (cli_run / "d" / "report.html").read_text()
    assert "Decoder against inversion" in html and html.count("<img") >= 6


def test_cli_missing_layer_is_one_line_and_exit_1(cli_run, capsys):
    args = _decode_args(cli_run, "--layers", "fc1,conv1", "--out", cli_run / "refused")
    assert _au(*args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1 and "layer 'conv1' was not recorded" in err[0] and "recorded: fc1, conv2" in err[0]
    ), err
    assert "Traceback" not in err[0] and not (cli_run / "refused").exists()


@pytest.mark.parametrize(
    "extra",
    [("--steps", 0), ("--seed", -1), ("--interpolation-steps", 1), ("--tv-weight", "nan"), ("--layers", ",")],
)
def test_cli_bad_argument_exits_2(cli_run, capsys, extra):
    layers = () if extra[0] == "--layers" else ("--layers", "fc1")
    with pytest.raises(SystemExit) as exit_:
        _au(*_decode_args(cli_run, *layers, *extra, "--out", cli_run / "x"))
    assert exit_.value.code == 2 and not (cli_run / "x").exists()
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
