"""The confident classifier (``au train --confident``): the KL term at work, a resumable run of three networks,
and its generated samples as a dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from au import AUError, data
from au.generate.confident import GENERATED, ConfidentTrainer, generate, kl_from_uniform
from au.generate.confident_config import ConfidentConfig
from au.generate.gan import Discriminator, Generator
from au.jobs import INCOMPLETE, MANIFEST
from au.models.layers import eval_mode
from au.train import TrainConfig, train_run
from au.train.loop import STATE_FILE
from conftest import interrupted, make_dataset, run_au, tiny_net

CONFIG = TrainConfig(epochs=4, batch_size=16, lr=0.01, val_fraction=0.2)


def _confident_run(blobs, out, beta: float, config: TrainConfig = CONFIG, samples: int = 200):
    train, test = blobs
    model = tiny_net(0)
    confident = ConfidentConfig(beta=beta, samples=samples, width=16)
    trainer = ConfidentTrainer(model, config, confident, train.class_names)
    return train_run(model, train, test, config, out, show_progress=False, trainer=trainer)


def _msp(model, images: np.ndarray) -> np.ndarray:
    with eval_mode(model), torch.inference_mode():
        return (
            torch.softmax(model(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255), 1)
            .max(1)
            .values.numpy()
        )


def test_kl_from_uniform_is_the_divergence_of_the_uniform_from_the_softmax():
    logits = torch.randn(7, 5, generator=torch.Generator().manual_seed(0))
    uniform = torch.full((7, 5), 0.2)
    expected = F.kl_div(F.log_softmax(logits, 1), uniform, reduction="batchmean")
    assert torch.allclose(kl_from_uniform(logits), expected, atol=1e-6)
    assert kl_from_uniform(torch.zeros(3, 5)).abs() < 1e-7  # uniform softmax: no divergence


def test_kl_term_lowers_the_maximum_softmax_on_generated_samples(blobs, tmp_path):
    """Same seed, same data, same steps: only beta differs. The KL term makes the classifier unsure on its
    generator's samples, while it still learns the data."""
    longer = CONFIG.updated(epochs=30)  # long enough for the plain classifier to grow confident off the data
    plain = _confident_run(blobs, tmp_path / "beta0", beta=0.0, config=longer)
    confident = _confident_run(blobs, tmp_path / "beta1", beta=1.0, config=longer)
    msp = {}
    for name, run in (("plain", plain), ("confident", confident)):
        samples = data.load(f"generated:{run.path}", "all")
        assert len(samples) == 200 and (samples.labels == -1).all()
        msp[name] = float(_msp(run.model, samples.images).mean())
    assert msp["confident"] < msp["plain"] - 0.08, msp  # measured: 0.43 against 0.58
    assert confident.manifest["metrics"]["test_accuracy"] >= 0.9
    assert plain.manifest["confident"]["beta"] == 0.0


def test_run_holds_three_networks_and_the_losses_per_epoch(blobs, tmp_path):
    run = _confident_run(blobs, tmp_path / "r", beta=0.5)
    m = json.loads((tmp_path / "r" / MANIFEST).read_text())
    record = m["confident"]
    assert record["beta"] == 0.5 and record["paper"] == "arXiv 1711.09325"
    losses = record["losses_per_epoch"]
    assert len(losses["epoch"]) == CONFIG.epochs
    assert all(len(losses[k]) == CONFIG.epochs for k in ("nll", "kl_fake", "d_loss", "g_loss", "g_kl"))
    assert losses["nll"][-1] < losses["nll"][0]
    assert all(0 <= p <= 1 for p in losses["d_real"] + losses["d_fake"])
    for name in ("generator", "discriminator", "generated"):
        assert (tmp_path / "r" / record[name]["file"]).is_file()
        assert m["outputs"][record[name]["file"]]["sha256"] == record[name]["sha256"]
    assert m["identity"]["trainer"]["confident"]["beta"] == 0.5
    assert not (tmp_path / "r" / STATE_FILE).exists()
    # the classifier is an ordinary run: it loads like any other
    from au.train import load_run

    loaded = load_run(tmp_path / "r", tiny_net(5))
    assert torch.equal(loaded.model.logits.weight, run.model.logits.weight)


