"""Burst-safe choice of a node for a new meeting (``GET /api/v1/placement/next``).

The placement is recomputed from readings every 30 s; a front end that asks "which node?"
for every new room would send every room of that window to the same node. Each answer
therefore *reserves* the expected cost of a new meeting on the node it names, and the
next answer sees the node as that much fuller. A reservation fades as readings newer than
it arrive (they show the meeting: users join over the first minutes and CPU and link are
5-minute rates, so a reading ``settle_seconds`` after the reservation shows all of it) and
expires after ``ttl_seconds`` whatever happens (a front end that asked but never created).

Among the nodes the placement calls available and whose pressure with reservations is
still below the hysteresis' ``out``, the *best nodes* (weight 1 − pressure, reservations
included, within ``spread_meetings`` typical meetings of the best) share the rooms by
smooth weighted round-robin (nginx's scheme for weighted upstreams): deterministic, so an
answer can be explained and a test replayed, each node within one meeting of its
weighted share. Since every answer reserves its meeting, a burst fills the headroom from
the emptiest node down instead of piling onto one. A wide spread (every available node in
proportion to its weight) sends rooms to busy nodes: the closed-loop benchmark measured
2.2× the avoidable overload, hence the narrow default.

Rooms a balancer places by itself (Scalelite's or b3lb's own choice) are *observed*: a
node whose readings show more meetings started than the previous reading, beyond what
``/next`` answers explain, gets the typical meeting reserved for each (the reading shows
the room, not yet the users who will join it), fading the same way. So the adapters see
the rooms their balancer placed since the last reading as the load they are about to be.

Pure parts (:func:`remaining_share`, :func:`best_nodes`; a meeting's cost and a node's
pressure with it: planner.placement_cost) and one thread-safe :class:`ReservationBook`.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from confscale.planner.placement import Hysteresis, Placement, PressureTargets
from confscale.planner.placement_cost import (  # re-exported: /next's public names
    PRIOR_MEETING,
    MeetingCost,
    effective_pressure,
    effective_pressures,
    model_meeting,
    total,
    typical_meeting,
)

__all__ = [
    "PRIOR_MEETING",
    "MeetingCost",
    "NoNodeAvailable",
    "Reservation",
    "ReservationBook",
    "ReservationPolicy",
    "admitted",
    "best_nodes",
    "effective_pressure",
    "effective_pressures",
    "model_meeting",
    "remaining_share",
    "total",
    "typical_meeting",
    "with_reserved",
]


@dataclass(frozen=True)
class ReservationPolicy:
    """How long a reservation counts (seconds)."""

    settle_seconds: float = 600.0  # a reading this much newer shows the whole meeting
    ttl_seconds: float = 900.0  # gone after this, readings or not
    # the best nodes: weight within this many typical meetings (their pressure) of the best
    spread_meetings: float = 1.0

    def validated(self) -> ReservationPolicy:
        if not (self.settle_seconds > 0 and math.isfinite(self.settle_seconds)):
            raise ValueError(f"reservation settle time must be > 0 s, got {self.settle_seconds}")
        if not (self.ttl_seconds >= self.settle_seconds and math.isfinite(self.ttl_seconds)):
            raise ValueError(
                f"reservation ttl ({self.ttl_seconds} s) must be ≥ the settle time "
                f"({self.settle_seconds} s)"
            )
        return self


@dataclass(frozen=True)
class Reservation:
    """The expected cost of a meeting a front end was sent to ``node`` at ``created``."""

    id: str
    node: str
    cost: MeetingCost
    created: float
    expires: float


def remaining_share(reservation: Reservation, reading_time: float | None, settle: float) -> float:
    """How much of the reservation the node's readings do not show yet (1 → 0)."""
    if reading_time is None or reading_time <= reservation.created:
        return 1.0
    return max(0.0, 1.0 - (reading_time - reservation.created) / settle)


def with_reserved(placement: Placement, reserved: Mapping[str, float]) -> Placement:
    """The placement as the adapters should see it between readings (the adapters' hook).

    Available nodes' pressure rises by what open ``/next`` reservations add (their weight
    falls); states stay as the readings and the hysteresis made them (``/next`` itself
    keeps reserved-full nodes out), so a balancer never cordons and re-enables a node
    for reservations that fade within minutes.
    """
    if not any(v > 0 for v in reserved.values()):
        return placement
    nodes = []
    for n in placement.nodes:
        extra = reserved.get(n.node, 0.0)
        if n.state == "available" and n.pressure is not None and extra > 0:
            p = n.pressure + extra
            n = replace(
                n,
                pressure=p,
                weight=max(0.0, 1.0 - p),
                reason=f"{n.reason}; +{extra:.2f} reserved by /next",
            )
        nodes.append(n)
    return replace(placement, nodes=tuple(nodes))


