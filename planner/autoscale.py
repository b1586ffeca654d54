"""The server count handed to an autoscaler: how many, and which nodes may go (pure).

``servers_needed`` at the procurement/boot lead time ahead: the sizing of
:mod:`planner.sizing` run on the forecast's upper band over ``[now, now + lead]`` (the
hours that window touches), so a new server is ordered before the demand it is for.
:func:`decide` turns that into the published desired count:

- scale out early: as soon as the count ahead is above the desired count, at once;
- scale in late: only after the count ahead stayed below the desired count for
  ``scale_in_after`` and at least ``hold`` after the last change, to the highest count
  seen in that window, and never by more nodes than are safe to remove now;
- never below ``min_servers`` (the what-if input) nor above ``max_servers``.

A node is safe to remove (:func:`removable`) only when it is out of placement by its
operator (in maintenance, or ``held``: cordoned in Scalelite, drained in Jitsi), had no meeting
for ``idle_for`` and has no recording processing. While the count should fall and too few
nodes are safe, ``drain_first`` names the idle, least-loaded nodes to cordon first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import pandas as pd
from confscale.planner.placement import Placement
from confscale.planner.sizing import size_pool

# placement states of a node taken out by its operator: maintenance (planner.maintenance),
# or held in the balancer (cordoned in Scalelite, drained in Jitsi)
OUT_OF_PLACEMENT = ("maintenance", "held")


@dataclass(frozen=True)
class AutoscalePolicy:
    lead: float = 900.0  # procurement/boot lead time (seconds)
    scale_in_after: float = 3600.0  # the count ahead must stay lower this long
    hold: float = 1800.0  # at least this long between two changes of the desired count
    idle_for: float = 1800.0  # a node without meetings this long may be removed
    min_servers: int = 1
    max_servers: int | None = None

    def validated(self) -> AutoscalePolicy:
        for name in ("lead", "scale_in_after", "hold", "idle_for"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"autoscale {name} must be a duration ≥ 0")
        if self.min_servers < 0:
            raise ValueError("autoscale min_servers must be ≥ 0")
        if self.max_servers is not None and self.max_servers < max(self.min_servers, 1):
            raise ValueError("--autoscale.max-servers must be ≥ min_servers and ≥ 1")
        return self


@dataclass(frozen=True)
class AutoscaleState:
    """What :func:`decide` remembers between cycles."""

    desired: int | None = None
    changed_at: float | None = None
    lower_since: float | None = None  # since when the count ahead is below desired
    lower_max: int = 0  # the highest count ahead seen since then
    idle_since: Mapping[str, float] = field(default_factory=dict)  # first seen without meetings


@dataclass(frozen=True)
class Decision:
    """One cycle's answer (the body the targets publish, as :meth:`as_dict`)."""

    pool: str | None
    at: float
    desired: int
    needed_ahead: int | None
    online: int
    lead_seconds: float
    reason: str
    remove: tuple[str, ...] = ()  # nodes safe to remove now (at most servers - desired)
    drain_first: tuple[str, ...] = ()  # idle nodes to cordon/drain so they can be removed
    blocked: Mapping[str, str] = field(default_factory=dict)  # held nodes not yet removable

    def as_dict(self) -> dict[str, object]:
        return {
            "pool": self.pool,
            "at": self.at,
            "desired_servers": self.desired,
            "servers_needed_ahead": self.needed_ahead,
            "servers_online": self.online,
            "lead_seconds": self.lead_seconds,
            "reason": self.reason,
            "remove": list(self.remove),
            "drain_first": list(self.drain_first),
            "not_removable": dict(self.blocked),
        }


def servers_needed_ahead(snapshot: object, now: float, lead: float) -> int | None:
    """Servers the upper band needs over ``[now, now + lead]`` (None: no forecast there)."""
    forecast: pd.DataFrame = snapshot.forecast  # type: ignore[attr-defined]
    if forecast is None or forecast.empty:
        return None
    start = pd.Timestamp(now - 3600.0, unit="s", tz="UTC")
    end = pd.Timestamp(now + lead, unit="s", tz="UTC")
    index = forecast.index if forecast.index.tz else forecast.index.tz_localize("UTC")
    window = forecast[(index > start) & (index <= end)]
    if "actual" in window:
        window = window.assign(actual=float("nan"))  # every hour of it is "ahead"
    if window.empty:
        return None
    sizing = size_pool(
        window,
        mix=snapshot.mix,  # type: ignore[attr-defined]
        model=snapshot.model,  # type: ignore[attr-defined]
        capacity=snapshot.capacity,  # type: ignore[attr-defined]
        servers_online=snapshot.servers_online,  # type: ignore[attr-defined]
        what_if=snapshot.sizing.what_if,  # type: ignore[attr-defined]
        weekly_growth=snapshot.weekly_growth,  # type: ignore[attr-defined]
        meetings=snapshot.meetings,  # type: ignore[attr-defined]
    )
    return sizing.servers_needed.get("next_peak")


