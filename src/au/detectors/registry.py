"""Detectors by name: the one place in AU where a detector's name is spelled out.

The registry is a convenience for the CLI and for configurations written as text; every stage also
takes detector objects. Classes are imported on first use, so that listing the names (``au score
--help``) does not load torch or faiss.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any

from au.checks import check_choices
from au.errors import AUError

_CLASSES = {
    "msp": "au.detectors.msp:MSP",
    "odin": "au.detectors.odin:Odin",
    "energy": "au.detectors.energy:Energy",
    "mahalanobis": "au.detectors.mahalanobis:Mahalanobis",
    "mahalanobis_ensemble": "au.detectors.mahalanobis_ensemble:MahalanobisEnsemble",
    "knn": "au.detectors.knn:KNN",
    "parzen_lsh": "au.detectors.parzen:ParzenLSH",
    "trust": "au.detectors.trust:TrustScore",
}

NAMES: tuple[str, ...] = tuple(_CLASSES)

QUICK: tuple[str, ...] = ("msp", "energy", "knn", "parzen_lsh")
"""Detectors cheap enough to fit once for every model of an ablation sweep (``au gold --ablation``):
no gradient passes, no validation data; two logit scores, a neighbour score and the density."""


DENSITY = "parzen_lsh"
"""AU's own density over partitions of neurons: what ranks inputs by how well the training data covers them
(``au explain --select lowest-density``, the low-density backtrace, the demo's choice of unfamiliar inputs)."""


class _Registry(Mapping):
    """name -> detector class, imported when first asked for."""

    def __getitem__(self, name: str) -> type:
        if name not in _CLASSES:
            raise KeyError(name)
        module, cls = _CLASSES[name].split(":")
        return getattr(importlib.import_module(module), cls)

    def __iter__(self) -> Iterator[str]:
        return iter(_CLASSES)

    def __len__(self) -> int:
        return len(_CLASSES)


DETECTORS: Mapping[str, type] = _Registry()


def check_names(names, option: str = "--detectors") -> tuple[str, ...]:
    """``names`` as a tuple, every one registered, none twice; or one line naming the first unknown one."""
    return check_choices(names, NAMES, option, "detector")


def detector_class(name: str) -> type:
    """The class registered as ``name``."""
    check_names((name,), "detector")
    return DETECTORS[name]


def reading(*inputs: str) -> tuple[str, ...]:
    """The registered detectors that read one of ``inputs`` ("logits", "features", "images"), in registry
    order - chosen by what each declares it consumes, not by name (imports their classes)."""
    return tuple(name for name in NAMES if DETECTORS[name].consumes.input in inputs)


def density(seed: int = 0):
    """An unfitted :data:`DENSITY` detector drawn with ``seed``: AU's density over partitions of neurons."""
    return build(DENSITY, params={"seed": seed})


def build(name: str, model: Any = None, params: dict | None = None):
    """An unfitted registered detector; those that read images get ``model``."""
    cls = detector_class(name)
    params = dict(params or {})
    if cls.consumes.input == "images":
        params.setdefault("model", model)
    try:
        return cls(**params)
    except TypeError as e:
        raise AUError(f"detector {name!r}: {e}") from None
