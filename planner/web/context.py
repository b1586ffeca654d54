"""What every page needs: the planner service, the page options, the what-if inputs."""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar

from confscale.planner.pools import PoolPlanners, UnknownPool
from confscale.planner.service import PlannerService
from confscale.planner.sizing import WhatIf, with_changes
from confscale.planner.snapshot import Snapshot

log = logging.getLogger("confscale.planner.web")
F = TypeVar("F", bound=Callable[..., Any])
WHAT_IF_FIELDS = frozenset(f.name for f in fields(WhatIf))


@dataclass(frozen=True)
class WebOptions:
    """Page settings (the procurement lead time is also a control on the page)."""

    source: str = "the planner's data source"  # named in "cannot read …" messages
    lead_time_days: float = 28.0
    refresh_seconds: float = 30.0
    title: str = "confscale capacity planner"


POOL_COOKIE = "confscale_pool"


@dataclass(frozen=True)
class Context:
    """The planners and page options; :attr:`service` is the pool the viewer selected."""

    planners: PoolPlanners
    options: WebOptions
    maintenance: object | None = None  # planner.maintenance.MaintenanceRegistry
    page_auth: object | None = None  # planner.web.auth.BasicAuth: who may write

    def __post_init__(self) -> None:
        if not isinstance(self.planners, PoolPlanners):  # one service: its one pool
            object.__setattr__(self, "planners", PoolPlanners.single(self.planners))

    @property
    def service(self) -> PlannerService:
        """The selected pool's loop (the pool selector's cookie; else the first pool)."""
        return self.planners.select(*self.selected_scope())

    def selected_name(self) -> str | None:
        """The unit the viewer chose, when it is one this planner plans."""
        names = self.planners.names()
        chosen = _cookie(POOL_COOKIE)
        if chosen is not None and chosen in names:
            return chosen
        return names[0] if names else None

    def selected_scope(self) -> tuple[str | None, str | None]:
        name = self.selected_name()
        for scope, _ in self.planners.units():
            if scope.name == name:
                return scope.pool, scope.tag
        raise UnknownPool("no pool found in the data yet")

    def snapshot(self) -> Snapshot | None:
        try:
            return self.service.snapshot()
        except UnknownPool:
            return None  # no pool yet: the page waits as it does for a first refresh


def what_if_changes(store: Mapping[str, object] | None) -> dict[str, object]:
    """The what-if inputs kept in the page's store, restricted to known, set fields."""
    if not store:
        return {}
    changes: dict[str, object] = {}
    for name, value in store.items():
        if name not in WHAT_IF_FIELDS or value is None:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            continue
        changes[name] = value
    return changes


def what_if_inputs(snapshot: Snapshot, store: Mapping[str, object] | None) -> WhatIf:
    """The snapshot's what-if inputs with the page's changes (ValueError names a bad one)."""
    return with_changes(snapshot.sizing.what_if, **what_if_changes(store))


def defaults(snapshot: Snapshot) -> dict[str, object]:
    """Initial control values: the snapshot's inputs, webcam share from the demand mix."""
    values = asdict(snapshot.sizing.what_if)
    if values.get("webcam_share") is None:
        values["webcam_share"] = round(snapshot.mix.webcam_share, 3)
    return values


def safe(fallback: Callable[[Exception], Any]) -> Callable[[F], F]:
    """Callbacks never show a traceback: log it, answer ``fallback(exc)`` instead."""

    def wrap(callback: F) -> F:
        @functools.wraps(callback)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return callback(*args, **kwargs)
            except Exception as exc:
                log.exception("page callback %s failed", callback.__name__)
                return fallback(exc)

        return guarded  # type: ignore[return-value]

    return wrap


def _cookie(name: str) -> str | None:
    """A request cookie, outside a request None (callbacks run inside one)."""
    from flask import has_request_context, request

    return request.cookies.get(name) if has_request_context() else None
