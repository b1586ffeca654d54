"""How each balancer adapter is doing: requests by result, last success, nodes held out.

One :class:`AdapterHealth` per adapter, written by the adapter's worker thread and read
by ``/metrics`` and the page (a lock guards it; readers get an immutable
:class:`HealthView`). The state in plain words: ``dry-run`` (computes and reads, changes
nothing), ``working``, ``failing`` (and why), or ``starting`` before the first cycle.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from confscale.planner.adapters.http import RESULTS, scrub


@dataclass(frozen=True)
class HealthView:
    """A consistent copy of one adapter's health."""

    adapter: str
    actuating: bool
    requests: Mapping[str, int]
    last_success: float | None
    failing_since: float | None
    reason: str | None
    cycles: int
    held_out: tuple[str, ...]
    held_by_operator: Mapping[str, str]

    @property
    def state(self) -> str:
        if self.failing_since is not None:
            return "failing"
        if self.cycles == 0:
            return "starting"
        return "working" if self.actuating else "dry-run"

    def summary(self) -> str:
        """One line for the page: what the adapter does and, when failing, why."""
        name = self.adapter
        if self.state == "failing":
            return f"{name}: failing — {self.reason}"
        if self.state == "starting":
            return f"{name}: starting"
        mode = (
            "working" if self.actuating else "dry-run (changes nothing; --adapters.actuate to act)"
        )
        out = f", holds out {', '.join(self.held_out)}" if self.held_out else ""
        ops = (
            f", left alone: {', '.join(sorted(self.held_by_operator))}"
            if self.held_by_operator
            else ""
        )
        return f"{name}: {mode}{out}{ops}"


@dataclass
class AdapterHealth:
    """Mutable health of one adapter (thread-safe)."""

    adapter: str
    actuating: bool = False
    clock: Callable[[], float] = time.time
    _requests: Counter[str] = field(default_factory=Counter)
    _last_success: float | None = None
    _failing_since: float | None = None
    _reason: str | None = None
    _cycles: int = 0
    _held_out: tuple[str, ...] = ()
    _held_by_operator: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, result: str) -> None:
        """Count one request to the balancer by its result (one of RESULTS)."""
        with self._lock:
            self._requests[result if result in RESULTS else "bad_answer"] += 1

    def succeeded(
        self, held_out: tuple[str, ...] = (), held_by_operator: Mapping[str, str] | None = None
    ) -> None:
        """A whole cycle went through; ``held_out``: the nodes this adapter holds out now."""
        with self._lock:
            self._cycles += 1
            self._last_success = self.clock()
            self._failing_since = None
            self._reason = None
            self._held_out = tuple(sorted(held_out))
            self._held_by_operator = dict(held_by_operator or {})

    def failed(self, reason: str) -> None:
        """The cycle failed (``reason`` in plain words; scrubbed of queries again)."""
        with self._lock:
            self._cycles += 1
            if self._failing_since is None:
                self._failing_since = self.clock()
            self._reason = scrub(reason)

    def view(self) -> HealthView:
        with self._lock:
            return HealthView(
                adapter=self.adapter,
                actuating=self.actuating,
                requests=dict(self._requests),
                last_success=self._last_success,
                failing_since=self._failing_since,
                reason=self._reason,
                cycles=self._cycles,
                held_out=self._held_out,
                held_by_operator=dict(self._held_by_operator),
            )
