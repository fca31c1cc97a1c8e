"""Keep large tensor buffers in the C heap instead of mapping and unmapping them for every batch.

glibc's malloc serves allocations above its mmap threshold (adaptive, at most 32 MB by default) with
fresh ``mmap`` calls and returns them with ``munmap`` when freed; it also trims the heap's top
whenever more than twice that is free. A CNN's activations are exactly such buffers - mnist-cnn's
conv2 output at batch 256 is 38 MB - so every forward pass then pays page faults for memory it
just gave back: measured on 2 cores, inference over MNIST's 10,000 test images took 3.1 s with the
defaults and 1.6 s with the thresholds below. ``au`` sets them when its command starts; Python
callers can call :func:`tune_malloc` themselves. The cost is memory: freed buffers stay reserved
for reuse, so the resident size stays near its peak.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 512 << 20
TRIM_THRESHOLD = 1 << 30


@functools.cache
def tune_malloc() -> bool:
    """Raise glibc's mmap and trim thresholds for this process, once; False where either was refused.

    False too where malloc is not glibc's. Cached: the settings hold for the whole process, and
    finding the C library may start a helper process (a Spark worker asks for every task).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mmap = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    trim = bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))  # set even where the first was refused
    return mmap and trim