def test_resume_after_a_kill_is_bit_identical_for_all_three_networks(blobs, tmp_path):
    whole = _confident_run(blobs, tmp_path / "whole", beta=0.3)
    interrupted(lambda: _confident_run(blobs, tmp_path / "cut", beta=0.3))
    assert (tmp_path / "cut" / INCOMPLETE).exists() and (tmp_path / "cut" / STATE_FILE).exists()
    resumed = _confident_run(blobs, tmp_path / "cut", beta=0.3)
    assert resumed.manifest["training"]["resumed_from_step"] > 0
    for key in ("generator", "discriminator", "generated"):
        assert resumed.manifest["confident"][key]["sha256"] == whole.manifest["confident"][key]["sha256"]
    assert resumed.manifest["weights"]["sha256"] == whole.manifest["weights"]["sha256"]
    assert (
        resumed.manifest["confident"]["losses_per_epoch"] == whole.manifest["confident"]["losses_per_epoch"]
    )


def test_another_beta_is_another_job(blobs, tmp_path):
    _confident_run(blobs, tmp_path / "r", beta=0.3, config=CONFIG.updated(epochs=1))
    with pytest.raises(AUError, match="already holds a finished run .*different trainer"):
        _confident_run(blobs, tmp_path / "r", beta=0.4, config=CONFIG.updated(epochs=1))


def test_generated_dataset_is_refused_for_a_plain_run_or_a_changed_table(blobs, tmp_path):
    train, test = blobs
    train_run(tiny_net(0), train, test, CONFIG.updated(epochs=1), tmp_path / "plain", show_progress=False)
    with pytest.raises(AUError, match="was not trained with --confident"):
        data.load(f"generated:{tmp_path / 'plain'}", "all")
    _confident_run(blobs, tmp_path / "c", beta=0.3, config=CONFIG.updated(epochs=1))
    assert len(data.load(f"generated:{tmp_path / 'c'}:n=50", "all")) == 50
    (tmp_path / "c" / GENERATED).write_bytes(b"not a table")
    with pytest.raises(AUError, match="differs from the run's manifest"):
        data.load(f"generated:{tmp_path / 'c'}", "all")


def test_gan_shapes_and_seeded_samples():
    g = Generator((3, 32, 32), nz=8, width=4)
    assert g.sample(2).shape == (2, 3, 32, 32) and Discriminator((3, 32, 32), width=4)(g.sample(2)).shape == (
        2,
    )
    a, b = generate(g, 10, seed=3), generate(g, 10, seed=3)
    assert a.dtype == np.uint8 and a.shape == (10, 32, 32, 3) and np.array_equal(a, b)
    with pytest.raises(AUError, match="multiples of 4"):
        Generator((1, 30, 30))


@pytest.mark.parametrize("value", [-1.0, float("nan")])
def test_config_refuses_a_negative_beta(value):
    with pytest.raises(AUError, match="beta must be a number >= 0"):
        ConfidentConfig(beta=value)


def test_cli_refuses_bad_beta_in_one_line(tmp_path):
    for args, message in (
        (("--confident", "--beta", "0"), "0 is not a number > 0"),
        (("--beta", "0.5"), "--beta needs --confident"),
    ):
        r = run_au("train", "--model", "mnist-cnn", "--data", "digits", "--out", str(tmp_path / "x"), *args)
        assert r.returncode == 2, r.stderr
        assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "x").exists()


def test_confident_run_from_the_cli_is_scored_like_any_run(tmp_path):
    """au train --confident, then au score with the generated samples as an OOD set."""
    train = make_dataset(120, 3, shape=(8, 8, 1), seed=0)
    np.savez(tmp_path / "d.npz", x=train.images, y=train.labels)
    spec = f"npz:{tmp_path / 'd.npz'}"
    r = run_au(
        "train", "--model", "mnist-cnn", "--data", spec, "--out", str(tmp_path / "run"),
        "--epochs", "1", "--confident", "--beta", "1", "--samples", "64",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = run_au(
        "score", "--run", str(tmp_path / "run"), "--ood", f"generated:{tmp_path / 'run'}",
        "--detectors", "msp,energy", "--val-size", "0", "--out", str(tmp_path / "scores"),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "scores" / "scores.parquet")
    ood = np.array(table.column("is_ood").to_pylist())
    assert ood.sum() == 64


def test_more_gan_steps_per_classifier_step_train_the_gan_further(blobs, tmp_path):
    train, test = blobs
    config = CONFIG.updated(epochs=1)
    runs = {}
    for k in (1, 2):
        model = tiny_net(0)
        trainer = ConfidentTrainer(
            model, config, ConfidentConfig(gan_steps=k, samples=16, width=8), train.class_names
        )
        runs[k] = train_run(
            model, train, test, config, tmp_path / str(k), show_progress=False, trainer=trainer
        )
    one, two = (runs[k].manifest["confident"] for k in (1, 2))
    assert two["gan_steps"] == 2 and one["generator"]["sha256"] != two["generator"]["sha256"]
    assert (
        runs[1].manifest["training"]["steps"] == runs[2].manifest["training"]["steps"]
    )  # classifier steps alike
