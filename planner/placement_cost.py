"""What a new meeting costs a node, and a node's pressure with extra load on it.

Pure functions shared by ``/next``'s reservations (planner.reservations) and the
adapters: :class:`MeetingCost`, the pool's :func:`typical_meeting` (from its readings,
else its history's mix and resource model, else the priors), and
:func:`effective_pressures` (a load added term by term, through the pressure formula).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from confscale.planner.demand import DemandMix, NodeCapacity
from confscale.planner.placement import (
    NodeReading,
    PressureTargets,
    pressure_array,
    reading_pressures,
)
from confscale.planner.resources import ResourceModel, prior_model


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


def total(costs: Iterable[tuple[MeetingCost, float]]) -> MeetingCost:
    """Σ share × cost."""
    p = c = t = r = 0.0
    for cost, share in costs:
        p += cost.participants * share
        c += cost.cpu * share
        t += cost.transmit * share
        r += cost.receive * share
    return MeetingCost(p, c, t, r, "reserved")
