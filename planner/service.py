"""The one place that holds the planner's last result and refreshes it.

A :class:`PlannerService` owns one APScheduler 3.x ``BackgroundScheduler`` with two jobs:
the full computation (history, fit, forecast, sizing; every ``refit_seconds``) and the
cheap placement refresh from current data (every ``placement_seconds``). Readers — the
HTTP API, ``/metrics``, the Dash page — only call :meth:`PlannerService.snapshot` (the
last immutable :class:`~planner.snapshot.Snapshot`) and :meth:`PlannerService.placement`
(the last placement, which exists even while no history could be read: the placement
signal never waits for a forecast). Nothing recomputes per request. Create one service
per process (not one per web worker) and mount every web front on it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import pandas as pd
from apscheduler.schedulers.background import BackgroundScheduler
from confscale.planner.laststate import LastResult, aged
from confscale.planner.placement import NodeReading, Placement, place
from confscale.planner.reservations import (
    PRIOR_MEETING,
    MeetingCost,
    NoNodeAvailable,
    ReservationBook,
    model_meeting,
    typical_meeting,
)
from confscale.planner.sizing import Sizing
from confscale.planner.snapshot import (
    PlannerConfig,
    Snapshot,
    compute_snapshot,
    json_safe,
    with_placement,
)
from confscale.planner.snapshot import what_if as snapshot_what_if

log = logging.getLogger(__name__)


class Actuator(Protocol):
    """A balancer adapter: told about every new placement (see planner.adapters)."""

    def apply(self, placement: Placement) -> object: ...


@dataclass(frozen=True)
class RefreshStatus:
    """How the last refreshes went (shown on the page and in /-/healthy)."""

    last_refit: float | None = None
    last_placement: float | None = None
    last_error: str | None = None
    refits: int = 0


class SourceFailed(RuntimeError):
    """Reading one of the planner's sources failed; the message names which."""

    def __init__(self, source: str, cause: Exception) -> None:
        super().__init__(f"{source}: {cause}")
        self.source = source


