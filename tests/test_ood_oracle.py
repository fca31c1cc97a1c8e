"""AU's detectors against an independent implementation: pytorch-ood, on the same model and features.

pytorch-ood's package ``__init__`` imports torchvision, which AU does not install; only its
``detector`` subpackage is loaded, under a bare parent package. Its scores are *outlier* scores
(higher = more OOD), so AU's in-distribution scores are compared with their negation. Intended
differences, checked here exactly:

* Mahalanobis: pytorch-ood's covariance is the un-normalised sum of centred outer products (plus a
  1e-6 ridge) and its score carries the Gaussian's factor 1/2, so ``au = -2 N pytorch_ood`` where N
  is the number of training examples. The ranking, and so every metric, is the same.
"""

from __future__ import annotations

import importlib.util
import sys
import types

import numpy as np
import pytest
import torch

from au import data
from au.activations import capture
from au.data import to_tensor
from au.detectors import KNN, MSP, Energy, Mahalanobis, Odin
from au.models import build_model


def _pytorch_ood_detector():
    """pytorch-ood's ``detector`` subpackage, loaded under a bare parent package; None when absent."""
    if "pytorch_ood" not in sys.modules:
        spec = importlib.util.find_spec("pytorch_ood")
        if spec is None:
            return None
        parent = types.ModuleType("pytorch_ood")
        parent.__path__ = list(spec.submodule_search_locations)
        sys.modules["pytorch_ood"] = parent
    from pytorch_ood import detector

    return detector


detector = _pytorch_ood_detector()
# skipped before the module's fixture trains anything
absent = pytest.mark.skipif(
    detector is None, reason="pytorch-ood is not installed (scripts/setup.sh installs it)"
)
pytestmark = [pytest.mark.slow, absent]


@pytest.fixture(scope="module")
def setting():
    """mnist-cnn briefly trained on 3,000 MNIST images; its fc1 features and logits on train, test and OOD."""
    train = data.load("mnist", "train").subset(np.arange(3000))
    test = data.load("mnist", "test").subset(np.arange(400))
    ood = data.load("fashion-mnist", "test").subset(np.arange(400))
    torch.manual_seed(0)
    model = build_model("mnist-cnn", seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    for step in range(60):
        lo = (step * 64) % 2900
        loss = torch.nn.functional.cross_entropy(
            model(to_tensor(train.images[lo : lo + 64])), torch.from_numpy(train.labels[lo : lo + 64])
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.zero_grad(set_to_none=True)
    model.eval()

    def features(ds):
        with torch.no_grad(), capture(model, ["fc1", "logits"], "avg") as out:
            model(to_tensor(ds.images))
            return out["fc1"].double().numpy(), out["logits"].double().numpy()

    sets = {name: features(ds) for name, ds in (("train", train), ("test", test), ("ood", ood))}
    queries = (
        np.concatenate([sets["test"][0], sets["ood"][0]]),
        np.concatenate([sets["test"][1], sets["ood"][1]]),
    )
    images = np.concatenate([test.images[:100], ood.images[:100]])
    return model, train.labels, sets["train"], queries, images


def test_msp_and_energy_match(setting):
    _, _, (_, train_logits), (_, logits), _ = setting
    t = torch.from_numpy(logits)
    np.testing.assert_allclose(
        MSP().fit(train_logits).score_samples(logits),
        -detector.MaxSoftmax(None).predict_logits(t).numpy(),
        atol=1e-6,
    )
    for temp in (1.0, 2.5):
        au_energy = Energy(temperature=temp).fit(train_logits).score_samples(logits)
        np.testing.assert_allclose(
            au_energy, -detector.EnergyBased(None, t=temp).predict_logits(t).numpy(), atol=1e-6
        )


def test_odin_matches(setting):
    model, _, _, _, images = setting
    for temperature, eps in ((1000.0, 0.0014), (10.0, 0.01)):
        ours = Odin(model, temperature=temperature, epsilon=eps).fit(images).score_samples(images)
        theirs = (
            -detector.ODIN(model, eps=eps, temperature=temperature)
            .predict(to_tensor(images))
            .double()
            .numpy()
        )
        np.testing.assert_allclose(ours, theirs, atol=1e-4)
    assert not any(p.grad is not None for p in model.parameters()), "ODIN must not leave parameter gradients"


def test_mahalanobis_matches_up_to_documented_scale(setting):
    _, labels, (train_feats, _), (feats, _), _ = setting
    ours = Mahalanobis().fit(train_feats, labels)
    assert ours.shrinkage_ == 0.0
    previous = torch.get_default_dtype()
    torch.set_default_dtype(
        torch.float64
    )  # pytorch-ood allocates its means and covariance in the default dtype
    try:
        theirs = detector.Mahalanobis(None).fit_features(
            torch.from_numpy(train_feats), torch.from_numpy(labels)
        )
        their_scores = theirs.predict_features(torch.from_numpy(feats)).numpy()
    finally:
        torch.set_default_dtype(previous)
    np.testing.assert_allclose(ours.score_samples(feats), -2 * len(train_feats) * their_scores, rtol=1e-4)


@pytest.mark.parametrize("k", [1, 50])
def test_knn_matches(setting, k):
    _, labels, (train_feats, _), (feats, _), _ = setting
    ours = KNN(k=k).fit(train_feats).score_samples(feats)
    theirs = detector.KNN(None, k=k).fit_features(torch.from_numpy(train_feats), torch.from_numpy(labels))
    np.testing.assert_allclose(ours, -theirs.predict_features(torch.from_numpy(feats)).numpy(), atol=1e-4)
