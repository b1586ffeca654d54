"""The cluster proxy (``proxy: {stub_status: URL}``): nginx's stub_status page as figures.

BBB's cluster-proxy setup serves every node's HTML5 client through one nginx, a single
point of failure. ngx_http_stub_status_module answers (nginx.org/en/docs/http/
ngx_http_stub_status_module.html)::

    Active connections: 291
    server accepts handled requests
     16630948 16630948 31070465
    Reading: 6 Writing: 179 Waiting: 106

``accepts`` above ``handled`` means nginx dropped connections (worker_connections or a
resource limit): the proxy is refusing clients. Its uplink comes from the same node's
``host:`` source (node_exporter), like any node's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from confscale.exporter.config_values import (
    ConfigValueError,
    ParseContext,
    TlsOptions,
    parse_tls,
    parse_url,
    reject_unknown,
)
from confscale.exporter.contract import (
    PROXY_ACCEPTED,
    PROXY_CONNECTIONS,
    PROXY_HANDLED,
    PROXY_REQUESTS,
)
from confscale.exporter.exposition import Family, counter, gauge
from confscale.exporter.fetch import HttpClient, PollError
from confscale.exporter.source import SourceKind

_KEYS = frozenset({"stub_status", "tls"})
_ACTIVE = re.compile(rb"Active connections:\s*(\d+)")
_TOTALS = re.compile(rb"server accepts handled requests\s+(\d+)\s+(\d+)\s+(\d+)")
_STATES = re.compile(rb"Reading:\s*(\d+)\s+Writing:\s*(\d+)\s+Waiting:\s*(\d+)")
_MAX_PAGE = 4096  # the page is about 100 bytes


@dataclass(frozen=True)
class ProxySource:
    stub_status: str
    tls: TlsOptions | None = None


@dataclass(frozen=True)
class ProxyFigures:
    active: int
    reading: int
    writing: int
    waiting: int
    accepted: int
    handled: int
    requests: int


def parse_proxy(raw: object, where: str, context: ParseContext) -> ProxySource:
    if not isinstance(raw, dict):
        raise ConfigValueError(f"{where}: expected a mapping with stub_status: URL")
    reject_unknown(raw, _KEYS, where)
    url = parse_url(raw.get("stub_status"), f"{where}.stub_status")
    return ProxySource(url, parse_tls(raw.get("tls"), url, f"{where}.tls", context.base_dir))


def parse_stub_status(page: bytes) -> ProxyFigures:
    """Figures of a stub_status page; PollError('parse') when it is not one."""
    active, totals, states = _ACTIVE.search(page), _TOTALS.search(page), _STATES.search(page)
    if active is None or totals is None or states is None:
        raise PollError("parse", "not an nginx stub_status page")
    return ProxyFigures(
        active=int(active.group(1)),
        reading=int(states.group(1)),
        writing=int(states.group(2)),
        waiting=int(states.group(3)),
        accepted=int(totals.group(1)),
        handled=int(totals.group(2)),
        requests=int(totals.group(3)),
    )


def poll_proxy(
    client: HttpClient, source: ProxySource, *, timeout: float, max_bytes: int
) -> ProxyFigures:
    chunks: list[bytes] = []
    client.fetch(
        source.stub_status,
        timeout=timeout,
        max_bytes=min(max_bytes, _MAX_PAGE),
        sink=chunks.append,
        tls=source.tls,
    )
    return parse_stub_status(b"".join(chunks))


class ProxyFamilies:
    def __init__(self, base: Sequence[str]) -> None:
        self._connections = gauge(
            PROXY_CONNECTIONS,
            "Client connections of the cluster proxy by state (active = all open).",
            [*base, "state"],
        )
        self._accepted = counter(PROXY_ACCEPTED, "Client connections accepted.", base)
        self._handled = counter(
            PROXY_HANDLED, "Client connections handled (below accepted: dropped).", base
        )
        self._requests = counter(PROXY_REQUESTS, "Client requests served.", base)

    def add(self, figures: ProxyFigures, labels: dict[str, str]) -> None:
        for state in ("active", "reading", "writing", "waiting"):
            self._connections.add({**labels, "state": state}, getattr(figures, state))
        self._accepted.add(labels, figures.accepted)
        self._handled.add(labels, figures.handled)
        self._requests.add(labels, figures.requests)

    def families(self) -> list[Family]:
        return [self._connections, self._accepted, self._handled, self._requests]


SOURCE = SourceKind(key="proxy", parse=parse_proxy, poll=poll_proxy, families=ProxyFamilies)
