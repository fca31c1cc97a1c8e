"""Keep-fraction subsets are seeded, stratified and nested; the validation carve-out is too."""

from __future__ import annotations

import numpy as np
import pytest

from au import AUError
from au.data import keep_subset, stratified_split

LABELS = np.repeat(np.arange(10), [500, 600, 550, 520, 480, 610, 590, 505, 495, 650]).astype(np.int64)


def test_same_seed_same_subset_other_seed_other_subset():
    a = keep_subset(LABELS, 0.1, seed=3)
    b = keep_subset(LABELS, 0.1, seed=3)
    c = keep_subset(LABELS, 0.1, seed=4)
    np.testing.assert_array_equal(a.train, b.train)
    assert not np.array_equal(a.train, c.train)


def test_stratified_per_class_counts():
    s = keep_subset(LABELS, 0.1, seed=0, val_fraction=0.1)
    counts = np.bincount(LABELS, minlength=10)
    kept = np.bincount(LABELS[np.concatenate([s.train, s.val])], minlength=10)
    np.testing.assert_array_equal(kept, np.floor(counts * 0.1 + 0.5).astype(int))
    val = np.bincount(LABELS[s.val], minlength=10)
    np.testing.assert_array_equal(val, np.floor(kept * 0.1 + 0.5).astype(int))
    assert not set(s.train) & set(s.val)


def test_subsets_and_carve_outs_are_nested():
    fractions = [0.002, 0.01, 0.05, 0.2, 0.5, 1.0]
    subsets = [keep_subset(LABELS, f, seed=7) for f in fractions]
    for small, large in zip(subsets, subsets[1:], strict=False):
        assert set(small.train) <= set(large.train)
        assert set(small.val) <= set(large.val)
        assert len(small.train) < len(large.train)


def test_full_fraction_uses_everything():
    s = keep_subset(LABELS, 1.0, seed=0, val_fraction=0.0)
    assert len(s.train) == len(LABELS) and len(s.val) == 0


def test_class_fraction_shrinks_one_class_and_keeps_others_whole():
    s = keep_subset(LABELS, 1.0, seed=0, val_fraction=0.0, class_fractions={3: 0.1})
    counts = np.bincount(LABELS[s.train], minlength=10)
    assert counts[3] == 52
    others = [k for k in range(10) if k != 3]
    np.testing.assert_array_equal(counts[others], np.bincount(LABELS, minlength=10)[others])


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5, float("nan")])
def test_fraction_outside_unit_interval(fraction):
    with pytest.raises(AUError, match=r"in \(0, 1\]"):
        keep_subset(LABELS, fraction, seed=0)


def test_subset_smaller_than_number_of_classes():
    with pytest.raises(AUError, match="fewer than the 10 classes"):
        keep_subset(LABELS, 0.0001, seed=0)


def test_class_index_out_of_range():
    with pytest.raises(AUError, match="class index 12 is out of range"):
        keep_subset(LABELS, 1.0, seed=0, class_fractions={12: 0.5})


def test_stratified_split_partitions():
    rest, part = stratified_split(LABELS, 0.2, seed=0)
    assert len(rest) + len(part) == len(LABELS) and not set(rest) & set(part)
    np.testing.assert_array_equal(
        np.bincount(LABELS[part], minlength=10), np.floor(np.bincount(LABELS) * 0.2 + 0.5).astype(int)
    )
