"""Feature spaces beside the network's (au.spaces, au score --space): raw pixels, HOG, bags of ORB and BRISK words."""

from __future__ import annotations

import numpy as np
import pytest

from au import AUError, data
from au.score.config import ScoreConfig
from au.spaces import make_space
from conftest import make_dataset, run_au, tiny_net


def _digits(n: int = 60) -> np.ndarray:
    return data.load("digits", "all").images[:n]


def test_pixels_are_the_images_scaled():
    images = _digits(5)
    features = make_space("pixels").fit(images).transform(images)
    assert features.dtype == np.float32
    np.testing.assert_allclose(features, images.reshape(5, -1) / 255.0, rtol=1e-6)


def test_hog_is_scikit_images_descriptor():
    from skimage.feature import hog

    images = _digits(3)
    features = make_space("hog").fit(images).transform(images)
    expected = hog(images[1, ..., 0], orientations=9, pixels_per_cell=(4, 4), cells_per_block=(2, 2))
    assert features.shape == (3, expected.size) and features.dtype == np.float32
    np.testing.assert_allclose(features[1], expected, rtol=1e-6)
    colour = data.load("photo-patches:n=2", "all").images
    assert make_space("hog").transform(colour).shape[0] == 2


@pytest.mark.parametrize("kind", ["orb", "brisk"])
def test_keypoint_bags_are_word_histograms_with_a_count(kind):
    images = _digits(80)
    space = make_space(kind).fit(images)
    features = space.transform(images)
    words = space.vocabulary_.shape[0]
    assert features.shape == (80, words + 1)
    found = features[:, -1] > 0
    assert found.mean() > 0.5  # most digits have corners once upscaled
    np.testing.assert_allclose(features[found, :words].sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(space.transform(images), features)  # deterministic
    flat = np.zeros((3, 28, 28, 1), np.uint8)
    assert not space.transform(flat).any()  # no keypoints: all zero, count log(1) = 0
    with pytest.raises(AUError, match="no keypoints"):
        make_space(kind).fit(flat)


def test_unknown_space_and_space_with_layer_are_refused():
    with pytest.raises(AUError, match="unknown feature space 'sift'"):
        ScoreConfig(space="sift")
    with pytest.raises(AUError, match="give --space or --layer"):
        ScoreConfig(space="hog", layer="fc1")
    assert "space" not in ScoreConfig().to_dict() and ScoreConfig(space="hog").to_dict()["space"] == "hog"


def test_score_in_a_space_names_its_entries_after_the_space(tmp_path):
    from au.score.score_job import score_run

    train, test = make_dataset(150, 3, seed=0), make_dataset(60, 3, seed=1, split="test")
    noise = data.load("noise-uniform:n=60:shape=8x8x1", "all")
    config = ScoreConfig(detectors=("msp", "knn"), val_size=0, space="pixels")
    m = score_run(tiny_net(0), train, test, [noise], tmp_path / "s", config)
    assert m["layer"] == "pixels" and m["config"]["space"] == "pixels"
    assert (
        m["detectors"]["knn"]["ood"][noise.name]["auroc"] > 0.9
    )  # uniform noise is far from the blobs in pixels
    layer = score_run(
        tiny_net(0), train, test, [noise], tmp_path / "l", ScoreConfig(detectors=("msp", "knn"), val_size=0)
    )
    assert layer["identity"]["config"] != m["identity"]["config"]
    assert (
        layer["detectors"]["msp"]["ood"] == m["detectors"]["msp"]["ood"]
    )  # the logits are the model's either way
    from au.gold.scored import load_scored

    assert "knn@pixels" in load_scored([tmp_path / "s"]).scores


def test_cli_space_with_spark_is_a_usage_error(tmp_path):
    r = run_au(
        "score", "--run", str(tmp_path), "--out", str(tmp_path / "o"), "--space", "hog", "--engine", "spark"
    )
    assert r.returncode == 2 and "--space is not available with --engine spark" in r.stderr
