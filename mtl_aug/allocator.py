"""CPU allocator tuning (core layer), applied when a training starts on the CPU."""

from __future__ import annotations

import ctypes
import os
import sys

_ALLOCATOR_TUNED = False


def tune_cpu_allocator() -> bool:
    """Let glibc keep freed heap memory for reuse (no ``mmap`` per large block, no trimming); process-wide.

    Otherwise every activation tensor above glibc's mmap threshold (at most 32 MB, e.g. the first encoder
    block of a 32 x 3 s batch) is a fresh ``mmap`` that the kernel zero-fills page by page, unmapped again
    when freed: measured 180 000 page faults and 0.3 s of system time per 32 x 3 s CPU training step (a
    third of it), 33 000-51 000 faults per 32 x 2 s step (benchmarks/, bench_history.md). Costs resident
    memory (freed blocks are kept). Called by ``on_fit_start`` on CPU; ``MTL_AUG_MALLOC_TUNING=0`` leaves
    the allocator alone. Returns whether the setting is in effect."""
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return True
    if os.environ.get("MTL_AUG_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_max = -1, -4  # <malloc.h>
        _ALLOCATOR_TUNED = libc.mallopt(m_mmap_max, 0) == 1 and libc.mallopt(m_trim_threshold, 2**31 - 1) == 1
    except (OSError, AttributeError):  # not glibc
        return False
    return _ALLOCATOR_TUNED
