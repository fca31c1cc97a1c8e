"""One contract, checked for every registered detector: what it consumes, fit, score_samples, parameters, clone.

Each detector gets exactly the inputs its ``consumes`` declares - features, logits or images, with
labels, predictions and validation data where declared - so a new detector is covered by adding it
to the registry.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from au.detectors import DETECTORS, NAMES, NotFittedError, clone
from au.detectors.base import Detector
from au.errors import AUError
from conftest import make_dataset, tiny_net

SMALL = {"parzen_lsh": {"heldout": 50, "partitions": 2, "partitionings": 2}, "knn": {"k": 5}}


def gaussian_classes(n: int = 600, d: int = 6, classes: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    return (4.0 * np.eye(classes, d)[labels] + rng.standard_normal((n, d))).astype(np.float32), labels


def _case(name: str):
    """(detector, fit arguments, query, query extras) for ``name``, built from its declaration."""
    cls = DETECTORS[name]
    c = cls.consumes
    params = dict(SMALL.get(name, {}))
    if c.input == "images":
        params["model"] = tiny_net()
        train = make_dataset(60, 3, seed=0)
        x, y, query = train.images, train.labels, make_dataset(12, 3, seed=4).images
        x_val = make_dataset(30, 3, seed=2).images
    else:
        x, y = gaussian_classes()
        query, x_val = gaussian_classes(40, seed=1)[0], gaussian_classes(30, seed=2)[0]
    kwargs = {"X_val": x_val} if c.validation == "required" else {}
    extra = {"pred": np.argmax(query[:, :3], axis=1) if query.ndim == 2 else np.zeros(len(query), int)}
    return cls(**params), (x, y if c.labels else None), kwargs, query, extra if c.predictions else {}


@pytest.mark.parametrize("name", NAMES)
def test_registry_names_match_the_classes(name):
    cls = DETECTORS[name]
    assert issubclass(cls, Detector) and cls.name == name
    # fit and score_samples are the base class's, so every detector goes through its checks
    assert "fit" not in vars(cls) and "score_samples" not in vars(cls), name
    # every constructor parameter is declared with its constraint, and get_params returns them all
    assert set(cls._constraints) == set(cls.param_names()), name
    det = _case(name)[0]
    assert list(det.get_params()) == list(cls.param_names())


@pytest.mark.parametrize("name", NAMES)
def test_fit_score_contract(name):
    det, (x, y), kwargs, query, extra = _case(name)
    with pytest.raises(NotFittedError):
        det.score_samples(query, **extra)
    before = {k: np.copy(v) for k, v in [("x", x), ("q", query), *kwargs.items()]}
    params = det.get_params()
    assert det.fit(x, y, **kwargs) is det
    s = det.score_samples(query, **extra)
    assert s.shape == (len(query),) and s.dtype == np.float64 and np.isfinite(s).all()
    # inputs are never changed, nor the constructor's parameters: fitted state ends in "_"
    for k, v in [("x", x), ("q", query), *kwargs.items()]:
        np.testing.assert_array_equal(v, before[k])
    assert det.get_params().keys() == params.keys()
    assert all(det.get_params()[k] is params[k] for k in params), "fit changed a constructor parameter"
    # scores do not depend on how queries are batched, and a refit reproduces them
    part = {k: v[:5] for k, v in extra.items()}
    np.testing.assert_allclose(det.score_samples(query[:5], **part), s[:5], rtol=1e-6, atol=1e-6)
    again = clone(det)
    assert type(again) is type(det) and again.get_params().keys() == params.keys()
    assert all(again.get_params()[k] is params[k] for k in params), "clone changed a parameter's value"
    with pytest.raises(NotFittedError):
        again.score_samples(query, **extra)
    np.testing.assert_array_equal(again.fit(x, y, **kwargs).score_samples(query, **extra), s)
    # a fitted detector survives a pickle round trip
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(det)).score_samples(query, **extra), s)


def _one_line(excinfo) -> str:
    text = str(excinfo.value)
    assert "\n" not in text and type(excinfo.value).__name__ in ("AUError", "NotFittedError")
    return text


@pytest.mark.parametrize("name", NAMES)
def test_bad_inputs_are_refused_with_one_line(name):
    det, (x, y), kwargs, query, extra = _case(name)
    det.fit(x, y, **kwargs)
    who = type(det).__name__
    if det.consumes.input == "images":
        wrong_shape = make_dataset(5, 3, shape=(10, 10, 1)).images
        not_uint8 = query.astype(np.float32)
        not_uint8[0, 0, 0, 0] = np.nan
        bad = {"shape": wrong_shape, "dtype": not_uint8, "rank": query[0]}
    else:
        nan = query.copy()
        nan[2, 1] = np.nan
        bad = {"shape": query[:, :4], "nan": nan, "rank": query[0]}
    for what, value in bad.items():
        n = len(value) if np.ndim(value) > 1 else 1
        part = {k: v[:n] for k, v in extra.items()}
        with pytest.raises(AUError) as excinfo:
            det.score_samples(value, **part)
        assert who in _one_line(excinfo), what
    # fitting refuses them too: training rows with a NaN (or not uint8), and rows of the wrong rank
    spoiled = x.astype(np.float32)
    spoiled[1, 0] = np.nan
    for what, value in {"nan": spoiled, "rank": x[0]}.items():
        with pytest.raises(AUError) as excinfo:
            clone(det).fit(value, y, **kwargs)
        assert who in _one_line(excinfo), f"fit: {what}"
    if det.consumes.predictions:
        with pytest.raises(AUError, match="pred"):
            det.score_samples(query)
    if det.consumes.labels:
        with pytest.raises(AUError, match="labels"):
            clone(det).fit(x, None, **kwargs)
    # validation data: required ones refuse to fit without it, the others refuse what they cannot use
    misuse = {"required": {}, "optional": {"X_val_ood": x[:3]}, "none": {"X_val": x[:3]}}
    with pytest.raises(AUError, match="validation"):
        clone(det).fit(x, y, **misuse[det.consumes.validation])


@pytest.mark.parametrize("name", [n for n in NAMES if DETECTORS[n].consumes.input != "images"])
def test_higher_means_more_in_distribution(name):
    det, (x, y), kwargs, _, _ = _case(name)
    det.fit(x, y, **kwargs)
    q_in = gaussian_classes(200, seed=1)[0]
    # far from the classes for feature detectors; flat (no class stands out) for logit detectors
    spread = 1.0 if det.consumes.input == "logits" else 12.0
    q_out = np.random.default_rng(2).uniform(-spread, spread, size=(200, 6)).astype(np.float32)
    extra_in = {"pred": np.argmax(q_in[:, :3], 1)} if det.consumes.predictions else {}
    extra_out = {"pred": np.argmax(q_out[:, :3], 1)} if det.consumes.predictions else {}
    from au.ood import auroc

    assert auroc(det.score_samples(q_in, **extra_in), det.score_samples(q_out, **extra_out)) > 0.8


def test_invalid_parameters_are_named():
    x, y = gaussian_classes()
    images, labels = make_dataset(20, 3).images, make_dataset(20, 3).labels
    for name in NAMES:
        cls = DETECTORS[name]
        on_images = cls.consumes.input == "images"
        for param in cls.param_names():
            params = {"model": tiny_net()} if on_images else {}
            params[param] = -1  # outside every declared constraint
            with pytest.raises(AUError, match=rf"{cls.__name__}: {param}=.* is invalid; expected"):
                cls(**params).fit(images if on_images else x, labels if on_images else y)