def best_nodes(pressures: Mapping[str, float], band: float) -> frozenset[str]:
    """The nodes whose pressure is within ``band`` of the lowest: where new rooms go
    (``/next`` shares them out by weight; the Scalelite adapter admits only these)."""
    if not pressures:
        return frozenset()
    lowest = min(pressures.values())
    edge = lowest + band + 1e-9  # a node exactly one band up is in, rounding or not
    return frozenset(n for n, p in pressures.items() if p <= edge)


def admitted(placement: Placement, band: float, kind: str = "bbb") -> frozenset[str]:
    """:func:`best_nodes` among the placement's available nodes of ``kind``."""
    return best_nodes(
        {
            n.node: n.pressure
            for n in placement.nodes
            if n.kind == kind and n.state == "available" and n.pressure is not None
        },
        band,
    )


class NoNodeAvailable(RuntimeError):
    """No node can take a new meeting (every one is out, stale, down or full)."""


class ReservationBook:
    """Open reservations and the round-robin state; every method is thread-safe."""

    def __init__(
        self,
        policy: ReservationPolicy = ReservationPolicy(),
        *,
        targets: PressureTargets | None = None,
        hysteresis: Hysteresis | None = None,
        clock: Callable[[], float],
    ) -> None:
        self.policy = policy.validated()
        self.targets = targets or PressureTargets()
        self.hysteresis = hysteresis or Hysteresis()
        self._clock = clock
        self._lock = threading.Lock()
        self._open: dict[str, Reservation] = {}
        self._current: dict[str, float] = {}  # smooth weighted round-robin
        self._ids = itertools.count(1)
        self._unseen: set[str] = set()  # /next answers no reading has shown started yet
        self._started: dict[str, tuple[str, float, float]] = {}  # node → (what, count, time)
        self._people: dict[str, tuple[float, float]] = {}  # node → (participants, time)
        self._growth: dict[str, MeetingCost] = {}  # node → what its rise adds (adapters)
        self.released = 0  # by newer readings
        self.expired = 0  # by the ttl
        self.observed = 0  # rooms the balancer placed itself, seen in the readings

    def _prune(self, placement: Placement | None, now: float) -> dict[str, float | None]:
        times = {} if placement is None else {n.node: n.timestamp for n in placement.nodes}
        for rid, res in list(self._open.items()):
            if now >= res.expires:
                del self._open[rid]
                self._unseen.discard(rid)
                self.expired += 1
            elif remaining_share(res, times.get(res.node), self.policy.settle_seconds) <= 0:
                del self._open[rid]
                self._unseen.discard(rid)
                self.released += 1
        return times

    def observe(self, placement: Placement, cost: MeetingCost) -> int:
        """Reserve ``cost`` for every room a node's readings show started since its
        previous reading that no ``/next`` answer explains; returns how many.

        The count is the reading's ``meetings_started`` counter, else its meetings (then
        a breakout room counts as a room too); a counter reset or a node that was not
        read starts the count afresh. Also the node's *rise*: participants gained per
        second since its previous reading, kept up for ``settle_seconds`` (the time a
        room's users take to join), at ``cost`` per participant — what the adapters see
        added until the next reading (:meth:`reserved_pressure`; ``/next`` reserves per
        answer instead).
        """
        with self._lock:
            added = 0
            for n in placement.nodes:
                r = n.reading
                what = "started" if r.meetings_started is not None else "meetings"
                count = r.meetings_started if what == "started" else r.meetings
                if not r.up or count is None or r.timestamp is None:
                    self._started.pop(n.node, None)
                    self._people.pop(n.node, None)
                    self._growth.pop(n.node, None)
                    continue
                before = self._started.get(n.node)
                if before is not None and r.timestamp <= before[2]:
                    continue  # the same reading again
                self._rise(n.node, r.participants, r.timestamp, cost)
                self._started[n.node] = (what, count, r.timestamp)
                if before is None or before[0] != what:
                    continue
                rise = round(count - before[1])
                asked = sorted(
                    (res.created, rid)
                    for rid, res in self._open.items()
                    if rid in self._unseen and res.node == n.node
                )
                for _, rid in asked[: max(rise, 0)]:
                    self._unseen.discard(rid)  # the room /next sent there
                for _ in range(rise - len(asked)):
                    rid = f"o{next(self._ids)}"
                    expires = r.timestamp + self.policy.ttl_seconds
                    self._open[rid] = Reservation(rid, n.node, cost, r.timestamp, expires)
                    added += 1
            self.observed += added
            return added

    def _rise(self, node: str, people: float | None, at: float, cost: MeetingCost) -> None:
        previous = self._people.get(node)
        self._growth.pop(node, None)
        if people is None:
            self._people.pop(node, None)
            return
        self._people[node] = (people, at)
        if previous is None or at <= previous[1] or cost.participants <= 0:
            return
        rate = max(0.0, people - previous[0]) / (at - previous[1])
        if rate > 0:
            expected = rate * self.policy.settle_seconds
            self._growth[node] = cost.scaled(expected / cost.participants)

    def _reserved(self, times: dict[str, float | None]) -> dict[str, MeetingCost]:
        by_node: dict[str, list[tuple[MeetingCost, float]]] = {}
        for res in self._open.values():
            share = remaining_share(res, times.get(res.node), self.policy.settle_seconds)
            by_node.setdefault(res.node, []).append((res.cost, share))
        return {node: total(costs) for node, costs in by_node.items()}

    def reserved(self, placement: Placement | None) -> dict[str, MeetingCost]:
        """Per node, the load reserved and not yet in its readings (released ones dropped)."""
        with self._lock:
            return self._reserved(self._prune(placement, self._clock()))

    def reserved_pressure(self, placement: Placement | None) -> dict[str, float]:
        """Per node, how much the reservations and its rise (:meth:`observe`) raise its
        pressure (the adapters' hook)."""
        if placement is None:
            return {}
        load = self.reserved(placement)
        with self._lock:
            for name, rise in self._growth.items():
                extra = [(rise, 1.0)] + ([(load[name], 1.0)] if name in load else [])
                load[name] = total(extra)
        result = {}
        for node in placement.nodes:
            if node.node in load and node.pressure is not None:
                p = effective_pressure(node.reading, load[node.node], self.targets)
                result[node.node] = 0.0 if p is None else max(0.0, p - node.pressure)
        return result

    def open_count(self) -> int:
        with self._lock:
            return len(self._open)

    def choose(
        self,
        placement: Placement,
        cost: MeetingCost,
        *,
        kind: str = "bbb",
        exclude: Sequence[str] = (),
    ) -> dict[str, object]:
        """Pick a node for one new meeting, reserve ``cost`` on it, say why (JSON-ready)."""
        with self._lock:
            now = self._clock()
            times = self._prune(placement, now)
            reserved = self._reserved(times)
            nodes = [n for n in placement.nodes if n.kind == kind and n.node not in exclude]
            none = MeetingCost(0.0)
            pressures = effective_pressures(
                [n.reading for n in nodes],
                [reserved.get(n.node, none) for n in nodes],
                self.targets,
            )
            candidates = []
            for node, p in zip(nodes, pressures, strict=True):
                if node.pressure is None:
                    p = None
                ok = node.state == "available" and p is not None and p < self.hysteresis.out
                weight = max(0.0, 1.0 - p) if ok and p is not None else 0.0
                candidates.append((node, p, weight, ok))
            eligible = [c for c in candidates if c[3] and c[2] > 0]
            available = len(eligible)
            if not eligible:
                raise NoNodeAvailable(
                    "no node can take a new meeting: "
                    + (
                        "; ".join(f"{c[0].node} {c[0].state}" for c in candidates[:10])
                        or f"no {kind} node in the placement"
                    )
                )
            band = self.policy.spread_meetings * cost.pressure(self.targets)
            best = best_nodes({c[0].node: 1.0 - c[2] for c in eligible}, band)
            eligible = [c for c in eligible if c[0].node in best]
            weight_sum = sum(c[2] for c in eligible)
            names = {c[0].node for c in eligible}  # the best nodes
            self._current = {n: v for n, v in self._current.items() if n in names}
            for node, _, weight, _ in eligible:
                self._current[node.node] = self._current.get(node.node, 0.0) + weight
            chosen = max(eligible, key=lambda c: (self._current[c[0].node], c[2], c[0].node))
            self._current[chosen[0].node] -= weight_sum
            node, p, weight, _ = chosen
            reservation = Reservation(
                f"r{next(self._ids)}", node.node, cost, now, now + self.policy.ttl_seconds
            )
            self._open[reservation.id] = reservation
            self._unseen.add(reservation.id)
            open_here = sum(1 for r in self._open.values() if r.node == node.node)
        reason = (
            f"smooth weighted round-robin over the {len(eligible)} best of {available} "
            f"available node(s) (weight within {band:.2f} of the best): weight "
            f"{weight:.2f} of {weight_sum:.2f} ({weight / weight_sum:.0%}); pressure "
            f"{node.pressure:.2f}, {p:.2f} with {open_here - 1} earlier reservation(s); "
            f"reserved {cost.participants:.0f} participants ({cost.source}) until a reading "
            f"{self.policy.settle_seconds:.0f}s newer or {self.policy.ttl_seconds:.0f}s"
        )
        assert node.pressure is not None and p is not None  # an eligible node has both
        return {
            "node": node.node,
            "kind": node.kind,
            "reason": reason,
            "pressure": round(node.pressure, 4),
            "effective_pressure": round(p, 4),
            "weight": round(weight, 4),
            "share": round(weight / weight_sum, 4),
            "reservation": {
                "id": reservation.id,
                "created": reservation.created,
                "expires_at": reservation.expires,
                "cost": cost.as_dict(),
            },
            "placement_generated_at": placement.generated_at,
            "candidates": [
                {
                    "node": c[0].node,
                    "state": c[0].state,
                    "pressure": None if c[0].pressure is None else round(c[0].pressure, 4),
                    "effective_pressure": None if c[1] is None else round(c[1], 4),
                    "weight": round(c[2], 4),
                    "eligible": c[3],
                    "best": c[0].node in names,
                }
                for c in candidates
            ],
        }
