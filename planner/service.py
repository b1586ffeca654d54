"""The one place that holds the planner's last result and refreshes it.

A :class:`PlannerService` owns one APScheduler 3.x ``BackgroundScheduler`` with two jobs:
the full computation (history, fit, forecast, sizing; every ``refit_seconds``) and the
cheap placement refresh from current data (every ``placement_seconds``). Readers — the
HTTP API, ``/metrics``, the Dash page — only call :meth:`PlannerService.snapshot`, which
returns the last immutable :class:`~planner.snapshot.Snapshot`; nothing recomputes per
request. Create one service per process (not one per web worker) and mount every web
front on it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import pandas as pd
from apscheduler.schedulers.background import BackgroundScheduler

from planner.placement import NodeReading, place
from planner.sizing import Sizing
from planner.snapshot import (
    PlannerConfig,
    Snapshot,
    compute_snapshot,
    with_placement,
)
from planner.snapshot import what_if as snapshot_what_if

log = logging.getLogger(__name__)


class Actuator(Protocol):
    """A balancer adapter: told about every new placement (see planner.adapters)."""

    def apply(self, snapshot: Snapshot) -> object: ...


@dataclass(frozen=True)
class RefreshStatus:
    """How the last refreshes went (shown on the page and in /-/healthy)."""

    last_refit: float | None = None
    last_placement: float | None = None
    last_error: str | None = None
    refits: int = 0


class PlannerService:
    """Holds the last snapshot; refreshes it on one background scheduler."""

    def __init__(
        self,
        load_history: Callable[[], pd.DataFrame],
        config: PlannerConfig | None = None,
        *,
        read_current: Callable[[], Sequence[NodeReading]] | None = None,
        rates_included: bool = False,
        actuators: Sequence[Actuator] = (),
        refit_seconds: float = 900.0,
        placement_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config or PlannerConfig()
        self._load_history = load_history
        self._read_current = read_current
        self._rates_included = rates_included
        self._actuators = tuple(actuators)
        self._refit_seconds = refit_seconds
        self._placement_seconds = placement_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._refit_lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._status = RefreshStatus()
        self._scheduler: BackgroundScheduler | None = None

    @property
    def actuators(self) -> tuple[Actuator, ...]:
        return self._actuators

    # --- readers -------------------------------------------------------------------

    def snapshot(self) -> Snapshot | None:
        """The last computed snapshot (None until the first refresh succeeded)."""
        with self._lock:
            return self._snapshot

    def status(self) -> RefreshStatus:
        with self._lock:
            return self._status

    def what_if(self, **changes: object) -> Sizing:
        """Sizing of the last snapshot with changed what-if inputs (no refit)."""
        snapshot = self.snapshot()
        if snapshot is None:
            raise RuntimeError("no planner result yet: the first refresh has not finished")
        return snapshot_what_if(snapshot, **changes)

    # --- refreshes -----------------------------------------------------------------

    def refresh(self) -> Snapshot | None:
        """Full recompute. On failure keep the last snapshot and record the error."""
        with self._refit_lock:
            previous = self.snapshot()
            try:
                history = self._load_history()
                readings = self._current()
                now = None if self._read_current is None else self._clock()
                snapshot = compute_snapshot(
                    history,
                    self.config,
                    now=now,
                    readings=readings,
                    previous_out=previous.placement.out if previous else frozenset(),
                    rates_included=self._rates_included,
                )
            except Exception as exc:  # keep serving the last good answer
                log.error("planner refresh failed: %s", exc)
                self._set(None, error=f"refresh failed: {exc}")
                return previous
            self._set(snapshot, refit=True)
            self._actuate(snapshot)
            return snapshot

    def refresh_placement(self) -> Snapshot | None:
        """Recompute only the placement from current data (cheap; between refits)."""
        previous = self.snapshot()
        if previous is None or self._read_current is None:
            return previous
        try:
            readings = self._current()
            placement = place(
                readings or [],
                now=self._clock(),
                previous_out=previous.placement.out,
                targets=self.config.targets,
                hysteresis=self.config.hysteresis,
                stale_after=self.config.stale_after,
            )
        except Exception as exc:  # a failed read must not take the API down
            log.error("placement refresh failed: %s", exc)
            self._set(None, error=f"placement refresh failed: {exc}")
            return previous
        snapshot = with_placement(previous, placement)
        self._set(snapshot)
        self._actuate(snapshot)
        return snapshot

    def _current(self) -> Sequence[NodeReading] | None:
        return None if self._read_current is None else self._read_current()

    def _set(
        self, snapshot: Snapshot | None, *, refit: bool = False, error: str | None = None
    ) -> None:
        with self._lock:
            status = self._status
            if snapshot is not None:
                self._snapshot = snapshot
                status = RefreshStatus(
                    last_refit=self._clock() if refit else status.last_refit,
                    last_placement=self._clock(),
                    last_error=None,
                    refits=status.refits + (1 if refit else 0),
                )
            else:
                status = RefreshStatus(
                    status.last_refit, status.last_placement, error, status.refits
                )
            self._status = status

    def _actuate(self, snapshot: Snapshot) -> None:
        for actuator in self._actuators:
            try:
                actuator.apply(snapshot)
            except Exception as exc:  # one balancer failing must not stop the others
                log.error("adapter %s failed: %s", type(actuator).__name__, exc)

    # --- scheduler -----------------------------------------------------------------

    def start(self) -> None:
        """Start the one background scheduler; the first refresh runs at once."""
        if self._scheduler is not None:
            return
        scheduler = BackgroundScheduler(daemon=True, timezone="UTC")
        scheduler.add_job(
            self.refresh,
            "interval",
            seconds=self._refit_seconds,
            id="refit",
            max_instances=1,
            coalesce=True,
            next_run_time=dt.datetime.now(dt.UTC),
        )
        if self._read_current is not None:
            scheduler.add_job(
                self.refresh_placement,
                "interval",
                seconds=self._placement_seconds,
                id="placement",
                max_instances=1,
                coalesce=True,
            )
        scheduler.start()
        self._scheduler = scheduler

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None

    def wait_ready(self, timeout: float = 60.0) -> Snapshot:
        """Block until a first snapshot exists (bounded); raise with the last error."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            snapshot = self.snapshot()
            if snapshot is not None:
                return snapshot
            time.sleep(0.05)
        raise TimeoutError(f"no planner result after {timeout}s: {self.status().last_error}")
