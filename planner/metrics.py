"""The planner's Prometheus series (DESIGN.md §2), read from the last snapshot."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from planner.sizing import CONSTRAINTS
from planner.snapshot import Snapshot


class PlannerCollector(Collector):
    """Yields the planner series of the current snapshot (nothing when there is none)."""

    def __init__(self, snapshot: Callable[[], Snapshot | None]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snapshot = self._snapshot()
        if snapshot is None:
            return
        sizing = snapshot.sizing
        needed = GaugeMetricFamily(
            "confscale_pool_servers_needed",
            "Servers the pool needs, per horizon",
            labels=["horizon"],
        )
        for horizon, value in sizing.servers_needed.items():
            if value is not None:
                needed.add_metric([horizon], value)
        yield needed
        yield GaugeMetricFamily(
            "confscale_pool_servers_online", "Servers up and reporting", value=sizing.servers_online
        )
        headroom = GaugeMetricFamily(
            "confscale_pool_headroom_ratio",
            "1 - demand / (target x capacity of online servers)",
            labels=["constraint"],
        )
        binding = GaugeMetricFamily(
            "confscale_pool_binding_constraint",
            "1 for the constraint that sets the server count",
            labels=["constraint"],
        )
        for constraint in CONSTRAINTS:
            value = sizing.headroom.get(constraint)
            if value is not None:
                headroom.add_metric([constraint], value)
            binding.add_metric(
                [constraint], 1.0 if constraint == sizing.binding_constraint else 0.0
            )
        yield headroom
        yield binding
        if sizing.time_to_saturation_seconds is not None:
            yield GaugeMetricFamily(
                "confscale_pool_time_to_saturation_seconds",
                "Seconds until the online servers are not enough",
                value=sizing.time_to_saturation_seconds,
            )
        pressure = GaugeMetricFamily(
            "confscale_node_pressure_ratio", "Placement pressure per node", labels=["node"]
        )
        weight = GaugeMetricFamily(
            "confscale_node_placement_weight",
            "Placement weight per node (0 = do not place)",
            labels=["node"],
        )
        for node in snapshot.placement.nodes:
            if node.pressure is not None:
                pressure.add_metric([node.node], node.pressure)
            weight.add_metric([node.node], node.weight)
        yield pressure
        yield weight
        yield GaugeMetricFamily(
            "confscale_planner_snapshot_timestamp_seconds",
            "When the served result was computed",
            value=snapshot.generated_at,
        )
