"""Concurrent requests for the same thing share one run, and a fresh result is reused.

``/probe?node=X`` polls X now with a signed request; without this, 150 anonymous
concurrent probes sent 151 getMeetings to one node. Here the first caller for a key
runs the work, every caller arriving meanwhile waits for that same result, and callers
within ``window`` seconds after it finished get it too (their answer is at most that old).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")
PROBE_REUSE_SECONDS = 1.0  # a probe result younger than this is served again


class _Entry(Generic[T]):
    __slots__ = ("done", "error", "finished_at", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.finished_at: float | None = None
        self.result: T | None = None
        self.error: BaseException | None = None


class Coalescer(Generic[T]):
    """One run per key at a time; a result stays served for ``window`` seconds."""

    def __init__(
        self, window: float = PROBE_REUSE_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[Hashable, _Entry[T]] = {}

    def get(self, key: Hashable, work: Callable[[], T]) -> T:
        """``work()``'s result for ``key``: shared with concurrent callers, or reused."""
        with self._lock:
            now = self._clock()
            self._prune(now)
            entry = self._entries.get(key)
            owner = entry is None
            if entry is None:
                entry = self._entries[key] = _Entry()
        if owner:
            try:
                entry.result = work()
            except BaseException as exc:
                entry.error = exc
                raise
            finally:
                with self._lock:
                    entry.finished_at = self._clock()
                    if entry.error is not None:  # a failure is not kept for others later
                        self._entries.pop(key, None)
                entry.done.set()
            return entry.result
        entry.done.wait()
        if entry.error is not None:
            raise entry.error
        return entry.result  # type: ignore[return-value]

    def _prune(self, now: float) -> None:  # under the lock
        old = [
            key
            for key, entry in self._entries.items()
            if entry.finished_at is not None and now - entry.finished_at >= self._window
        ]
        for key in old:
            del self._entries[key]
