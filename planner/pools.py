"""One planning loop per pool: every unit (pool or tagged sub-pool) gets its own service.

Each :class:`~planner.service.PlannerService` is the loop of one unit
(:class:`~planner.scope.Scope`): its own history (only that unit's series), forecast,
sizing and placement, refreshed on its own scheduler. :class:`PoolPlanners` holds them by
name (``campus``, ``campus/lecture``), finds the pools and tags in the data when the
command line does not name them (re-checked every ``discover_seconds``: a pool that
appears later gets its loop then), and answers which service a request means
(``?pool=…&tag=…``). The API, ``/metrics`` and the page read through it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence

from confscale.planner.scope import Scope, ScopeError
from confscale.planner.service import PlannerService

log = logging.getLogger(__name__)


class UnknownPool(LookupError):
    """A ``?pool=`` / ``?tag=`` this planner does not plan (the message lists what it does)."""


class PoolPlanners:
    """The planning loops by unit name, in discovery order (pools, then their tags)."""

    def __init__(
        self,
        build: Callable[[Scope], PlannerService],
        *,
        units: Sequence[Scope] = (),
        discover: Callable[[], Sequence[Scope]] | None = None,
        discover_seconds: float = 60.0,
    ) -> None:
        self._build = build
        self._discover = discover
        self._discover_seconds = discover_seconds
        self._lock = threading.Lock()
        self._services: dict[str, tuple[Scope, PlannerService]] = {}
        self._started = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.discovery_error: str | None = None
        for unit in units:
            self._add(unit)

    @classmethod
    def single(cls, service: PlannerService, scope: Scope | None = None) -> PoolPlanners:
        """One given service (tests, the gunicorn entry, a history file)."""
        if scope is None:
            names: Sequence[str] = getattr(service, "pools", ())
            scope = Scope(pool=names[0]) if len(names) == 1 else Scope()
        planners = cls(lambda _scope: service)
        planners._add(scope)
        return planners

    # --- readers -------------------------------------------------------------------

    def units(self) -> list[tuple[Scope, PlannerService]]:
        with self._lock:
            return list(self._services.values())

    def names(self) -> list[str]:
        return [scope.name for scope, _ in self.units()]

    def __iter__(self) -> Iterator[PlannerService]:
        return iter([service for _, service in self.units()])

    def select(self, pool: str | None = None, tag: str | None = None) -> PlannerService:
        """The service of ``pool`` (and ``tag``); without them, the only pool's.

        Raises :class:`UnknownPool` naming the units this planner plans.
        """
        units = self.units()
        if not units:
            detail = f" ({self.discovery_error})" if self.discovery_error else ""
            raise UnknownPool(f"no pool found in the data yet{detail}")
        if pool is None and tag is None:
            pools = [(scope, service) for scope, service in units if scope.tag is None]
            if len(pools) == 1:
                return pools[0][1]
            raise UnknownPool(
                f"this planner plans {len(pools)} pools; name one with ?pool= ({self._known()})"
            )
        try:
            wanted = Scope(pool=pool if pool is not None else self._only_pool(), tag=tag)
        except ScopeError as exc:
            raise UnknownPool(f"{exc}; this planner plans: {self._known()}") from None
        for scope, service in units:
            if scope.name == wanted.name:
                return service
        raise UnknownPool(f"unknown pool {wanted.name!r}; this planner plans: {self._known()}")

    def scope_of(self, service: PlannerService) -> Scope:
        for scope, candidate in self.units():
            if candidate is service:
                return scope
        raise UnknownPool("service is not one of this planner's pools")

    def _only_pool(self) -> str | None:
        pools = [scope.pool for scope, _ in self.units() if scope.tag is None]
        return pools[0] if len(pools) == 1 else None

    def _known(self) -> str:
        names = [repr(n) if n else "the unnamed pool (omit ?pool=)" for n in self.names()]
        return ", ".join(names) or "none yet"

    # --- discovery and the loops ---------------------------------------------------

    def _add(self, scope: Scope) -> PlannerService | None:
        with self._lock:
            if scope.name in self._services:
                return None
            service = self._build(scope)
            self._services[scope.name] = (scope, service)
            started = self._started
        log.info("planning pool %s", scope.name or "(unnamed)")
        if started:
            service.start()
        return service

    def discover_now(self) -> list[str]:
        """Look for new pools and tags once; returns the names of the units added."""
        if self._discover is None:
            return []
        try:
            found = self._discover()
        except Exception as exc:  # the store may be down: keep the loops we have
            self.discovery_error = f"pool discovery failed: {exc}"
            log.error("%s", self.discovery_error)
            return []
        self.discovery_error = None
        return [scope.name for scope in found if self._add(scope) is not None]

    def start(self) -> None:
        """Start every loop, and the discovery thread when the pools are not fixed."""
        with self._lock:
            if self._started:
                return
            self._started = True
            services = [service for _, service in self._services.values()]
        for service in services:
            service.start()
        if self._discover is not None:
            self.discover_now()
            self._thread = threading.Thread(
                target=self._rediscover, name="confscale-pools", daemon=True
            )
            self._thread.start()

    def _rediscover(self) -> None:
        while not self._stop.wait(self._discover_seconds):
            self.discover_now()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for service in self:
            service.stop()

    def refresh_placements(self) -> None:
        """Recompute every unit's placement now (after a maintenance change)."""
        for service in self:
            service.refresh_placement()
