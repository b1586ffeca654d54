"""Demand and capacity per constraint, and the what-if inputs (docs/design.md §4).

D_k: a pool-wide participant count turned into participants, busy cores and transmit
bytes/s with the pool's demand mix and resource model; L_k: what the largest meeting needs
on its one node; C_k: what one node offers. Pure functions; :mod:`planner.sizing` counts
servers from them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from types import MappingProxyType
from typing import NamedTuple

import numpy as np
from confscale.planner.packing import MeetingTable
from confscale.planner.resources import (
    KBIT,
    PRIOR_CAMERA_KBIT,
    PRIOR_OVERHEAD,
    LinearCost,
    ResourceModel,
)

from confscale.thresholds import (
    FAILURE,
    MIN_SERVERS,
    PACKING_RISK,
    PARTICIPANTS_PER_NODE,
    REDUNDANCY,
    TARGET,
)

Load = float | np.ndarray  # one figure, or one per meeting of a table (same formulas)

CONSTRAINTS: tuple[str, ...] = ("participants", "cpu", "transmit")


@dataclass(frozen=True)
class DemandMix:
    """Per-participant shares of the pool at its busy hours (from history)."""

    voice_per_participant: float = 0.3
    listeners_per_participant: float = 0.6
    fanout_per_participant: float = 2.0
    webcam_share: float = 0.1
    mean_meeting_size: float = 15.0
    largest_meeting: float = 0.0
    # shares inside the largest meetings (None: as the pool at busy hours)
    largest_voice_share: float | None = None
    largest_listener_share: float | None = None
    largest_webcam_share: float | None = None
    largest_fanout_per_participant: float | None = None


@dataclass(frozen=True)
class NodeCapacity:
    """Capacity of one node per constraint."""

    participants: float = PARTICIPANTS_PER_NODE
    cpu_cores: float = 8.0
    link_bytes_per_second: float = 62.5e6


@dataclass(frozen=True)
class WhatIf:
    """Inputs a planner can change without refitting anything."""

    growth: float = 1.0  # multiplies forecast demand
    webcam_share: float | None = None  # share of participants with a camera on
    camera_kbit: float | None = None  # per forwarded webcam stream
    screen_share_share: float = 0.0  # share of participants watching a screen share
    screen_share_kbit: float = 500.0
    headroom_participants: float = TARGET["participants"]
    headroom_cpu: float = TARGET["cpu"]
    headroom_transmit: float = TARGET["transmit"]
    failure_participants: float = FAILURE["participants"]
    failure_cpu: float = FAILURE["cpu"]
    failure_transmit: float = FAILURE["transmit"]
    headroom_jitsi_stress: float = TARGET["jitsi_stress"]  # Jitsi bridges (planner/jitsi.py)
    failure_jitsi_stress: float = FAILURE["jitsi_stress"]
    link_capacity_bytes_per_second: float | None = None
    redundancy: int = REDUNDANCY
    min_servers: int = MIN_SERVERS
    cameras_per_viewer: float = 5.0  # pagination: what a viewer of the largest meeting sees
    band: int = 95  # which upper band is "demand"
    # packing: the share of Monte Carlo placements allowed to pass a target (planner/packing.py)
    packing_risk: float = PACKING_RISK

    def headroom(self, constraint: str) -> float:
        return float(getattr(self, f"headroom_{constraint}"))

    def failure(self, constraint: str) -> float:
        return float(getattr(self, f"failure_{constraint}"))

    def validated(self) -> WhatIf:
        """A copy with each input checked for type and range (``WHAT_IF_RANGES``).

        Whole-number inputs given as an integral float (``95.0``) become ints; anything
        else out of place is a ValueError in plain words naming the input.
        """
        changes = {f.name: _checked(f.name, getattr(self, f.name)) for f in fields(self)}
        return replace(self, **changes)  # type: ignore[arg-type]


class Range(NamedTuple):
    """What one what-if input may be: whole or not, bounds, optional (None allowed)."""

    low: float
    high: float
    whole: bool = False
    optional: bool = False
    low_open: bool = False  # low itself is not allowed
    choices: tuple[int, ...] = ()


#: Every what-if input's type and range; an input missing here must be a finite number ≥ 0.
WHAT_IF_RANGES = MappingProxyType(
    {
        "growth": Range(0, 100, low_open=True),
        "webcam_share": Range(0, 1, optional=True),
        "camera_kbit": Range(0, 100_000, optional=True, low_open=True),
        "screen_share_share": Range(0, 1),
        "screen_share_kbit": Range(0, 100_000),
        **{
            f"{kind}_{constraint}": Range(0, 1.5, low_open=True)
            for kind in ("headroom", "failure")
            for constraint in ("participants", "cpu", "transmit", "jitsi_stress")
        },
        "link_capacity_bytes_per_second": Range(0, 1.25e12, optional=True, low_open=True),
        "redundancy": Range(0, 100, whole=True),
        "min_servers": Range(0, 100_000, whole=True),
        "cameras_per_viewer": Range(0, 1_000),
        "band": Range(50, 95, whole=True, choices=(50, 80, 95)),
        "packing_risk": Range(0, 0.5, low_open=True),
    }
)


def _checked(name: str, value: object) -> object:
    spec = WHAT_IF_RANGES.get(name, Range(0, math.inf))
    if value is None and spec.optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {_shown(value)}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {_shown(value)}")
    if spec.whole:
        if value != int(value):
            raise ValueError(f"{name} must be a whole number, got {_shown(value)}")
        value = int(value)
    if spec.choices and value not in spec.choices:
        choices = ", ".join(str(c) for c in spec.choices[:-1]) + f" or {spec.choices[-1]}"
        raise ValueError(f"{name} must be {choices}, got {_shown(value)}")
    low_ok = value > spec.low if spec.low_open else value >= spec.low
    if not low_ok or value > spec.high:
        low = "(" if spec.low_open else "["
        raise ValueError(
            f"{name} must be in {low}{spec.low:g}, {spec.high:g}], got {_shown(value)}"
        )
    return value


def _shown(value: object) -> str:
    """A bad input as a person reads it, short (never a Python repr of a huge object)."""
    if isinstance(value, float | int) and not isinstance(value, bool):
        return f"{value:g}"
    text = repr(value) if isinstance(value, str | bool) else type(value).__name__
    return text[:40]


def constraint_demand(
    participants: float, mix: DemandMix, model: ResourceModel, what_if: WhatIf
) -> dict[str, float]:
    """D_k for a pool-wide participant count: participants, busy cores, transmit B/s."""
    p = participants * what_if.growth
    fanout_pp = _fanout_per_participant(mix, what_if)
    voice, listeners, fanout = (
        p * mix.voice_per_participant,
        p * mix.listeners_per_participant,
        p * fanout_pp,
    )
    return {
        "participants": p,
        "cpu": float(_slopes(model.cpu, voice, listeners, fanout)),
        "transmit": float(_transmit(model, voice, listeners, fanout, p, what_if)),
    }


def largest_meeting_load(mix: DemandMix, model: ResourceModel, what_if: WhatIf) -> dict[str, float]:
    """L_k: what the largest meeting needs on its single node, per constraint.

    Its audio shares and webcam fan-out per participant are those seen where one big
    meeting fills a node (lectures: mostly listeners, one or two cameras), else modelled
    from the webcam share as W·(n−1); either way capped at n viewers each seeing
    ``cameras_per_viewer`` streams (pagination). A what-if webcam share scales it.
    """
    size = mix.largest_meeting
    if mix.largest_fanout_per_participant is not None:
        fanout = size * mix.largest_fanout_per_participant
        if what_if.webcam_share is not None:  # relative to the pool's share, as for D
            fanout = (
                fanout * what_if.webcam_share / mix.webcam_share
                if mix.webcam_share > 0
                else what_if.webcam_share * size * max(size - 1, 0.0)
            )
    else:
        observed = mix.largest_webcam_share
        share = observed if observed is not None else mix.webcam_share
        if what_if.webcam_share is not None:
            share = what_if.webcam_share
        fanout = share * size * max(size - 1, 0.0)
    fanout = min(fanout, size * what_if.cameras_per_viewer)
    voice_share = (
        mix.largest_voice_share
        if mix.largest_voice_share is not None
        else mix.voice_per_participant
    )
    listener_share = (
        mix.largest_listener_share
        if mix.largest_listener_share is not None
        else mix.listeners_per_participant
    )
    voice, listeners = size * voice_share, size * listener_share
    return {
        "participants": size,
        "cpu": float(_slopes(model.cpu, voice, listeners, fanout)),
        "transmit": float(_transmit(model, voice, listeners, fanout, size, what_if)),
    }


def meeting_costs(table: MeetingTable, model: ResourceModel, what_if: WhatIf) -> np.ndarray:
    """Per meeting of ``table``: participants, busy cores, transmit B/s (meetings × 3).

    Priced as D_k is (same model and what-if); a what-if webcam share scales each
    meeting's fan-out relative to the share it was recorded with, and every meeting is
    capped at n viewers × ``cameras_per_viewer`` streams (pagination).
    """
    n, voice, listeners = table.participants, table.voice, table.listeners
    fanout = table.fanout
    if what_if.webcam_share is not None:
        fanout = (
            fanout * what_if.webcam_share / table.webcam_share
            if table.webcam_share > 0
            else what_if.webcam_share * n * np.maximum(n - 1, 0.0)
        )
    fanout = np.minimum(fanout, n * what_if.cameras_per_viewer)
    return np.stack(
        [
            n,
            _slopes(model.cpu, voice, listeners, fanout),
            _transmit(model, voice, listeners, fanout, n, what_if),
        ],
        axis=1,
    )


def _fanout_per_participant(mix: DemandMix, what_if: WhatIf) -> float:
    if what_if.webcam_share is None:
        return mix.fanout_per_participant
    if mix.webcam_share > 0:
        return mix.fanout_per_participant * what_if.webcam_share / mix.webcam_share
    return what_if.webcam_share * max(mix.mean_meeting_size - 1, 0.0)


def _slopes(cost: LinearCost, voice: Load, listeners: Load, fanout: Load) -> Load:
    return cost.voice_participants * voice + cost.listeners * listeners + cost.video_fanout * fanout


def _transmit(
    model: ResourceModel,
    voice: Load,
    listeners: Load,
    fanout: Load,
    participants: Load,
    what_if: WhatIf,
) -> Load:
    camera_scale = 1.0 if what_if.camera_kbit is None else what_if.camera_kbit / PRIOR_CAMERA_KBIT
    cost = model.transmit
    base = (
        cost.voice_participants * voice
        + cost.listeners * listeners
        + cost.video_fanout * camera_scale * fanout
    )
    screen = participants * what_if.screen_share_share * what_if.screen_share_kbit * KBIT
    return base + screen * PRIOR_OVERHEAD


def effective_capacity(
    capacity: NodeCapacity, model: ResourceModel, what_if: WhatIf
) -> dict[str, float]:
    """C_k per node; a fitted per-node baseline (intercept) is taken off CPU and link."""
    link = what_if.link_capacity_bytes_per_second or capacity.link_bytes_per_second
    return {
        "participants": capacity.participants,
        "cpu": max(capacity.cpu_cores - max(model.cpu.intercept, 0.0), 0.0),
        "transmit": max(link - max(model.transmit.intercept, 0.0), 0.0),
    }


def with_changes(what_if: WhatIf, **changes: object) -> WhatIf:
    """A copy of ``what_if`` with some fields changed (unknown names are an error)."""
    unknown = set(changes) - set(asdict(what_if))
    if unknown:
        raise ValueError(
            f"unknown what-if input(s) {', '.join(sorted(unknown))}; expected "
            f"{', '.join(asdict(what_if))}"
        )
    return replace(what_if, **changes).validated()  # type: ignore[arg-type]