class PlannerService:
    """Holds the last snapshot and placement; refreshes them on one background scheduler."""

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
        restored: LastResult | None = None,
        pools: Sequence[str] = (),
        placement_max_age: float = 300.0,
        capacity_max_age: float = 3600.0,
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
        self._placement: tuple[Placement, bytes] | None = None
        self._status = RefreshStatus()
        self._scheduler: BackgroundScheduler | None = None
        # a previous run's last answer (planner.laststate): served until the first refresh,
        # and its taken-out nodes seed the hysteresis
        self._restored = restored
        # answers older than these are served marked stale (a stale placement recommends
        # nothing): a saved or frozen answer never passes for a current one
        self.placement_max_age = placement_max_age
        self.capacity_max_age = capacity_max_age
        self.pools = tuple(pools)  # pool names this service plans (``?pool=`` is checked)
        self.reservations = ReservationBook(
            self.config.reservations,
            targets=self.config.targets,
            hysteresis=self.config.hysteresis,
            clock=clock,
        )

    @property
    def actuators(self) -> tuple[Actuator, ...]:
        return self._actuators

    # --- readers -------------------------------------------------------------------

    def snapshot(self) -> Snapshot | None:
        """The last computed snapshot (None until the first refresh succeeded)."""
        with self._lock:
            return self._snapshot

    def placement(self) -> Placement | None:
        """The last placement (None until current data was read once)."""
        with self._lock:
            return None if self._placement is None else self._placement[0]

    def placement_json(self) -> bytes | None:
        """The ``/api/v1/placement`` body of the last placement, serialised once.

        A restored answer, or a live one older than ``placement_max_age`` (current data
        failing), carries its age under ``answer`` and, once stale, recommends nothing.
        """
        with self._lock:
            live, restored = self._placement, self._restored
            made_at = self._status.last_placement
        if live is None:
            if restored is None or restored.placement is None:
                return None
            return self._aged(restored.placement, restored.saved_at, self.placement_max_age, True)
        if self._read_current is None or made_at is None:
            return live[1]  # from the history file itself: no live source to age against
        if self._clock() - made_at <= self.placement_max_age:
            return live[1]
        return self._aged(json.loads(live[1]), made_at, self.placement_max_age, False)

    def capacity_json(self) -> bytes | None:
        """The ``/api/v1/capacity`` body of the last snapshot (or of the restored result),
        marked stale once older than ``capacity_max_age`` (refits failing)."""
        with self._lock:
            snapshot, restored = self._snapshot, self._restored
            made_at = self._status.last_refit
        if snapshot is None:
            if restored is None or restored.capacity is None:
                return None
            return self._aged(restored.capacity, restored.saved_at, self.capacity_max_age, True)
        if made_at is None or self._clock() - made_at <= self.capacity_max_age:
            return snapshot.capacity_json
        return self._aged(json.loads(snapshot.capacity_json), made_at, self.capacity_max_age, False)

    def answer_ages(self) -> dict[str, tuple[float, bool, bool]]:
        """Per answer (placement, capacity): (age in seconds, stale, restored)."""
        now = self._clock()
        with self._lock:
            status, restored = self._status, self._restored
            live = {
                "placement": self._placement is not None,
                "capacity": self._snapshot is not None,
            }
        out: dict[str, tuple[float, bool, bool]] = {}
        for answer, made_at, limit in (
            ("placement", status.last_placement, self.placement_max_age),
            ("capacity", status.last_refit, self.capacity_max_age),
        ):
            if live[answer] and made_at is not None:
                age = max(0.0, now - made_at)
                fresh_by_design = answer == "placement" and self._read_current is None
                out[answer] = (age, age > limit and not fresh_by_design, False)
            elif restored is not None and getattr(restored, answer) is not None:
                age = max(0.0, now - restored.saved_at)
                out[answer] = (age, age > limit, True)
        return out

    def _aged(self, body: dict, made_at: float, max_age: float, restored: bool) -> bytes:
        document = aged(
            body, made_at=made_at, now=self._clock(), max_age=max_age, restored=restored
        )
        return json.dumps(json_safe(document)).encode()

    def _previous_out(self, placement: Placement | None) -> frozenset[str]:
        if placement is not None:
            return placement.out
        return frozenset() if self._restored is None else self._restored.out

    def status(self) -> RefreshStatus:
        with self._lock:
            return self._status

    def what_if(self, **changes: object) -> Sizing:
        """Sizing of the last snapshot with changed what-if inputs (no refit)."""
        snapshot = self.snapshot()
        if snapshot is None:
            raise RuntimeError("no planner result yet: the first refresh has not finished")
        return snapshot_what_if(snapshot, **changes)

    def next_node(
        self,
        *,
        pool: str | None = None,
        expected_participants: float | None = None,
        kind: str = "bbb",
    ) -> dict[str, object]:
        """One node for a new meeting, with the meeting's expected cost reserved on it.

        Raises ``LookupError`` for an unknown pool, ``RuntimeError`` before the first
        placement and :class:`~planner.reservations.NoNodeAvailable` when no node can take
        it (planner.reservations).
        """
        if pool is not None and pool not in self.pools:
            known = ", ".join(self.pools) or "one unnamed pool (omit ?pool=)"
            raise LookupError(f"unknown pool {pool!r}; this planner plans: {known}")
        placement = self.placement()
        if placement is None:
            raise RuntimeError("no placement yet: current data has not been read")
        made_at = self.status().last_placement
        if self._read_current is not None and made_at is not None:
            age = self._clock() - made_at
            if age > self.placement_max_age:  # as /api/v1/placement: stale recommends nothing
                raise NoNodeAvailable(
                    f"the last placement is {age:.0f}s old (current data failing; max age "
                    f"{self.placement_max_age:.0f}s): no node is named on stale data"
                )
        cost = self.meeting_cost(placement, expected_participants)
        answer = self.reservations.choose(placement, cost, kind=kind)
        return {"pool": pool, **answer}

    def meeting_cost(
        self, placement: Placement, expected_participants: float | None = None
    ) -> MeetingCost:
        """A new meeting's expected cost on this pool (its readings, else its history)."""
        snapshot = self.snapshot()
        fallback = (
            PRIOR_MEETING
            if snapshot is None
            else model_meeting(snapshot.mix, snapshot.model, snapshot.capacity, "history")
        )
        return typical_meeting(
            (n.reading for n in placement.nodes),
            expected_participants=expected_participants,
            fallback=fallback,
        )

    def reserved_pressure(self) -> dict[str, float]:
        """Per node, how much open reservations (``/next``'s and the rooms observed
        started) raise its pressure (the adapters' hook)."""
        return self.reservations.reserved_pressure(self.placement())

    # --- refreshes -----------------------------------------------------------------

    def refresh(self) -> Snapshot | None:
        """Full recompute. On failure keep the last snapshot and record the error.

        With a current-data source, a failed history read still refreshes the placement.
        """
        with self._refit_lock:
            previous = self.snapshot()
            placement = self.placement()
            try:
                try:
                    history = self._load_history()
                except Exception as exc:
                    raise SourceFailed("history", exc) from exc
                try:
                    readings = self._current()
                except Exception as exc:
                    raise SourceFailed("current data", exc) from exc
                now = None if self._read_current is None else self._clock()
                snapshot = compute_snapshot(
                    history,
                    self.config,
                    now=now,
                    readings=readings,
                    previous_out=self._previous_out(placement),
                    rates_included=self._rates_included,
                )
            except Exception as exc:  # keep serving the last good answer
                log.error("planner refresh failed: %s", exc)
                self._error(f"refresh failed: {exc}")
                if self._read_current is not None:
                    self.refresh_placement()
                return previous
            newer = self.placement()
            if newer is not None and newer.generated_at > snapshot.placement.generated_at:
                # A placement refresh ran while we fitted: keep its fresher placement, or
                # the adapters would see the older one and flap.
                snapshot = with_placement(snapshot, newer)
                fresh = False
            else:
                fresh = True
            with self._lock:
                self._snapshot = snapshot
                if fresh:
                    self._placement = (snapshot.placement, snapshot.placement_json)
                self._status = RefreshStatus(
                    last_refit=self._clock(),
                    last_placement=self._clock() if fresh else self._status.last_placement,
                    last_error=None,
                    refits=self._status.refits + 1,
                )
            if fresh:
                cost = self.meeting_cost(snapshot.placement)
                self.reservations.observe(snapshot.placement, cost)
                self._actuate(snapshot.placement)
            return snapshot

    def refresh_placement(self) -> Placement | None:
        """Recompute only the placement from current data (cheap; between refits)."""
        previous = self.placement()
        if self._read_current is None:
            return previous
        try:
            placement = place(
                self._current() or [],
                now=self._clock(),
                previous_out=self._previous_out(previous),
                targets=self.config.targets,
                hysteresis=self.config.hysteresis,
                stale_after=self.config.stale_after,
            )
        except Exception as exc:  # a failed read must not take the API down
            log.error("placement refresh failed: current data: %s", exc)
            self._error(f"placement refresh failed: current data: {exc}")
            return previous
        body = json.dumps(json_safe(placement.as_dict())).encode()
        with self._lock:
            snapshot = self._snapshot
        updated = None if snapshot is None else with_placement(snapshot, placement)
        with self._lock:
            if updated is not None and self._snapshot is snapshot:
                self._snapshot = updated
            self._placement = (placement, body)
            error = self._status.last_error
            if error and error.startswith("placement refresh failed"):
                error = None  # recovered; a refit error stays until a refit succeeds
            self._status = replace(self._status, last_placement=self._clock(), last_error=error)
        self.reservations.reserved(placement)  # drops what the new readings show
        # rooms the balancer placed itself since the last reading: reserved like /next's
        self.reservations.observe(placement, self.meeting_cost(placement))
        self._actuate(placement)
        return placement

    def _current(self) -> Sequence[NodeReading] | None:
        return None if self._read_current is None else self._read_current()

    def _error(self, message: str) -> None:
        with self._lock:
            self._status = replace(self._status, last_error=message)

    def _actuate(self, placement: Placement) -> None:
        for actuator in self._actuators:
            try:
                actuator.apply(placement)
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
