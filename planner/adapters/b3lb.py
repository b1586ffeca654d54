"""b3lb: a node-local ``/b3lb/load`` answering an integer 0–10000 and a newline.

Checked against DE-IBH/b3lb adfc4b02af5bbd50cd54066e71a599ec589f5a0f
(``b3lb/rest/task/core.py`` ``check_node``; ``b3lb/rest/models.py`` ``Node.load``,
``Cluster``; ``b3lb/rest/classes/api.py`` ``set_node_by_lowest_workload``;
``b3lb/loadbalancer/constants.py``; ``scripts/bbb/load/``). b3lb GETs
``https://<node>.<domain>/b3lb/load`` (5 s timeout) and, for an HTTP 200 whose text has
a newline, takes ``int(first line)`` as the node's ``cpu_load``; any other answer keeps
the last value. It then computes

    load = attendees·a + meetings·m + Σ_{i=1}^{5} (cpu_load/10000)^i · cpu_max / 6

(defaults a=1, m=30, cpu_max=5000, 6 "iterations") and places a new meeting on the node
with the lowest load ≥ 0 (maintenance −2 and errors −1 are never chosen).

The planner serves ``/<node>/b3lb/load`` (a reverse proxy on each node points its
``/b3lb/load`` there): 10000 × min(pressure, 1); 10000 for nodes that are out, stale or
down. 10000 adds only ≈4,167 load points (the equivalent of 4,167 attendees or 139
meetings): an out node ranks last only while every other node carries less. To keep a
node out for certain, set b3lb's own maintenance flag (docs/planner.md). Dry-run: values
are computed and logged when they change, but the route answers 404 (b3lb then keeps the
last value it read).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from confscale.planner.adapters.health import AdapterHealth
from confscale.planner.placement import Placement

log = logging.getLogger(__name__)
FULL = 10000
# b3lb polls every node every few seconds; no fetch for this long means it is not wired.
FETCH_STALE_SECONDS = 300.0


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
    health: AdapterHealth = field(default_factory=lambda: AdapterHealth("b3lb"))
    clock: Callable[[], float] = time.time
    name: str = "b3lb"
    # per node, what open /next reservations add to its pressure (service.reserved_pressure):
    # read on every fetch, so b3lb sees them between readings
    reserved: Callable[[], Mapping[str, float]] | None = field(default=None, repr=False)
    _values: dict[str, int] = field(default_factory=dict, repr=False)
    _started: float | None = field(default=None, repr=False)
    _last_fetch: float | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.health.actuating = not self.dry_run

    def apply(self, placement: Placement) -> dict[str, int]:
        values = load_values(placement)
        with self._lock:
            changed = {n: v for n, v in values.items() if self._values.get(n) != v}
            self._values = values
            started = self._started = self._started or self.clock()
            last = self._last_fetch
        if changed:
            verb = "would serve" if self.dry_run else "serves"
            log.info(
                "b3lb: %s load %s", verb, ", ".join(f"{n}={v}" for n, v in sorted(changed.items()))
            )
        held = tuple(n for n, v in values.items() if v == FULL)
        since = last if last is not None else started
        if not self.dry_run and self.clock() - since > FETCH_STALE_SECONDS:
            ago = "never" if last is None else f"not for {self.clock() - last:.0f} s"
            self.health.failed(
                f"b3lb has fetched no load value ({ago}): point each node's /b3lb/load at "
                "the planner's /<node>/b3lb/load"
            )
        else:
            self.health.succeeded(held if not self.dry_run else ())
        return values

    def body(self, node: str) -> str | None:
        """The answer for one node ("1234\\n"), or None (404) when unknown or dry-run."""
        if self.dry_run:
            return None
        with self._lock:
            value = self._values.get(node)
            if value is not None:
                self._last_fetch = self.clock()
        if value is not None and value < FULL and self.reserved is not None:
            extra = self.reserved().get(node, 0.0)
            value = min(FULL, value + max(0, round(extra * FULL)))
        self.health.count("ok" if value is not None else "not_found")
        return None if value is None else f"{value}\n"
