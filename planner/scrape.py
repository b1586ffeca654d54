"""Current data without Prometheus: scrape the exporter's ``/metrics`` directly.

Gauges are read as they are; CPU and link utilisation are rates, so they need two
scrapes: the reader keeps the previous scrape's counters (in the instance, not the
module) and the first scrape gives pressure from participants and Jitsi stress only.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from confscale.exporter import contract as c
from confscale.exporter.contract import BBB_METRICS, JITSI_METRICS, READING_FIELDS
from confscale.exporter.fetch import HttpClient, PollError
from confscale.planner.placement import NodeReading
from confscale.planner.prometheus import redact
from confscale.planner.scope import INFO, Scope
from prometheus_client.parser import text_string_to_metric_families

# exported gauge -> the placement reading it fills (BBB and Jitsi names of one figure)
GAUGES = {
    **{BBB_METRICS[bbb]: reading for reading, bbb, _ in READING_FIELDS},
    **{JITSI_METRICS[jvb]: reading for reading, _, jvb in READING_FIELDS},
    JITSI_METRICS["stress_level"]: "jitsi_stress",
    c.LINK_CAPACITY.name: "link",
}
MAX_BODY = 64 * 1024 * 1024


@functools.cache
def _shared_http() -> HttpClient:
    return HttpClient(connections_per_host=2, hosts=4)


class ScrapeError(RuntimeError):
    """The exporter could not be scraped or parsed (names the URL)."""


def parse_exposition(
    text: str, membership: dict[str, tuple[str, str]] | None = None
) -> dict[str, dict[str, float]]:
    """Per node: gauges, ``up`` (min over sources), ``ts`` and counter sums.

    ``membership``, when given, is filled with each node's (pool, tags label).
    """
    nodes: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            node = sample.labels.get("node")
            if membership is not None and node:
                pool, tags = membership.get(node, ("", ""))
                membership[node] = (
                    sample.labels.get("pool", pool),
                    sample.labels.get("tags", tags) if sample.name == INFO else tags,
                )
            if not node or not math.isfinite(sample.value):
                continue
            values = nodes.setdefault(node, {})
            name = sample.name
            if name in GAUGES:
                values[GAUGES[name]] = sample.value
            elif name == c.NODE_UP.sample:
                if sample.labels.get("source") in c.LOAD_SOURCES:
                    values["up"] = min(values.get("up", 1.0), sample.value)
            elif name == c.LAST_SUCCESS.sample:
                if sample.labels.get("source") in c.LOAD_SOURCES:
                    values["ts"] = min(values.get("ts", math.inf), sample.value)
            elif name == c.CPU_SECONDS.sample:
                key = "cpu_idle" if sample.labels.get("mode") == "idle" else "cpu_busy"
                values[key] = values.get(key, 0.0) + sample.value
            elif name == c.TRANSMIT_BYTES.sample:
                values["tx"] = values.get("tx", 0.0) + sample.value
            elif name == c.RECEIVE_BYTES.sample:
                values["rx"] = values.get("rx", 0.0) + sample.value
            elif (
                name == c.BBB_RECORDINGS and sample.labels.get("state") == "processing"
            ) or name == c.BBB_RECORDINGS_UNPROCESSED:  # processing, or waiting for it
                values["recordings_processing"] = values.get("recordings_processing", 0.0) + (
                    sample.value
                )
            if family.name == "jitsi_stress_level" or name.startswith("jitsi_"):
                values["jitsi"] = 1.0
    return nodes


@dataclass
class ExporterReader:
    """Callable returning current :class:`NodeReading` s from an exporter's /metrics."""

    url: str
    timeout: float = 5.0
    clock: Callable[[], float] = time.time
    max_bytes: int = MAX_BODY
    http: HttpClient | None = field(default=None, repr=False)
    scope: Scope | None = None  # only this pool's (and tag's) nodes; None: every node
    _previous: tuple[float, dict[str, dict[str, float]]] | None = field(default=None, repr=False)

    def __call__(self) -> list[NodeReading]:
        # one total deadline and the cap while reading, not after: a 3 GB or dripping
        # /metrics page costs the cap and the timeout, never the whole answer
        try:
            _, body = (self.http or _shared_http()).get(
                self.url, timeout=self.timeout, max_bytes=self.max_bytes
            )
        except PollError as exc:
            raise ScrapeError(f"exporter {redact(self.url)}: {exc}") from None
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise ScrapeError(f"exporter {redact(self.url)}: answer is not UTF-8 text") from None
        membership: dict[str, tuple[str, str]] = {}
        try:
            nodes = parse_exposition(text, membership)
        except ValueError as exc:
            raise ScrapeError(
                f"exporter {redact(self.url)}: not Prometheus text format: {exc}"
            ) from exc
        if self.scope is not None:
            nodes = {
                n: v
                for n, v in nodes.items()
                if _in_scope(self.scope, *membership.get(n, ("", "")))
            }
        now = self.clock()
        previous = self._previous
        self._previous = (now, nodes)
        return [
            self._reading(node, values, now, previous) for node, values in sorted(nodes.items())
        ]

    @staticmethod
    def _reading(
        node: str,
        values: dict[str, float],
        now: float,
        previous: tuple[float, dict[str, dict[str, float]]] | None,
    ) -> NodeReading:
        cpu = tx_ratio = rx_ratio = None
        if previous is not None and node in previous[1]:
            before = previous[1][node]
            dt = now - previous[0]

            def delta(key: str) -> float | None:
                if dt <= 0 or key not in values or key not in before:
                    return None
                change = values[key] - before[key]
                return change if change >= 0 else None  # counter reset

            busy, idle = delta("cpu_busy"), delta("cpu_idle")
            if busy is not None and idle is not None and busy + idle > 0:
                cpu = busy / (busy + idle)
            link = values.get("link")
            for key, assign in (("tx", "tx"), ("rx", "rx")):
                change = delta(key)
                if change is not None and link:
                    if assign == "tx":
                        tx_ratio = change / dt / link
                    else:
                        rx_ratio = change / dt / link
        return NodeReading(
            node=node,
            kind="jitsi" if "jitsi" in values else "bbb",
            up=values.get("up", 0.0) == 1.0,
            timestamp=values.get("ts") if math.isfinite(values.get("ts", math.inf)) else None,
            meetings=values.get("meetings"),
            participants=values.get("participants"),
            participants_max=values.get("participants_max"),
            webcams=values.get("webcams"),
            cpu_utilisation=cpu,
            transmit_utilisation=tx_ratio,
            receive_utilisation=rx_ratio,
            jitsi_stress=values.get("jitsi_stress"),
            recordings_processing=values.get("recordings_processing"),
        )


def _in_scope(scope: Scope, pool: str, tags: str) -> bool:
    if scope.pool is not None and pool != scope.pool:
        return False
    return scope.tag is None or f",{scope.tag}," in tags
