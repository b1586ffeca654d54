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

Pure parts (:func:`typical_meeting`, :func:`effective_pressure`, :func:`remaining_share`,
:func:`best_nodes`) and one thread-safe :class:`ReservationBook`.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from confscale.planner.demand import DemandMix, NodeCapacity
from confscale.planner.placement import (
    Hysteresis,
    NodeReading,
    Placement,
    PressureTargets,
    pressure_array,
    reading_pressures,
)
from confscale.planner.resources import ResourceModel, prior_model


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
class MeetingCost:
    """What one meeting adds to a node: participants, and shares of its CPUs and link."""

    participants: float
    cpu: float = 0.0
    transmit: float = 0.0
    receive: float = 0.0
    source: str = "prior"  # readings | history | prior (where the per-participant cost is from)

    def scaled(self, factor: float) -> MeetingCost:
        return replace(
            self,
            participants=self.participants * factor,
            cpu=self.cpu * factor,
            transmit=self.transmit * factor,
            receive=self.receive * factor,
        )

    def pressure(self, targets: PressureTargets) -> float:
        """The pressure this meeting alone puts on an empty node."""
        return max(
            self.participants / targets.participants,
            self.cpu / targets.cpu,
            self.transmit / targets.link,
            self.receive / targets.link,
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "participants": round(self.participants, 2),
            "cpu_utilisation": round(self.cpu, 5),
            "transmit_utilisation": round(self.transmit, 5),
            "receive_utilisation": round(self.receive, 5),
            "source": self.source,
        }


def model_meeting(
    mix: DemandMix, model: ResourceModel, capacity: NodeCapacity, source: str
) -> MeetingCost:
    """The typical meeting of the mix, costed with the resource model (intercepts off)."""
    n = mix.mean_meeting_size
    voice, listeners = n * mix.voice_per_participant, n * mix.listeners_per_participant
    fanout = n * mix.fanout_per_participant
    cpu = model.cpu(voice, listeners, fanout) - model.cpu.intercept
    tx = model.transmit(voice, listeners, fanout) - model.transmit.intercept
    return MeetingCost(
        participants=n,
        cpu=max(cpu, 0.0) / capacity.cpu_cores,
        transmit=max(tx, 0.0) / capacity.link_bytes_per_second,
        source=source,
    )


PRIOR_MEETING = model_meeting(DemandMix(), prior_model(), NodeCapacity(), "prior")


def typical_meeting(
    readings: Iterable[NodeReading],
    *,
    expected_participants: float | None = None,
    fallback: MeetingCost = PRIOR_MEETING,
) -> MeetingCost:
    """The expected cost of a new meeting on this pool.

    Per participant, the pool's current load divided by its participants (CPU and link
    shares include each node's idle baseline: a slight overestimate, on the safe side);
    the size is ``expected_participants`` when given, else the pool's participants per
    meeting now. With no participants on the pool, ``fallback`` (the snapshot's mix and
    resource model, or the priors) scaled to the size.
    """
    people = meetings = cpu = tx = rx = 0.0
    for r in readings:
        if not r.up or r.kind != "bbb" or not r.participants or r.participants <= 0:
            continue
        people += r.participants
        meetings += r.meetings or 0.0
        cpu += r.cpu_utilisation or 0.0
        tx += r.transmit_utilisation or 0.0
        rx += r.receive_utilisation or 0.0
    if people > 0:
        size = expected_participants or (people / meetings if meetings else fallback.participants)
        return MeetingCost(
            size, cpu / people * size, tx / people * size, rx / people * size, "readings"
        )
    if expected_participants:
        return fallback.scaled(expected_participants / fallback.participants)
    return fallback


def effective_pressure(
    reading: NodeReading, load: MeetingCost, targets: PressureTargets
) -> float | None:
    """The node's pressure with ``load`` added to its readings (None: nothing known)."""
    return effective_pressures([reading], [load], targets)[0]


def effective_pressures(
    readings: Sequence[NodeReading], loads: Sequence[MeetingCost], targets: PressureTargets
) -> list[float | None]:
    """:func:`effective_pressure` of many nodes with one pressure computation.

    The load is added term by term and the sum put through the pressure formula; a
    reading with only a ready-made pressure (a rule's, Jitsi stress) gets the load's own
    pressure on top.
    """
    base = reading_pressures(readings, targets)

    def plus(name: str, extra: str) -> np.ndarray:
        return np.array(
            [
                (getattr(r, name) or 0.0) + getattr(x, extra)
                for r, x in zip(readings, loads, strict=True)
            ],
            dtype=float,
        )

    bumped = pressure_array(
        cpu=plus("cpu_utilisation", "cpu"),
        transmit=plus("transmit_utilisation", "transmit"),
        receive=plus("receive_utilisation", "receive"),
        participants=plus("participants", "participants"),
        jitsi_stress=np.array(
            [np.nan if r.jitsi_stress is None else r.jitsi_stress for r in readings], dtype=float
        ),
        targets=targets,
    )
    result: list[float | None] = []
    for reading, load, b, value in zip(readings, loads, base, bumped, strict=True):
        terms = (
            reading.participants,
            reading.cpu_utilisation,
            reading.transmit_utilisation,
            reading.receive_utilisation,
        )
        if b is None:
            result.append(None)
        elif all(v is None for v in terms):
            result.append(b + load.pressure(targets))
        else:
            result.append(max(b, float(value)))
    return result


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


def total(costs: Iterable[tuple[MeetingCost, float]]) -> MeetingCost:
    """Σ share × cost."""
    p = c = t = r = 0.0
    for cost, share in costs:
        p += cost.participants * share
        c += cost.cpu * share
        t += cost.transmit * share
        r += cost.receive * share
    return MeetingCost(p, c, t, r, "reserved")


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
        read starts the count afresh.
        """
        with self._lock:
            added = 0
            for n in placement.nodes:
                r = n.reading
                what = "started" if r.meetings_started is not None else "meetings"
                count = r.meetings_started if what == "started" else r.meetings
                if not r.up or count is None or r.timestamp is None:
                    self._started.pop(n.node, None)
                    continue
                before = self._started.get(n.node)
                if before is not None and r.timestamp <= before[2]:
                    continue  # the same reading again
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
        """Per node, how much the reservations raise its pressure (the adapters' hook)."""
        if placement is None:
            return {}
        load = self.reserved(placement)
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
