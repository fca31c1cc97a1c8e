"""Training: seeded and bit-identical, resumable after a kill, and careful with existing run directories."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from au import AUError
from au.data import ImageDataset
from au.jobs import INCOMPLETE, MANIFEST
from au.train import TrainConfig, fit, load_run, train_run
from au.train.loop import STATE_FILE, learning_rate
from conftest import interrupted, make_dataset, tiny_net

CONFIG = TrainConfig(epochs=3, batch_size=16, lr=0.01, val_fraction=0.2)


def _weights(model) -> list[torch.Tensor]:
    return [t.clone() for t in model.state_dict().values()]


def test_same_seed_bit_identical_weights(blobs, tmp_path):
    train, test = blobs
    a = train_run(tiny_net(0), train, test, CONFIG, tmp_path / "a", show_progress=False)
    b = train_run(tiny_net(0), train, test, CONFIG, tmp_path / "b", show_progress=False)
    c = train_run(tiny_net(0), train, test, CONFIG.updated(seed=1), tmp_path / "c", show_progress=False)
    assert a.manifest["weights"]["sha256"] == b.manifest["weights"]["sha256"]
    assert a.manifest["weights"]["sha256"] != c.manifest["weights"]["sha256"]


def test_training_learns_and_manifest_records_the_run(blobs, tmp_path):
    train, test = blobs
    result = train_run(
        tiny_net(0), train, test, CONFIG.updated(epochs=8), tmp_path / "r", show_progress=False
    )
    m = json.loads((tmp_path / "r" / MANIFEST).read_text())
    assert m["metrics"]["test_accuracy"] > 0.9
    assert m["data"]["n_train"] + m["data"]["n_val"] == 90 and m["data"]["n_test"] == 30
    assert m["config"]["seed"] == 0 and m["training"]["steps"] == 8 * 5
    assert m["environment"]["versions"]["torch"].startswith(torch.__version__.split("+")[0])
    assert len(m["weights"]["sha256"]) == 64
    assert (tmp_path / "r" / "per_class.csv").read_text().splitlines()[
        0
    ] == "class,name,support,precision,recall,f1"
    assert not (tmp_path / "r" / INCOMPLETE).exists() and not (tmp_path / "r" / STATE_FILE).exists()
    loaded = load_run(tmp_path / "r", tiny_net(9))
    assert all(torch.equal(p, q) for p, q in zip(_weights(loaded.model), _weights(result.model), strict=True))


def test_resume_after_interruption_is_bit_identical(blobs, tmp_path):
    train, test = blobs
    whole = train_run(tiny_net(0), train, test, CONFIG, tmp_path / "whole", show_progress=False)

    interrupted(lambda: train_run(tiny_net(0), train, test, CONFIG, tmp_path / "cut", show_progress=False))
    assert (tmp_path / "cut" / INCOMPLETE).exists() and not (tmp_path / "cut" / MANIFEST).exists()
    with pytest.raises(AUError, match="is unfinished .* re-run the same 'au train' command"):
        load_run(tmp_path / "cut")

    resumed = train_run(tiny_net(0), train, test, CONFIG, tmp_path / "cut", show_progress=False)
    assert resumed.manifest["training"]["resumed_from_step"] > 0
    assert resumed.manifest["weights"]["sha256"] == whole.manifest["weights"]["sha256"]
    assert resumed.manifest["metrics"] == whole.manifest["metrics"]


def test_finished_run_is_skipped_and_a_different_job_refused(blobs, tmp_path):
    train, test = blobs
    out = tmp_path / "r"
    first = train_run(tiny_net(0), train, test, CONFIG, out, show_progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    again = train_run(tiny_net(0), train, test, CONFIG, out, show_progress=False)
    assert again.skipped and again.manifest == first.manifest
    with pytest.raises(AUError, match=r"already holds a finished run of .* \(different config\)"):
        train_run(tiny_net(0), train, test, CONFIG.updated(seed=5), out, show_progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_non_run_directory_is_refused(blobs, tmp_path):
    train, test = blobs
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(AUError, match="exists and is not an AU job directory"):
        train_run(tiny_net(0), train, test, CONFIG, tmp_path, show_progress=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_fit_restores_global_rng_and_respects_max_steps(blobs):
    train, _ = blobs
    net = tiny_net(0)
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    result = fit(net, train, CONFIG.updated(max_steps=4), show_progress=False)
    assert torch.equal(torch.rand(1), expected)
    assert result.steps == 4 and result.stopped == "max_steps" and len(result.history["step_loss"]) == 4


def test_label_beyond_model_outputs_is_a_clear_error():
    data = make_dataset(30, 5)
    with pytest.raises(AUError, match="num_classes=5"):
        fit(tiny_net(0, num_classes=3), data, CONFIG, show_progress=False)


def test_wrong_image_shape_is_a_clear_error():
    data = make_dataset(30, 3, shape=(12, 12, 3))
    with pytest.raises(AUError, match="cannot take images of shape"):
        fit(tiny_net(0), data, CONFIG, show_progress=False)


def test_cosine_schedule():
    config = TrainConfig(lr=1.0)
    assert learning_rate(0, 100, config) == 1.0
    assert learning_rate(50, 100, config) == pytest.approx(0.5)
    assert learning_rate(99, 100, config) < 0.01
    assert learning_rate(50, 100, config.updated(schedule="constant")) == 1.0


@pytest.mark.parametrize(
    "field,value", [("keep", 0.0), ("epochs", 0), ("batch_size", 0), ("schedule", "step"), ("lr", -1.0)]
)
def test_config_validation(field, value):
    with pytest.raises(AUError, match=field):
        TrainConfig(**{field: value})


def test_history_is_json_and_per_epoch(blobs, tmp_path):
    train, test = blobs
    train_run(tiny_net(0), train, test, CONFIG, tmp_path / "r", show_progress=False)
    h = json.loads((tmp_path / "r" / "history.json").read_text())
    assert h["epoch"] == [1.0, 2.0, 3.0] and len(h["val_accuracy"]) == 3
    assert np.isfinite(h["step_loss"]).all()


def _misleading_val(n: int = 60) -> ImageDataset:
    """Noise images with random labels: validation accuracy wanders as the model learns, so training stops early."""
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, size=(n, 8, 8, 1), dtype=np.uint8)
    labels = rng.integers(0, 3, size=n).astype(np.int64)
    return ImageDataset(
        images, labels, np.array([f"v{i}" for i in range(n)]), ("c0", "c1", "c2"), "noise", "val"
    )


def test_early_stopping_restores_the_best_weights(blobs):
    train, _ = blobs
    net = tiny_net(0)
    config = CONFIG.updated(epochs=200, lr=0.05, patience=2, eval_every=3, schedule="constant")
    snapshots = {}

    def remember(entry):
        snapshots[entry["step"]] = [t.clone() for t in net.state_dict().values()]

    result = fit(net, train, config, _misleading_val(), show_progress=False, on_eval=remember)
    h = result.history
    assert result.stopped == "early_stopping" and result.steps < 200 * 5
    acc = np.array(h["val_accuracy"])
    best = h["step"][int(np.flatnonzero(acc == acc.max())[-1])]  # the later of equal best scores
    assert result.best_step == best
    # the last two evaluations fell below the best one, and the model holds the best step's weights
    assert h["step"][-1] == best + 2 * 3
    assert all(torch.equal(p, q) for p, q in zip(net.state_dict().values(), snapshots[best], strict=True))


def test_early_stopping_keeps_training_through_ties(blobs):
    train, _ = blobs
    val = make_dataset(30, 3, seed=5, split="val")  # separable: accuracy reaches 1.0 and stays
    result = fit(tiny_net(0), train, CONFIG.updated(epochs=6, patience=1), val, show_progress=False)
    assert result.stopped == "epochs" and result.best_step == result.steps


def test_early_stopping_resumes_bit_identically(blobs, tmp_path):
    train, test = blobs
    config = CONFIG.updated(epochs=12, lr=0.05, patience=3, eval_every=2, schedule="constant")
    whole = train_run(tiny_net(0), train, test, config, tmp_path / "whole", show_progress=False)
    cut = tmp_path / "cut"
    interrupted(
        lambda: train_run(tiny_net(0), train, test, config, cut, show_progress=False),
        at_eval=4,
        checkpoint_seconds=None,
    )
    resumed = train_run(tiny_net(0), train, test, config, tmp_path / "cut", show_progress=False)
    assert resumed.manifest["training"]["resumed_from_step"] == 6  # the checkpoint before the kill
    assert resumed.manifest["weights"]["sha256"] == whole.manifest["weights"]["sha256"]
    assert resumed.manifest["training"]["best_step"] == whole.manifest["training"]["best_step"]


def test_crop_flip_moves_whole_images_and_is_seeded_per_step():
    from au.train.augment import augment, crop_flip, step_generator

    x = torch.rand(16, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    out = crop_flip(x, step_generator(0, 5))
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i in range(len(x)):  # each output is one window of the padded image, flipped or not
        windows = [padded[i, :, dy : dy + 8, dx : dx + 8] for dy in range(9) for dx in range(9)]
        assert any(torch.equal(out[i], w) or torch.equal(out[i], w.flip(-1)) for w in windows)
    assert torch.equal(augment(x, "crop-flip", 0, 5), out)
    assert not torch.equal(augment(x, "crop-flip", 0, 6), out) and not torch.equal(
        augment(x, "crop-flip", 1, 5), out
    )
    assert augment(x, "none", 0, 5) is x


def test_augmented_training_resumes_bit_identically_and_is_recorded(blobs, tmp_path):
    train, test = blobs
    config = CONFIG.updated(augment="crop-flip")
    whole = train_run(tiny_net(0), train, test, config, tmp_path / "whole", show_progress=False)
    plain = train_run(tiny_net(0), train, test, CONFIG, tmp_path / "plain", show_progress=False)
    assert whole.manifest["config"]["augment"] == "crop-flip" and "augment" not in plain.manifest["config"]
    assert whole.manifest["weights"]["sha256"] != plain.manifest["weights"]["sha256"]
    interrupted(lambda: train_run(tiny_net(0), train, test, config, tmp_path / "cut", show_progress=False))
    resumed = train_run(tiny_net(0), train, test, config, tmp_path / "cut", show_progress=False)
    assert resumed.manifest["training"]["resumed_from_step"] > 0
    assert resumed.manifest["weights"]["sha256"] == whole.manifest["weights"]["sha256"]
