"""HTTP routes: /metrics, /probe, /-/healthy, /-/reload. Routing only, no logic (the
server and its limits are exporter/server.py)."""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import parse_qs

from confscale.exporter.collector import SnapshotCollector
from confscale.exporter.config import ConfigError
from confscale.exporter.exposition import CONTENT_TYPE, render
from confscale.exporter.page import MetricsPage
from confscale.exporter.poller import Poller
from confscale.exporter.server import BoundedWSGIServer, make_bounded_server
from prometheus_client.registry import Collector

log = logging.getLogger("confscale.exporter")
StartResponse = Callable[..., Any]

_INDEX = b"""<html><head><title>confscale exporter</title></head><body>
<h1>confscale exporter</h1><ul><li><a href="metrics">/metrics</a></li>
<li>/probe?node=NAME</li><li><a href="-/healthy">/-/healthy</a></li></ul></body></html>"""


# path -> the methods it answers (HEAD: the GET head without its body)
_ROUTES = {
    "/metrics": ("GET", "HEAD"),
    "/probe": ("GET", "HEAD"),
    "/-/healthy": ("GET", "HEAD"),
    "/-/reload": ("POST",),
    "/": ("GET", "HEAD"),
}


class ExporterApp:
    """The WSGI application; ``reload`` is whatever re-reads the configuration, and
    ``collectors`` add families rendered fresh on every /metrics scrape."""

    def __init__(
        self,
        poller: Poller,
        reload: Callable[[], object],
        *,
        collectors: Sequence[Collector] = (),
    ) -> None:
        self._poller = poller
        self._reload = reload
        self._page = MetricsPage(poller.snapshot, extra=collectors)
        poller.on_snapshot(self._page.refresh)

    def __call__(self, environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        method = environ.get("REQUEST_METHOD", "GET")
        allowed = _ROUTES.get(path)
        if allowed is None:
            return _text(start, "404 Not Found", "not found\n")
        if method not in allowed:
            return _text(
                start,
                "405 Method Not Allowed",
                f"use {' or '.join(allowed)}\n",
                [("Allow", ", ".join(allowed))],
            )
        body = self._route(path, environ, start)
        return [] if method == "HEAD" else body

    def _route(self, path: str, environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        if path == "/metrics":
            return _body(start, self._page.body())
        if path == "/probe":
            return self._probe(environ, start)
        if path == "/-/healthy":
            return _text(start, "200 OK", "OK\n")
        if path == "/-/reload":
            try:
                self._reload()
            except ConfigError as exc:
                return _text(start, "500 Internal Server Error", f"reload failed: {exc}\n")
            return _text(start, "200 OK", "reloaded\n")
        start(
            "200 OK",
            [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(_INDEX)))],
        )
        return [_INDEX]

    def _probe(self, environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        names = parse_qs(environ.get("QUERY_STRING", "")).get("node", [])
        if len(names) != 1:
            return _text(start, "400 Bad Request", "expected exactly one ?node=NAME\n")
        config = self._poller.config
        node = config.node(names[0])
        if node is None:
            shown = html.escape(names[0][:64])
            return _text(start, "404 Not Found", f"node {shown!r} is not in {config.path}\n")
        snapshot = self._poller.probe(node)
        collector = SnapshotCollector(lambda: snapshot, self_metrics=False)
        return _body(start, render(collector.collect()))


def _body(start: StartResponse, body: bytes) -> Iterable[bytes]:
    # Always the 0.0.4 text format: every Prometheus reads it and it renders fast.
    start("200 OK", [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(body)))])
    return [body]


def _text(
    start: StartResponse, status: str, text: str, extra: Sequence[tuple[str, str]] = ()
) -> Iterable[bytes]:
    body = text.encode("utf-8")
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    start(status, [*headers, *extra])
    return [body]


def serve(app: ExporterApp, host: str, port: int) -> BoundedWSGIServer:
    """The bounded HTTP server (exporter/server.py) for ``app`` on host:port, not yet serving."""
    return make_bounded_server(host, port, app)
