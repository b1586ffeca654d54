"""Placements for the adapter tests (pure: readings in, the planner's own place() out)."""

from __future__ import annotations

from confscale.planner.placement import NodeReading, Placement, place

NOW = 1_800_000_000.0


def placement_for(
    pressures: dict[str, float | None],
    *,
    previous_out: frozenset[str] = frozenset(),
    kind: str = "bbb",
    down: tuple[str, ...] = (),
    stale: tuple[str, ...] = (),
) -> Placement:
    readings = [
        NodeReading(
            node=n,
            kind=kind,
            up=n not in down,
            timestamp=NOW - 3600 if n in stale else NOW,
            pressure=p,
            participants=0.0,
        )
        for n, p in pressures.items()
    ]
    return place(readings, now=NOW, previous_out=previous_out)
