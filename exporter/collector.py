"""Metric families of docs/design.md §2 from one snapshot (pure: snapshot in, families out)."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterator
from importlib import metadata
from types import MappingProxyType

from confscale.exporter.bbb import BbbFigures
from confscale.exporter.config import PoolConfig
from confscale.exporter.contract import BBB_GAUGES
from confscale.exporter.host import HostFigures
from confscale.exporter.jitsi import JitsiFigures
from confscale.exporter.poller import Snapshot
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

_JITSI_HELP = MappingProxyType(
    {
        "conferences": "Conferences on the bridge.",
        "participants": "Participants on the bridge.",
        "largest_conference": "Participants of the largest conference.",
        "endpoints_sending_video": "Endpoints sending video.",
        "stress_level": "The bridge's own stress level (0-1, overload from about 0.8).",
        "bit_rate_upload": "Upload bit rate in kbit/s as the JVB reports it.",
        "bit_rate_download": "Download bit rate in kbit/s as the JVB reports it.",
    }
)


def build_version() -> str:
    try:
        return metadata.version("confscale")
    except metadata.PackageNotFoundError:
        return "unknown"


class SnapshotCollector(Collector):
    """Yields the families of whatever snapshot ``source`` returns at collect time."""

    def __init__(
        self,
        source: Callable[[], Snapshot | None],
        *,
        self_metrics: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._source = source
        self._self_metrics = self_metrics
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        snapshot = self._source()
        if snapshot is not None:
            yield from snapshot_families(snapshot, stale=snapshot.is_stale(self._clock()))
            if self._self_metrics:
                yield from exporter_families(snapshot)
        if self._self_metrics:
            info = GaugeMetricFamily(
                "confscale_exporter_build_info",
                "Version of the exporter; the value is always 1.",
                labels=["version", "python"],
            )
            info.add_metric([build_version(), platform.python_version()], 1)
            yield info


def node_label_sets(config: PoolConfig) -> dict[str, dict[str, str]]:
    """Per node its base labels: ``node``, and ``pool`` when the node or the file names one."""
    labels: dict[str, dict[str, str]] = {}
    for node in config.nodes:
        pool = node.pool or config.pool
        labels[node.name] = {"node": node.name, "pool": pool} if pool else {"node": node.name}
    return labels


def snapshot_families(snapshot: Snapshot, *, stale: bool = False) -> list[Metric]:
    """Every per-node family; a stale snapshot keeps only up=0, errors and timestamps."""
    base = ["node", "pool"]  # documentation only: a node without a pool has no pool label
    # One label dict per node, shared by that node's samples (they are never mutated).
    node_labels = node_label_sets(snapshot.config)

    def labels(node: str, **extra: str) -> dict[str, str]:
        return {**node_labels.get(node, {"node": node}), **extra}

    up = GaugeMetricFamily(
        "confscale_node_up",
        "1 when the last poll of the source succeeded.",
        labels=[*base, "source"],
    )
    duration = GaugeMetricFamily(
        "confscale_node_poll_duration_seconds",
        "Duration of the last poll of the source.",
        labels=[*base, "source"],
    )
    errors = CounterMetricFamily(
        "confscale_node_poll_errors",
        "Failed polls by reason (see docs/exporter.md).",
        labels=[*base, "source", "reason"],
    )
    last = GaugeMetricFamily(
        "confscale_node_last_success_timestamp_seconds",
        "Unix time of the last successful poll of the source.",
        labels=[*base, "source"],
    )
    link = GaugeMetricFamily(
        "confscale_node_link_capacity_bytes_per_second",
        "Configured uplink capacity in bytes per second.",
        labels=base,
    )
    # Tags ride on one info series per node, not on every series: joins stay cheap
    # (``* on (node) group_left (tags) confscale_node_info``) and a retag is one series.
    info = GaugeMetricFamily(
        "confscale_node_info",
        "Per node its pool and balancer tags (tags=',a,b,'); the value is always 1.",
        labels=["node", "pool", "tags"],
    )
    for node in snapshot.config.nodes:
        _put(link, node_labels[node.name], node.link_capacity_bytes_per_second)
        _put(info, {**node_labels[node.name], "tags": node.tags_label()}, 1)
    for (node, source, reason), count in sorted(snapshot.errors.items()):
        _put(errors, labels(node, source=source, reason=reason), count)
    for (node, source), when in sorted(snapshot.last_success.items()):
        _put(last, labels(node, source=source), when)
    families: list[Metric] = [up, duration, errors, last, link, info]
    data = _DataFamilies(base)
    for result in snapshot.results:
        source_labels = labels(result.node, source=result.source)
        _put(up, source_labels, 0 if stale or not result.ok else 1)
        _put(duration, source_labels, result.duration)
        if stale or result.figures is None:
            continue  # absent, not zero
        data.add(result.figures, labels(result.node))
    if not stale:
        families.extend(data.families())
    return families


def _put(family: Metric, labels: dict[str, str], value: float) -> None:
    """``add_metric`` without copying the label dict (thousands of samples per cycle)."""
    name = f"{family.name}_total" if family.type == "counter" else family.name
    family.samples.append(Sample(name, labels, value, None))


class _DataFamilies:
    """The figure families, filled node by node."""

    def __init__(self, base: list[str]) -> None:
        self._bbb = [
            (key, GaugeMetricFamily(name, text, labels=base)) for key, name, text in BBB_GAUGES
        ]
        self._clients = GaugeMetricFamily(
            "bbb_meetings_participant_clients", "Attendees by client type.", labels=[*base, "type"]
        )
        self._jitsi = {
            key: GaugeMetricFamily(f"jitsi_{key}", text, labels=base)
            for key, text in _JITSI_HELP.items()
        }
        self._cpu = CounterMetricFamily(
            "confscale_node_cpu_seconds",
            "CPU seconds summed over CPUs, by mode.",
            labels=[*base, "mode"],
        )
        self._cpus = GaugeMetricFamily("confscale_node_cpu_count", "Number of CPUs.", labels=base)
        self._tx = CounterMetricFamily(
            "confscale_node_network_transmit_bytes",
            "Bytes sent on the uplink interface(s).",
            labels=base,
        )
        self._rx = CounterMetricFamily(
            "confscale_node_network_receive_bytes",
            "Bytes received on the uplink interface(s).",
            labels=base,
        )

    def add(self, figures: BbbFigures | HostFigures | JitsiFigures, labels: dict[str, str]) -> None:
        if isinstance(figures, BbbFigures):
            for key, family in self._bbb:
                _put(family, labels, getattr(figures, key))
            for client, count in figures.clients:
                _put(self._clients, {**labels, "type": client}, count)
        elif isinstance(figures, JitsiFigures):
            for key, value in figures.values:
                _put(self._jitsi[key], labels, value)
        else:
            for mode, seconds in figures.cpu_seconds:
                _put(self._cpu, {**labels, "mode": mode}, seconds)
            _put(self._cpus, labels, figures.cpu_count)
            _put(self._tx, labels, figures.transmit_bytes)
            _put(self._rx, labels, figures.receive_bytes)

    def families(self) -> list[Metric]:
        return [
            *(f for _, f in self._bbb),
            self._clients,
            *self._jitsi.values(),
            self._cpu,
            self._cpus,
            self._tx,
            self._rx,
        ]


def exporter_families(snapshot: Snapshot) -> list[Metric]:
    """The exporter's own figures about the last cycle."""
    cycle = GaugeMetricFamily(
        "confscale_exporter_cycle_duration_seconds", "Wall time of the last complete poll cycle."
    )
    cycle.add_metric([], snapshot.duration)
    finished = GaugeMetricFamily(
        "confscale_exporter_last_cycle_timestamp_seconds",
        "Unix time the last complete poll cycle ended.",
    )
    finished.add_metric([], snapshot.finished_at)
    nodes = GaugeMetricFamily(
        "confscale_exporter_nodes",
        "Nodes polled in the last cycle, and of those with every source up.",
        labels=["state"],
    )
    polled = {r.node for r in snapshot.results}
    down = {r.node for r in snapshot.results if not r.ok}
    nodes.add_metric(["polled"], len(polled))
    nodes.add_metric(["up"], len(polled - down))
    return [cycle, finished, nodes]
