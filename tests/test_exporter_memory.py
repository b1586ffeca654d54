"""exporter/memory.py: with glibc's thresholds fixed, buffers freed by one poll are the next
poll's pages (no page faults to fault them in again); each case runs in a process of its
own, since the setting is process-wide."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest
from harness import IN_CI

POLLS = """
import resource, sys
from confscale.exporter.memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def poll():  # a poll's buffers alive at once (reads, the joined answer, the scan's arrays)
    held = [b"x" * (1 << 20) for _ in range(12)]
    return len(held)
poll()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    poll()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", POLLS, mode], capture_output=True, text=True, timeout=60, check=True
    )
    return int(done.stdout.strip())


def test_the_next_poll_reuses_the_last_ones_pages() -> None:
    if platform.libc_ver()[0] != "glibc":  # Debian's, CI's: there it must run
        if IN_CI:
            pytest.fail("glibc expected under CI (exporter/memory.py tunes its malloc)")
        pytest.skip("glibc's mallopt")
    default, kept = faults("default"), faults("keep")
    # 10 polls of 12 MiB: glibc's default trims the heap and faults ~3,000 pages a poll in
    assert default > 10 * 1000, default
    assert kept < default / 20, (kept, default)
