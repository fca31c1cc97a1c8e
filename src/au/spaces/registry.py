"""The feature spaces by name, for ``au score --space NAME``."""

from __future__ import annotations

from au.errors import AUError
from au.spaces.hog import HOG
from au.spaces.keypoints import KeypointBag
from au.spaces.names import NAMES
from au.spaces.pixels import Pixels

SPACES = {
    "pixels": Pixels,
    "hog": HOG,
    "orb": lambda: KeypointBag("orb"),
    "brisk": lambda: KeypointBag("brisk"),
}
assert tuple(SPACES) == NAMES


def make_space(name: str):
    """A fresh, unfitted space: ``fit(images)`` then ``transform(images)``."""
    if name not in SPACES:
        raise AUError(f"unknown feature space {name!r}; known: {', '.join(SPACES)}")
    return SPACES[name]()
