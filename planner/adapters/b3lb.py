"""b3lb: a node-local ``/b3lb/load`` answering an integer 0–10000 and a newline.

The planner serves ``/<node>/b3lb/load`` (a reverse proxy on each node, or b3lb's
load URL, points at it). Load = 10000 × min(pressure, 1); nodes that are out, stale or
down answer 10000 (full). Dry-run: the values are computed and logged when they change,
but the route answers 404 until the adapter is enabled.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from confscale.planner.placement import Placement

log = logging.getLogger(__name__)
FULL = 10000


def load_values(placement: Placement) -> dict[str, int]:
    """Per node: b3lb load 0–10000 (pure)."""
    values = {}
    for node in placement.nodes:
        if node.state != "available" or node.pressure is None:
            values[node.node] = FULL
        else:
            values[node.node] = max(0, min(FULL, round(node.pressure * FULL)))
    return values


@dataclass
class B3lbAdapter:
    """Holds the current load values for the ``/<node>/b3lb/load`` route."""

    dry_run: bool = True
    _values: dict[str, int] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def apply(self, placement: Placement) -> dict[str, int]:
        values = load_values(placement)
        with self._lock:
            changed = {n: v for n, v in values.items() if self._values.get(n) != v}
            self._values = values
        if changed:
            verb = "would serve" if self.dry_run else "serves"
            log.info(
                "b3lb: %s load %s", verb, ", ".join(f"{n}={v}" for n, v in sorted(changed.items()))
            )
        return values

    def body(self, node: str) -> str | None:
        """The answer for one node ("1234\\n"), or None (404) when unknown or dry-run."""
        if self.dry_run:
            return None
        with self._lock:
            value = self._values.get(node)
        return None if value is None else f"{value}\n"