def track_idle(state: AutoscaleState, placement: Placement, now: float) -> dict[str, float]:
    """Since when each node is seen without meetings: the first reading with none after one
    with some (conservative: it may have emptied just before). Busy, down or unknown nodes
    have no entry."""
    idle = dict(state.idle_since)
    for node in placement.nodes:
        meetings = node.reading.meetings
        if meetings is None or meetings > 0 or not node.reading.up:
            idle.pop(node.node, None)
        else:
            idle.setdefault(node.node, now)
    known = {n.node for n in placement.nodes}
    return {n: t for n, t in idle.items() if n in known}


def removable(
    placement: Placement, idle_since: Mapping[str, float], now: float, policy: AutoscalePolicy
) -> tuple[list[str], dict[str, str]]:
    """Nodes safe to remove now, and why each other held node is not (yet)."""
    safe: list[str] = []
    blocked: dict[str, str] = {}
    for node in placement.nodes:
        if node.state not in OUT_OF_PLACEMENT:
            continue
        reading = node.reading
        idle = now - idle_since.get(node.node, now)
        if reading.meetings is None or reading.meetings > 0:
            blocked[node.node] = "has meetings" if reading.meetings else "meetings unknown"
        elif idle < policy.idle_for:
            blocked[node.node] = f"no meetings for {idle:.0f}s of {policy.idle_for:.0f}s"
        elif reading.recordings_processing:
            blocked[node.node] = f"{reading.recordings_processing:.0f} recording(s) processing"
        else:
            safe.append(node.node)
    return sorted(safe), blocked


def _count(placement: Placement, kind: str | None, states: tuple[str, ...] = ()) -> int:
    return sum(
        1
        for n in placement.nodes
        if (not states or n.state in states) and (kind is None or n.kind == kind)
    )


def decide(
    state: AutoscaleState,
    *,
    needed_ahead: int | None,
    placement: Placement,
    now: float,
    policy: AutoscalePolicy,
    pool: str | None = None,
    kind: str | None = "bbb",
) -> tuple[Decision, AutoscaleState]:
    """This cycle's desired count and removal list, and the state for the next cycle."""
    idle_since = track_idle(state, placement, now)
    online = _count(placement, kind, ("available", "out"))
    total = _count(placement, kind)  # every server of the pool the autoscaler runs
    floor = policy.min_servers
    target = None if needed_ahead is None else max(needed_ahead, floor)
    if target is not None and policy.max_servers is not None:
        target = min(target, policy.max_servers)
    current = state.desired if state.desired is not None else max(total, floor)
    desired, reason = current, "unchanged"
    lower_since, lower_max, changed_at = state.lower_since, state.lower_max, state.changed_at
    safe, blocked = removable(placement, idle_since, now, policy)
    if target is None:
        reason = "no forecast for the lead window: desired count kept"
        lower_since, lower_max = None, 0
    elif target > current:
        desired, reason = target, f"scale out: {target} needed within {policy.lead:.0f}s"
        lower_since, lower_max = None, 0
    elif target == current:
        lower_since, lower_max = None, 0
    else:
        if lower_since is None:
            lower_since, lower_max = now, target
        lower_max = max(lower_max, target)
        waited = now - lower_since
        since_change = None if changed_at is None else now - changed_at
        if waited < policy.scale_in_after:
            reason = f"scale in waits: lower for {waited:.0f}s of {policy.scale_in_after:.0f}s"
        elif since_change is not None and since_change < policy.hold:
            reason = (
                f"scale in waits: last change {since_change:.0f}s ago (hold {policy.hold:.0f}s)"
            )
        else:
            # only as far as safe nodes allow: servers - desired never exceeds the safe ones
            lowest = max(lower_max, total - len(safe))
            if lowest < current:
                desired = lowest
                reason = f"scale in to {desired}: {lower_max} needed for {waited:.0f}s"
                lower_since, lower_max = now, target  # the next step waits a window again
            else:
                reason = f"scale in to {lower_max} waits for a node that is safe to remove"
    if desired != current or state.desired is None:
        changed_at = now
    remove = tuple(safe[: max(0, total - desired)])
    drain: tuple[str, ...] = ()
    wanted = max(0, total - lower_max) - len(safe) if lower_since is not None else 0
    if wanted > 0:
        idle = sorted(
            (n for n in placement.nodes
             if n.state == "available" and n.reading.meetings == 0
             and now - idle_since.get(n.node, now) >= policy.idle_for
             and (kind is None or n.kind == kind)),
            key=lambda n: (n.pressure or 0.0, n.node),
        )  # fmt: skip
        drain = tuple(n.node for n in idle[:wanted])
    decision = Decision(
        pool, now, desired, needed_ahead, online, policy.lead, reason, remove, drain, blocked
    )
    new_state = replace(
        state,
        desired=desired,
        changed_at=changed_at,
        lower_since=lower_since,
        lower_max=lower_max if lower_since is not None else 0,
        idle_since=idle_since,
    )
    return decision, new_state
