"""What every page needs: the planner service, the page options, the what-if inputs."""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar

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


@dataclass(frozen=True)
class Context:
    service: PlannerService
    options: WebOptions

    def snapshot(self) -> Snapshot | None:
        return self.service.snapshot()


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
