"""Seeded, stratified, nested subsets of a labelled split.

Every class's examples are put in one seeded random order. A keep-fraction ``f`` takes the first
``round(f * n_c)`` examples of class ``c`` (at least one), so for one seed a larger fraction
contains every smaller one. Inside the kept examples, the validation carve-out takes the positions
``p`` where ``floor((p + 1) * v + 1/2)`` steps up: ``round(k_c * v)`` examples of each class, and
again nested - a larger subset's train and validation parts contain the smaller subset's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from au.errors import AUError


@dataclass(frozen=True)
class Subset:
    """Indices into a split: ``train`` (to fit on) and ``val`` (the validation carve-out), both sorted."""

    train: np.ndarray
    val: np.ndarray


def class_orders(labels: np.ndarray, seed: int) -> list[np.ndarray]:
    """For each class 0..max(label), its example indices in a seeded random order."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(labels))
    order = perm[np.argsort(labels[perm], kind="stable")]
    counts = np.bincount(labels, minlength=int(labels.max()) + 1 if len(labels) else 0)
    return np.split(order, np.cumsum(counts)[:-1])


def _stepped(count: int, fraction: float) -> np.ndarray:
    """Boolean mask over positions 0..count-1 marking round(count * fraction) evenly spread positions."""
    p = np.arange(count)
    return np.floor((p + 1) * fraction + 0.5) > np.floor(p * fraction + 0.5)


def _check_fraction(value: float, what: str) -> None:
    if not (0.0 < value <= 1.0) or not np.isfinite(value):
        raise AUError(f"{what} must be in (0, 1], got {value}")


def keep_subset(
    labels: np.ndarray,
    fraction: float,
    seed: int,
    val_fraction: float = 0.1,
    class_fractions: dict[int, float] | None = None,
) -> Subset:
    """Seeded stratified subset of ``fraction`` of each class, split into train and validation.

    Parameters
    ----------
    labels : ndarray of int64, shape (N,)
    fraction : float in (0, 1]
        Share of every class to keep.
    seed : int
        Same seed, same subsets; one seed's subsets are nested across fractions.
    val_fraction : float in [0, 1)
        Share of the kept examples of each class held out for validation.
    class_fractions : dict, optional
        Per-class fractions that replace ``fraction`` for those classes (class-composition ablation).
    """
    _check_fraction(fraction, "keep fraction")
    if not 0.0 <= val_fraction < 1.0:
        raise AUError(f"validation fraction must be in [0, 1), got {val_fraction}")
    if len(labels) == 0 or labels.min() < 0:
        raise AUError("a training split needs labels 0..K-1 on every example")
    orders = class_orders(labels, seed)
    num_classes = len(orders)
    per_class = {c: fraction for c in range(num_classes)}
    for c, f in (class_fractions or {}).items():
        if not 0 <= c < num_classes:
            raise AUError(f"class index {c} is out of range: the data has classes 0..{num_classes - 1}")
        _check_fraction(f, f"fraction of class {c}")
        per_class[c] = f
    expected = sum(per_class[c] * len(o) for c, o in enumerate(orders))
    if expected < num_classes:
        smallest = num_classes / len(labels)
        raise AUError(
            f"keep fraction {fraction} leaves about {expected:.0f} of {len(labels)} examples, fewer than the "
            f"{num_classes} classes; use a fraction of at least {smallest:.2g}"
        )
    train, val = [], []
    for c, order in enumerate(orders):
        if len(order) == 0:
            continue
        k = max(1, int(np.floor(per_class[c] * len(order) + 0.5)))
        kept = order[:k]
        is_val = _stepped(k, val_fraction)
        train.append(kept[~is_val])
        val.append(kept[is_val])
    return Subset(train=np.sort(np.concatenate(train)), val=np.sort(np.concatenate(val)))


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split all examples into (rest, part), ``part`` holding ``round(fraction * n_c)`` of each class."""
    rest, part = [], []
    for order in class_orders(labels, seed):
        mask = _stepped(len(order), fraction)
        rest.append(order[~mask])
        part.append(order[mask])
    return np.sort(np.concatenate(rest)), np.sort(np.concatenate(part))
