"""glibc's malloc thresholds, raised once per process (the CLI's process and every Spark worker)."""

from __future__ import annotations

import platform
import sys

import pytest

from au.allocator import tune_malloc


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc only"
)
def test_glibc_takes_both_thresholds_and_is_asked_once():
    assert tune_malloc() is True  # a refused threshold would be False: the speed-up silently gone
    assert tune_malloc.cache_info().currsize == 1
    hits = tune_malloc.cache_info().hits
    assert tune_malloc() is True and tune_malloc.cache_info().hits == hits + 1
