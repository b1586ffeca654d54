"""The planner's Prometheus series (docs/design.md §2), read from the last snapshot."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from confscale.exporter.exposition import Family
from confscale.exporter.exposition import gauge as exposition_gauge
from confscale.planner.adapters.health import HealthView
from confscale.planner.adapters.http import RESULTS
from confscale.planner.placement import Placement
from confscale.planner.sizing import CONSTRAINTS
from confscale.planner.snapshot import Snapshot
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# (labels of the unit, its snapshot, its placement, whether its node series are exported)
Unit = tuple[dict[str, str], Snapshot | None, Placement | None, bool]


class PlannerCollector(Collector):
    """Yields the planner series: pool series of each snapshot, node series of placements.

    Either may be missing (no history yet, no current data yet); then its series are.
    """

    def __init__(
        self,
        snapshot: Callable[[], Snapshot | None] | None = None,
        placement: Callable[[], Placement | None] | None = None,
        *,
        units: Callable[[], Sequence[Unit]] | None = None,
        extra: Callable[[], Iterator[Metric]] | None = None,
    ) -> None:
        if units is None:
            units = lambda: [  # noqa: E731 - one unnamed pool
                ({}, snapshot() if snapshot else None, placement() if placement else None, True)
            ]
        self._units = units
        self._extra = extra

    @classmethod
    def of(cls, planners, extra: Callable[[], Iterator[Metric]] | None = None) -> PlannerCollector:
        """Series of every unit of a :class:`~planner.pools.PoolPlanners`."""

        def units() -> list[Unit]:
            return [
                (scope.labels(), service.snapshot(), service.placement(), scope.tag is None)
                for scope, service in planners.units()
            ]

        return cls(units=units, extra=extra)

    def collect(self) -> Iterator[Metric]:
        families = _Families()
        for labels, snapshot, placement, with_nodes in self._units():
            if snapshot is not None:
                families.pool(labels, snapshot)
            if placement is not None:
                families.nodes(labels, placement, with_nodes)
        yield from families.all()
        if self._extra is not None:
            yield from self._extra()


class _Families:
    """The planner's families, filled unit by unit (labels differ per unit)."""

    def __init__(self) -> None:
        def gauge(name: str, text: str) -> Family:
            # the exposition's own family type: label sets differ per unit (pool, tag)
            return exposition_gauge(name, text)

        self.needed = gauge("confscale_pool_servers_needed", "Servers the pool needs, per horizon")
        self.online = gauge("confscale_pool_servers_online", "Servers up and reporting")
        # Jitsi bridges apart (planner/jitsi.py): the BBB family above stays what the
        # alerts read, and a max over it never mixes the two kinds of node
        self.jitsi_needed = gauge(
            "confscale_pool_jitsi_servers_needed",
            "Jitsi bridges the pool needs, per horizon (binding constraint jitsi_stress)",
        )
        self.jitsi_online = gauge(
            "confscale_pool_jitsi_servers_online", "Jitsi bridges up and reporting"
        )
        self.headroom = gauge(
            "confscale_pool_headroom_ratio",
            "1 - demand now / (target x capacity of online servers), no largest-meeting "
            "or N+R term (the capacity JSON's utilisation_headroom)",
        )
        self.binding = gauge(
            "confscale_pool_binding_constraint", "1 for the constraint that sets the server count"
        )
        self.saturation = gauge(
            "confscale_pool_time_to_saturation_seconds",
            "Seconds until the online servers are not enough",
        )
        self.snapshot_ts = gauge(
            "confscale_planner_snapshot_timestamp_seconds", "When the served sizing was computed"
        )
        self.pressure = gauge("confscale_node_pressure_ratio", "Placement pressure per node")
        self.weight = gauge(
            "confscale_node_placement_weight", "Placement weight per node (0 = do not place)"
        )
        self.placement_ts = gauge(
            "confscale_planner_placement_timestamp_seconds",
            "When the served placement was computed",
        )

    def pool(self, labels: dict[str, str], snapshot: Snapshot) -> None:
        sizing = snapshot.sizing
        for horizon, servers in sizing.servers_needed.items():
            if servers is not None:
                self.needed.add({**labels, "horizon": horizon}, servers)
        self.online.add(labels, sizing.servers_online)
        if sizing.jitsi is not None:
            jitsi_needed = sizing.jitsi["servers_needed"]
            assert isinstance(jitsi_needed, dict)
            for horizon, servers in jitsi_needed.items():
                if servers is not None:
                    self.jitsi_needed.add({**labels, "horizon": horizon}, servers)
            self.jitsi_online.add(labels, float(sizing.jitsi["servers_online"]))  # type: ignore[arg-type]
        for constraint in CONSTRAINTS:
            value = sizing.utilisation_headroom.get(constraint)
            if value is not None:
                self.headroom.add({**labels, "constraint": constraint}, value)
            chosen = 1.0 if constraint == sizing.binding_constraint else 0.0
            self.binding.add({**labels, "constraint": constraint}, chosen)
        if sizing.time_to_saturation_seconds is not None:
            self.saturation.add(labels, sizing.time_to_saturation_seconds)
        self.snapshot_ts.add(labels, snapshot.generated_at)

    def nodes(self, labels: dict[str, str], placement: Placement, with_nodes: bool) -> None:
        if with_nodes:
            for node in placement.nodes:
                node_labels = {**labels, "node": node.node}
                if node.pressure is not None:
                    self.pressure.add(node_labels, node.pressure)
                self.weight.add(node_labels, node.weight)
        self.placement_ts.add(labels, placement.generated_at)

    def all(self) -> list[Metric]:
        families = [
            self.needed,
            self.online,
            self.jitsi_needed,
            self.jitsi_online,
            self.headroom,
            self.binding,
            self.saturation,
            self.snapshot_ts,
            self.pressure,
            self.weight,
            self.placement_ts,
        ]
        return [f for f in families if f.samples]


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
    With several pools each series carries the unit's ``pool`` / ``tag`` (see :meth:`of`).
    """

    def __init__(
        self,
        ages: Callable[[], dict[str, tuple[float, bool, bool]]] | None = None,
        *,
        units: Callable[[], Sequence[tuple[dict[str, str], dict]]] | None = None,
    ) -> None:
        if units is None:
            units = lambda: [({}, ages() if ages else {})]  # noqa: E731 - one unnamed pool
        self._units = units

    @classmethod
    def of(cls, planners) -> AnswerCollector:
        """The answers of every unit of a :class:`~planner.pools.PoolPlanners`."""
        return cls(
            units=lambda: [(s.labels(), service.answer_ages()) for s, service in planners.units()]
        )

    def collect(self) -> Iterator[Metric]:
        age = exposition_gauge(
            "confscale_planner_answer_age_seconds",
            "Seconds since the served answer was computed (or saved, when restored)",
        )
        stale = exposition_gauge(
            "confscale_planner_answer_stale",
            "1 when the served answer is older than its --*.max-age (served marked stale)",
        )
        restored = exposition_gauge(
            "confscale_planner_answer_restored",
            "1 while the answer is the one saved in --state.file by an earlier run",
        )
        for labels, ages in self._units():
            for answer, (seconds, is_stale, is_restored) in sorted(ages.items()):
                keys = {**labels, "answer": answer}
                age.add(keys, seconds)
                stale.add(keys, 1.0 if is_stale else 0.0)
                restored.add(keys, 1.0 if is_restored else 0.0)
        yield age
        yield stale
        yield restored


class MaintenanceCollector(Collector):
    """``confscale_node_maintenance{node,pool} 1`` per node in maintenance (read per scrape).

    Alertmanager inhibits the node's alerts on the alert this series raises
    (``ConfscaleNodeInMaintenance``, alerts/).
    """

    def __init__(
        self, entries: Callable[[], dict], pools: Callable[[], dict[str, str]] | None = None
    ) -> None:
        self._entries = entries
        self._pools = pools or dict

    def collect(self) -> Iterator[Metric]:
        family = exposition_gauge(
            "confscale_node_maintenance",
            "1 while an operator has the node in maintenance (out of placement and capacity)",
        )
        entries = self._entries()
        pools = self._pools() if entries else {}
        for node, entry in sorted(entries.items()):
            pool = entry.pool or pools.get(node)
            family.add({"node": node, **({"pool": pool} if pool else {})}, 1.0)
        yield family
