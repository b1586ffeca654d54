"""The planner's Prometheus series (docs/design.md §2), read from the last snapshot."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from confscale.planner.adapters.health import HealthView
from confscale.planner.adapters.http import RESULTS
from confscale.planner.placement import Placement
from confscale.planner.sizing import CONSTRAINTS
from confscale.planner.snapshot import Snapshot
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class PlannerCollector(Collector):
    """Yields the planner series: pool series of the snapshot, node series of the placement.

    Either may be missing (no history yet, no current data yet); then its series are.
    """

    def __init__(
        self, snapshot: Callable[[], Snapshot | None], placement: Callable[[], Placement | None]
    ) -> None:
        self._snapshot = snapshot
        self._placement = placement

    def collect(self) -> Iterator[Metric]:
        snapshot = self._snapshot()
        if snapshot is not None:
            yield from self._pool(snapshot)
        placement = self._placement()
        if placement is not None:
            yield from self._nodes(placement)

    @staticmethod
    def _pool(snapshot: Snapshot) -> Iterator[Metric]:
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
            "1 - demand now / (target x capacity of online servers), no largest-meeting "
            "or N+R term (the capacity JSON's utilisation_headroom)",
            labels=["constraint"],
        )
        binding = GaugeMetricFamily(
            "confscale_pool_binding_constraint",
            "1 for the constraint that sets the server count",
            labels=["constraint"],
        )
        for constraint in CONSTRAINTS:
            value = sizing.utilisation_headroom.get(constraint)
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
        yield GaugeMetricFamily(
            "confscale_planner_snapshot_timestamp_seconds",
            "When the served sizing was computed",
            value=snapshot.generated_at,
        )

    @staticmethod
    def _nodes(placement: Placement) -> Iterator[Metric]:
        pressure = GaugeMetricFamily(
            "confscale_node_pressure_ratio", "Placement pressure per node", labels=["node"]
        )
        weight = GaugeMetricFamily(
            "confscale_node_placement_weight",
            "Placement weight per node (0 = do not place)",
            labels=["node"],
        )
        for node in placement.nodes:
            if node.pressure is not None:
                pressure.add_metric([node.node], node.pressure)
            weight.add_metric([node.node], node.weight)
        yield pressure
        yield weight
        yield GaugeMetricFamily(
            "confscale_planner_placement_timestamp_seconds",
            "When the served placement was computed",
            value=placement.generated_at,
        )


class AdapterCollector(Collector):
    """Yields the balancer adapters' health (planner/adapters/health.py), read per scrape."""

    def __init__(self, views: Callable[[], Sequence[HealthView]]) -> None:
        self._views = views

    def collect(self) -> Iterator[Metric]:
        views = self._views()
        if not views:
            return
        requests = CounterMetricFamily(
            "confscale_planner_adapter_requests",
            "Requests of each balancer adapter by result (b3lb: the load fetches it served)",
            labels=["adapter", "result"],
        )
        last = GaugeMetricFamily(
            "confscale_planner_adapter_last_success_timestamp_seconds",
            "When the adapter's last cycle went through",
            labels=["adapter"],
        )
        failing = GaugeMetricFamily(
            "confscale_planner_adapter_failing",
            "1 while the adapter's last cycle failed",
            labels=["adapter"],
        )
        actuating = GaugeMetricFamily(
            "confscale_planner_adapter_actuating",
            "1 when the adapter changes its balancer (--adapters.actuate), 0 in dry-run",
            labels=["adapter"],
        )
        held = GaugeMetricFamily(
            "confscale_planner_adapter_nodes_held_out",
            "Nodes the adapter holds out of its balancer now (cordoned, drained, load 10000)",
            labels=["adapter"],
        )
        for view in views:
            for result in RESULTS:
                requests.add_metric([view.adapter, result], view.requests.get(result, 0))
            if view.last_success is not None:
                last.add_metric([view.adapter], view.last_success)
            failing.add_metric([view.adapter], 1.0 if view.state == "failing" else 0.0)
            actuating.add_metric([view.adapter], 1.0 if view.actuating else 0.0)
            held.add_metric([view.adapter], len(view.held_out))
        yield from (requests, last, failing, actuating, held)


class AnswerCollector(Collector):
    """Age of each answer the API serves, and whether it is stale or a restored one.

    Changes on every scrape (the age grows), so it is never cached with the snapshot.
    """

    def __init__(self, ages: Callable[[], dict[str, tuple[float, bool, bool]]]) -> None:
        self._ages = ages

    def collect(self) -> Iterator[Metric]:
        ages = self._ages()
        age = GaugeMetricFamily(
            "confscale_planner_answer_age_seconds",
            "Seconds since the served answer was computed (or saved, when restored)",
            labels=["answer"],
        )
        stale = GaugeMetricFamily(
            "confscale_planner_answer_stale",
            "1 when the served answer is older than its --*.max-age (served marked stale)",
            labels=["answer"],
        )
        restored = GaugeMetricFamily(
            "confscale_planner_answer_restored",
            "1 while the answer is the one saved in --state.file by an earlier run",
            labels=["answer"],
        )
        for answer, (seconds, is_stale, is_restored) in sorted(ages.items()):
            age.add_metric([answer], seconds)
            stale.add_metric([answer], 1.0 if is_stale else 0.0)
            restored.add_metric([answer], 1.0 if is_restored else 0.0)
        yield age
        yield stale
        yield restored
