"""``au boundary``: a confident run's generated samples through the scores, the certificates and guided backprop,
and the standard against the confident classifier."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from au import AUError, data
from au.explain.methods import attribute
from au.generate.boundary_config import BoundaryConfig
from au.generate.boundary_job import boundary_run
from au.generate.confident import ConfidentTrainer
from au.generate.confident_config import ConfidentConfig
from au.gold.config import GoldConfig
from au.gold.gold_job import gold_run
from au.models import build_model
from au.ood.metrics import auroc, fpr_at_tpr
from au.score.config import ScoreConfig
from au.train import TrainConfig, train_run
from browser import CHROMIUM, render
from conftest import make_dataset, run_au

DETECTORS = ("msp", "energy", "knn")


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    """A standard and a confident classifier of blobs, each scored against its samples and uniform noise."""
    from au.score.score_job import score_run

    root = tmp_path_factory.mktemp("boundary")
    train, test = make_dataset(600, 3, seed=0), make_dataset(300, 3, seed=1, split="test")
    config = TrainConfig(epochs=6, batch_size=32, lr=0.01, val_fraction=0.1)
    model = build_model("mnist-cnn", (1, 8, 8), 3, seed=0)  # a registry model: the CLI loads it by name
    confident_config = ConfidentConfig(beta=1.0, samples=150, width=16)
    trainer = ConfidentTrainer(model, config, confident_config, train.class_names)
    confident = train_run(
        model,
        train,
        test,
        config,
        root / "conf",
        model_name="mnist-cnn",
        show_progress=False,
        trainer=trainer,
    )
    plain = build_model("mnist-cnn", (1, 8, 8), 3, seed=0)
    standard = train_run(
        plain, train, test, config, root / "std", model_name="mnist-cnn", show_progress=False
    )
    ood = [
        data.load(f"generated:{root / 'conf'}", "all"),
        data.load("noise-uniform:n=150:shape=8x8x1", "all"),
    ]
    scoring = ScoreConfig(detectors=DETECTORS, val_size=0)
    for name, run in (("conf", confident), ("std", standard)):
        score_run(run.model, train, test, ood, root / f"s{name}", scoring, run_dir=str(run.path))
    gold_run([root / "sconf"], root / "gold", GoldConfig(epsilons=(0.05, 0.2), n_splits=20, combo=()))
    return root, confident


def test_boundary_reports_every_sample_certificate_and_comparison(jobs):
    root, confident = jobs
    manifest = boundary_run(
        root / "sconf", root / "b", BoundaryConfig(maps=4), gold=root / "gold", baseline=root / "sstd"
    )
    samples = pq.read_table(root / "b" / "boundary.parquet")
    assert samples.num_rows == 150
    probs = np.array(samples.column("probs").to_pylist())
    assert probs.shape == (150, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert np.allclose(samples.column("max_prob").to_numpy(), probs.max(1), atol=1e-6)
    assert np.array_equal(samples.column("pred").to_numpy(), probs.argmax(1))
    # the detector columns are the scores job's own, row for row
    scores = pq.read_table(root / "sconf" / "scores.parquet").to_pandas()
    generated = scores[scores.dataset.str.startswith("generated:")].set_index("example_id")
    for d in DETECTORS:
        expected = generated.loc[samples.column("example_id").to_pylist(), d].to_numpy()
        assert np.array_equal(samples.column(d).to_numpy(), expected)

    # acceptance: each certificate's threshold applied to the samples' scores
    board = json.loads((root / "gold" / "leaderboard.json").read_text())
    acceptance = pq.read_table(root / "b" / "acceptance.parquet").to_pylist()
    in_entries = [e for e in board["entries"] if e["stream"] == "in"]
    assert len(acceptance) == len(in_entries)
    for a in acceptance:
        column = a["entry"].split("@")[0]
        expected = int((samples.column(column).to_numpy() >= a["threshold"]).sum()) if a["certified"] else 0
        assert a["accepted"] == expected
    # and per sample: one decision per (sample, certificate), the threshold applied to the sample's own score
    decisions = pq.read_table(root / "b" / "decisions.parquet").to_pandas()
    assert len(decisions) == 150 * len(acceptance)
    by_sample = dict(zip(samples.column("example_id").to_pylist(), range(150), strict=True))
    for (entry, method, eps), part in decisions.groupby(["entry", "method", "epsilon"]):
        column = samples.column(entry.split("@")[0]).to_numpy()
        np.testing.assert_array_equal(part.score, column[[by_sample[i] for i in part.example_id]])
        a = next(a for a in acceptance if (a["entry"], a["method"], a["epsilon"]) == (entry, method, eps))
        assert part.accepted.sum() == a["accepted"]
        assert (part.accepted == (part.score >= a["threshold"] if a["certified"] else False)).all()

    # every sample's guided-backprop map, for its prediction, as au explain writes attributions
    maps = pq.read_table(root / "b" / "guided_backprop.parquet")
    assert maps.column("example_id").to_pylist() == samples.column("example_id").to_pylist()
    assert maps.column("target").to_pylist() == samples.column("pred").to_pylist()
    assert set(maps.column("method").to_pylist()) == {"guided_backprop"}
    generated = data.load(f"generated:{root / 'conf'}", "all")
    first = np.flatnonzero(generated.ids == samples.column("example_id")[0].as_py())
    expected = attribute(
        confident.model, generated.images[first], samples.column("pred").to_numpy()[:1], ["guided_backprop"]
    )
    np.testing.assert_allclose(
        maps.column("values")[0].values.to_numpy(),
        expected["guided_backprop"][0].ravel(),
        rtol=1e-5,
        atol=1e-7,
    )

    # comparison: both classifiers on both OOD sets, TNR at the first threshold reaching 95% TPR
    comparison = pq.read_table(root / "b" / "comparison.parquet").to_pylist()
    assert {(c["ood_set"].split(":")[0], c["detector"]) for c in comparison} == {
        (s, d) for s in ("generated", "noise-uniform") for d in DETECTORS
    }
    std = pq.read_table(root / "sstd" / "scores.parquet").to_pandas()
    row = next(c for c in comparison if c["detector"] == "msp" and c["ood_set"].startswith("generated"))
    inside, outside = std.msp[~std.is_ood], std.msp[std.dataset == row["ood_set"]]
    assert row["auroc_standard"] == pytest.approx(auroc(inside, outside))
    assert row["tnr95_standard"] == pytest.approx(1 - fpr_at_tpr(inside, outside))
    # the confident classifier was trained to be unsure on exactly these samples
    assert row["auroc_confident"] > row["auroc_standard"]
    assert manifest["summary"]["test_accuracy_confident"] == pytest.approx(
        confident.manifest["metrics"]["test_accuracy"]
    )


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
def test_boundary_report_as_a_reader_sees_it(jobs):
    root, _ = jobs
    boundary_run(
        root / "sconf", root / "b2", BoundaryConfig(maps=3), gold=root / "gold", baseline=root / "sstd"
    )
    seen = render(root / "b2" / "report.html")
    assert seen["images"] == 3 and seen["broken"] == 0, seen
    assert seen["page_width"] <= seen["window_width"] and not seen["wide"], seen


def test_scores_without_generated_samples_or_foreign_gold_are_refused(jobs, tmp_path):
    root, _ = jobs
    with pytest.raises(AUError, match="no OOD set 'digits'.*generated:RUN"):
        boundary_run(root / "sconf", tmp_path / "x", BoundaryConfig(generated="digits"))
    with pytest.raises(AUError, match="certified from other scores"):
        boundary_run(root / "sstd", tmp_path / "x", gold=root / "gold")
    assert not (tmp_path / "x").exists()


def test_cli_writes_the_report_and_refuses_bad_input_in_one_line(jobs, tmp_path):
    root, _ = jobs
    r = run_au("boundary", "--scores", str(root / "sconf"), "--out", str(tmp_path / "b"), "--maps", "2")
    assert r.returncode == 0, r.stderr
    assert "150 samples of generated:" in r.stdout and (tmp_path / "b" / "report.html").is_file()
    r = run_au("boundary", "--scores", str(root / "sconf"), "--out", str(tmp_path / "c"), "--maps", "0")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    r = run_au("boundary", "--scores", str(tmp_path / "nothing"), "--out", str(tmp_path / "c"))
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_decoded_density_grids_join_the_report(jobs):
    """With --decode, the decode job's high- and low-density grids are shown in the boundary report."""
    from au.generate.decode_config import DecodeConfig
    from au.generate.decode_job import decode_run
    from au.train import load_run

    root, confident = jobs
    config = DecodeConfig(
        layers=("fc1",), steps=20, samples=4, pairs=1, invert=2, invert_steps=5, test_limit=50
    )
    decode_run(
        load_run(root / "conf").model, root / "sconf" / "acts" / "train", root / "sconf" / "acts" / "test",
        root / "decode", config, run_dir=str(root / "conf"),
        train_data=make_dataset(600, 3, seed=0), test_data=make_dataset(300, 3, seed=1, split="test"),
    )  # fmt: skip
    boundary_run(root / "sconf", root / "b3", BoundaryConfig(maps=2), decode=root / "decode")
    html = (root / "b3" / "report.html").read_text()
    assert "Decoded activations: high- and low-density samples" in html and "layer fc1" in html
    seen = render(root / "b3" / "report.html") if CHROMIUM else {"broken": 0}
    assert seen["broken"] == 0
