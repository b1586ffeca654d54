"""Metric families of docs/design.md §2 from one snapshot (pure: snapshot in, families out)."""

from __future__ import annotations

import functools
import platform
import time
from collections.abc import Callable, Iterator

from confscale.exporter import contract as c
from confscale.exporter.exposition import Labels, Writer, counter, gauge, with_label
from confscale.exporter.poller import BASE_LABELS, Snapshot, node_label_sets, source_text
from confscale.exporter.registry import SOURCES
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from confscale import __version__


def build_version() -> str:
    """The installed version: ``confscale.__version__``, the one ``--version`` prints (read
    once at import: importlib.metadata parses the package's files, about 4 ms)."""
    return __version__


@functools.cache
def python_version() -> str:
    return platform.python_version()  # parses sys.version on every call


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
            yield build_info()


def build_info() -> Metric:
    info = GaugeMetricFamily(
        "confscale_exporter_build_info",
        "Version of the exporter; the value is always 1.",
        labels=["version", "python"],
    )
    info.add_metric([build_version(), python_version()], 1)
    return info


def snapshot_families(snapshot: Snapshot, *, stale: bool = False) -> list[Metric]:
    """Every per-node family; a stale snapshot keeps only up=0, errors and timestamps."""
    families, started = _poll_families(snapshot, stale=stale)
    if stale:
        return families
    node_labels = node_label_sets(snapshot.config)
    data = {kind.key: kind.families(BASE_LABELS) for kind in SOURCES}
    for result in snapshot.results:
        if result.figures is not None:
            data[result.source].add(result.figures, _labels_of(node_labels, result.node))
    for family_set in data.values():
        families.extend(family_set.families())
    return [*families, *started]


def snapshot_text(snapshot: Snapshot, *, stale: bool = False) -> str:
    """``render(snapshot_families(snapshot, stale=stale))``, the same text, with each
    result's source families taken from the text its poll left (``SourceResult.text``,
    written in the worker thread when the poll completed; written now when missing or
    written with other labels, e.g. before a reload changed the node's pool)."""
    writer = Writer()
    families, started = _poll_families(snapshot, stale=stale)
    out = [writer.header(f) + writer.lines(f) for f in families]
    if not stale:
        node_labels = node_label_sets(snapshot.config)
        by_source: dict[str, list[tuple[str, ...]]] = {kind.key: [] for kind in SOURCES}
        for result in snapshot.results:
            if result.figures is None:
                continue
            labels = _labels_of(node_labels, result.node)
            text = result.text
            if text is None or text[0] != labels.text:
                text = source_text(result.source, result.figures, labels, writer)
            by_source[result.source].append(text[1:])
        for kind in SOURCES:
            for index, family in enumerate(kind.families(BASE_LABELS).families()):
                out.append(writer.header(family))
                out.extend(text[index] for text in by_source[kind.key])
        out.extend(writer.header(f) + writer.lines(f) for f in started)
    return "".join(out)


def _labels_of(node_labels: dict[str, Labels], node: str) -> Labels:
    found = node_labels.get(node)
    if found is None:
        found = node_labels[node] = Labels({"node": node})
    return found


def _poll_families(snapshot: Snapshot, *, stale: bool) -> tuple[list[Metric], list[Metric]]:
    """The poll-health families of every node, and the meetings-started counters."""
    base = BASE_LABELS
    # One label set per node (and per node and source), shared by its samples and
    # rendered once (they are never mutated).
    node_labels = node_label_sets(snapshot.config)
    by_source: dict[tuple[str, str], Labels] = {}

    def labels(node: str) -> Labels:
        return _labels_of(node_labels, node)

    def source_labels(node: str, source: str) -> Labels:
        found = by_source.get((node, source))
        if found is None:
            found = by_source[(node, source)] = with_label(labels(node), "source", source)
        return found

    up = gauge(c.NODE_UP.name, c.NODE_UP.help, [*base, "source"])
    duration = gauge(c.POLL_DURATION.name, c.POLL_DURATION.help, [*base, "source"])
    errors = counter(c.POLL_ERRORS.name, c.POLL_ERRORS.help, [*base, "source", "reason"])
    last = gauge(c.LAST_SUCCESS.name, c.LAST_SUCCESS.help, [*base, "source"])
    link = gauge(c.LINK_CAPACITY.name, c.LINK_CAPACITY.help, base)
    # Tags ride on one info series per node, not on every series: joins stay cheap
    # (``* on (node) group_left (tags) confscale_node_info``) and a retag is one series.
    info = gauge(c.NODE_INFO.name, c.NODE_INFO.help, ["node", "pool", "tags"])
    for node in snapshot.config.nodes:
        link.add(node_labels[node.name], node.link_capacity_bytes_per_second)
        info.add(with_label(node_labels[node.name], "tags", node.tags_label()), 1)
    for (name, source, reason), count in sorted(snapshot.errors.items()):
        errors.add(with_label(source_labels(name, source), "reason", reason), count)
    for (name, source), when in sorted(snapshot.last_success.items()):
        last.add(source_labels(name, source), when)
    # meetings seen starting: state across cycles (poller.PollState), shown with the figures
    started = [
        counter(spec.name, spec.help, base) for spec in (c.MEETINGS_STARTED, c.BREAKOUTS_STARTED)
    ]
    for result in snapshot.results:
        polled = source_labels(result.node, result.source)
        up.add(polled, 0 if stale or not result.ok else 1)
        duration.add(polled, result.duration)
        if stale or result.figures is None:
            continue  # absent, not zero
        if result.source == "bbb" and result.node in snapshot.started:
            for family, count in zip(started, snapshot.started[result.node], strict=True):
                family.add(labels(result.node), count)
    started_families: list[Metric] = list(started)
    return [up, duration, errors, last, link, info], started_families


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
