"""Each adapter on its own worker thread: a slow or hanging balancer never delays the planner.

:meth:`AdapterRunner.apply` only hands the newest placement over and returns at once (the
service calls it after every refresh); the worker applies the newest placement it has,
skipping any that were superseded while the balancer was slow. Every request has a
timeout, so a hanging balancer holds only its own worker, for at most that long.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from confscale.planner.adapters.health import AdapterHealth
from confscale.planner.adapters.http import AdapterError, scrub
from confscale.planner.placement import Placement

log = logging.getLogger(__name__)


class Adapter(Protocol):
    name: str
    health: AdapterHealth

    def apply(self, placement: Placement) -> object: ...


class AdapterRunner:
    """Runs one adapter's cycles on a daemon thread, recording failures in its health."""

    def __init__(self, adapter: Adapter) -> None:
        self.adapter = adapter
        self.name = adapter.name
        self.health = adapter.health
        self._pending: Placement | None = None
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def apply(self, placement: Placement) -> None:
        """Queue the newest placement (replacing an unapplied older one); never blocks."""
        with self._wake:
            self._pending = placement
            if self._thread is None and not self._stopped:
                self._thread = threading.Thread(
                    target=self._run, name=f"adapter-{self.name}", daemon=True
                )
                self._thread.start()
            self._wake.notify()

    def run_once(self, placement: Placement) -> bool:
        """Apply one placement now, on this thread; True when the cycle succeeded."""
        try:
            self.adapter.apply(placement)
        except AdapterError as exc:
            log.error("adapter %s failed: %s", self.name, exc)
            self.health.failed(str(exc))
            return False
        except Exception as exc:  # a bug must not kill the worker; say what, not the URL
            reason = scrub(f"{type(exc).__name__}: {exc}")
            log.error("adapter %s failed: %s", self.name, reason)
            self.health.failed(reason)
            return False
        return True

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._pending is None and not self._stopped:
                    self._wake.wait()
                if self._stopped:
                    return
                placement, self._pending = self._pending, None
            if placement is not None:  # the wait above ends only with one (or stopped)
                self.run_once(placement)

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()
