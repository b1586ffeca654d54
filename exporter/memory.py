"""Keep freed memory in the heap for the next poll (glibc's malloc; elsewhere nothing).

A large getMeetings answer passes through several buffers of its size (the socket's
reads, the joined document, the scan's arrays). glibc serves blocks over its mmap
threshold (128 KiB at start, raised as such blocks are freed, up to 32 MiB) with fresh
mappings, and gives the top of the heap back to the kernel past its trim threshold: each
poll then faults in and zero-fills its buffers again. With both thresholds fixed high the
next poll reuses the pages of the last: a 1.64 MB answer polled each second went from
~450-1,130 page faults to ~2 a second and from 19.8-20.6 to 16.1-17.3 ms of CPU per poll
(per-thread schedstat over 20 s, GLIBC_TUNABLES, 2026-12-02). The cost is that the heap
keeps what the largest poll used (RSS stays at its peak, which it mostly did already).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest (DEFAULT_MMAP_THRESHOLD_MAX, 64-bit)
TRIM_THRESHOLD = 128 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Fix glibc's mmap and trim thresholds high; False where there is no glibc."""
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        done = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        done &= libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    except (OSError, AttributeError):
        return False
    return bool(done)
