"""The placement signal (docs/design.md §5): per-node pressure, weights, hysteresis, ranking.

Pure functions: readings in, a ranked :class:`Placement` out. The caller keeps the set
of nodes that are currently taken out and passes it back in (that is the hysteresis).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from confscale.thresholds import HYSTERESIS, PARTICIPANTS_PER_NODE, TARGET, Hysteresis


@dataclass(frozen=True)
class PressureTargets:
    """Denominators of the pressure formula (the headroom targets of docs/design.md §4)."""

    cpu: float = TARGET["cpu"]
    link: float = TARGET["transmit"]
    participants: float = TARGET["participants"] * PARTICIPANTS_PER_NODE
    jitsi_stress: float = TARGET["jitsi_stress"]


def pressure_array(
    *,
    cpu: np.ndarray,
    transmit: np.ndarray,
    receive: np.ndarray,
    participants: np.ndarray,
    jitsi_stress: np.ndarray | None = None,
    targets: PressureTargets = PressureTargets(),
) -> np.ndarray:
    """max(cpu/u_cpu, tx/u_link, rx/u_link, participants/C, stress/u_stress); NaN-aware.

    The formula of the recording rule ``node:confscale_pressure:ratio``; a row whose
    every term is missing gives NaN (no data), not 0 (idle).
    """
    terms = [
        np.asarray(cpu, dtype=float) / targets.cpu,
        np.asarray(transmit, dtype=float) / targets.link,
        np.asarray(receive, dtype=float) / targets.link,
        np.asarray(participants, dtype=float) / targets.participants,
    ]
    if jitsi_stress is not None:
        terms.append(np.asarray(jitsi_stress, dtype=float) / targets.jitsi_stress)
    stacked = np.vstack(terms)
    all_missing = np.isnan(stacked).all(axis=0)
    result = np.nanmax(np.where(np.isnan(stacked), -np.inf, stacked), axis=0)
    return np.where(all_missing, np.nan, result)


@dataclass(frozen=True)
class NodeReading:
    """What is known about one node right now (from Prometheus, the exporter or a file)."""

    node: str
    kind: str = "bbb"
    up: bool = True
    timestamp: float | None = None
    meetings: float | None = None
    # meetings (not breakout rooms) seen starting, a counter (the exporter's
    # bbb_meetings_started; None: not exported — Δ meetings stands in)
    meetings_started: float | None = None
    participants: float | None = None
    participants_max: float | None = None
    webcams: float | None = None
    cpu_utilisation: float | None = None
    transmit_utilisation: float | None = None
    receive_utilisation: float | None = None
    jitsi_stress: float | None = None
    pressure: float | None = None  # when a recording rule already gives it
    # why the node's operator holds it out of its balancer (a Scalelite server they
    # cordoned or disabled, a bridge they drained; planner.adapters): not online capacity
    held: str | None = None
    # an operator put the node into maintenance (planner.maintenance): out of placement and
    # capacity, cordoned/drained by the adapters, its alerts inhibited
    maintenance: str | None = None
    # BBB recordings still processing (the exporter's bbb_recordings{state="processing"};
    # None: not exported): the autoscaler never proposes removing a node that has some
    recordings_processing: float | None = None


def reading_pressures(
    readings: Sequence[NodeReading], targets: PressureTargets
) -> list[float | None]:
    """Each node's pressure (the given one, else computed; None when nothing is known),
    with one :func:`pressure_array` call for all of them."""

    def arr(name: str) -> np.ndarray:
        values = (getattr(r, name) for r in readings)
        return np.array([np.nan if v is None else v for v in values], dtype=float)

    computed = pressure_array(
        cpu=arr("cpu_utilisation"),
        transmit=arr("transmit_utilisation"),
        receive=arr("receive_utilisation"),
        participants=arr("participants"),
        jitsi_stress=arr("jitsi_stress"),
        targets=targets,
    )
    result: list[float | None] = []
    for reading, value in zip(readings, computed, strict=True):
        if reading.pressure is not None and math.isfinite(reading.pressure):
            result.append(float(reading.pressure))
        else:
            result.append(None if math.isnan(value) else float(value))
    return result


@dataclass(frozen=True)
class NodePlacement:
    """One ranked node: ``state`` is available, out (pressure), maintenance, held, stale or
    down."""

    node: str
    kind: str
    state: str
    pressure: float | None
    weight: float
    timestamp: float | None
    reason: str
    reading: NodeReading = field(repr=False, compare=False)

    def as_dict(self) -> dict[str, object]:
        return {
            "node": self.node,
            "kind": self.kind,
            "state": self.state,
            "pressure": None if self.pressure is None else round(self.pressure, 4),
            "weight": round(self.weight, 4),
            "timestamp": self.timestamp,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Placement:
    """Ranked nodes (best first), the recommended one, and when this was computed."""

    generated_at: float
    nodes: tuple[NodePlacement, ...]
    recommended: str | None
    out: frozenset[str]

    def as_dict(self) -> dict[str, object]:
        return {
            "generated_at": self.generated_at,
            "recommended": self.recommended,
            "nodes": [
                {"rank": index + 1, **node.as_dict()} for index, node in enumerate(self.nodes)
            ],
        }


_STATE_ORDER = {"available": 0, "out": 1, "maintenance": 2, "held": 3, "stale": 4, "down": 5}


def place(
    readings: Iterable[NodeReading],
    *,
    now: float,
    previous_out: frozenset[str] = frozenset(),
    targets: PressureTargets = PressureTargets(),
    hysteresis: Hysteresis = HYSTERESIS,
    stale_after: float = 180.0,
) -> Placement:
    """Rank nodes for the next meeting.

    weight = 1 − pressure for available nodes (so ≥ 1 − ``hysteresis.out``), 0 for nodes
    that are out, in maintenance (``NodeReading.maintenance``, whatever else is known),
    held (by their operator in the balancer: ``NodeReading.held``), stale
    (no reading newer than ``stale_after`` seconds) or down.
    A node goes out at pressure ≥ ``hysteresis.out`` and comes back only at
    ≤ ``hysteresis.back``; between the two it keeps its previous state.
    """
    placed: list[NodePlacement] = []
    readings = list(readings)
    for reading, pressure in zip(readings, reading_pressures(readings, targets), strict=True):
        if reading.maintenance:
            state, reason = "maintenance", reading.maintenance
        elif not reading.up:
            state, reason = "down", "node is down"
        elif reading.timestamp is None or now - reading.timestamp > stale_after:
            state, reason = "stale", f"no reading in the last {stale_after:.0f}s"
        elif pressure is None:
            state, reason = "stale", "no load figures"
        elif reading.held:
            state, reason = "held", reading.held
        elif pressure >= hysteresis.out:
            state, reason = "out", f"pressure {pressure:.2f} ≥ {hysteresis.out}"
        elif reading.node in previous_out and pressure > hysteresis.back:
            state = "out"
            reason = f"pressure {pressure:.2f} not yet ≤ {hysteresis.back} (hysteresis)"
        else:
            state, reason = "available", f"pressure {pressure:.2f}"
        weight = max(0.0, 1.0 - pressure) if state == "available" and pressure is not None else 0.0
        placed.append(
            NodePlacement(
                reading.node,
                reading.kind,
                state,
                pressure,
                weight,
                reading.timestamp,
                reason,
                reading,
            )
        )
    placed.sort(key=lambda p: (_STATE_ORDER[p.state], -p.weight, p.node))
    recommended = next((p.node for p in placed if p.state == "available"), None)
    # A node that was out and is now in maintenance, held, stale or down stays remembered
    # as out.
    out = frozenset(
        p.node
        for p in placed
        if p.state == "out"
        or (p.state in ("maintenance", "held", "stale", "down") and p.node in previous_out)
    )
    return Placement(now, tuple(placed), recommended, out)
