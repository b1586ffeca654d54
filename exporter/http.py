"""HTTP routes: /metrics, /probe, /-/healthy, /-/reload. Routing only, no logic."""

from __future__ import annotations

import html
import logging
import socket
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from confscale.exporter.collector import SnapshotCollector
from confscale.exporter.config import ConfigError
from confscale.exporter.exposition import CONTENT_TYPE, render
from confscale.exporter.page import MetricsPage
from confscale.exporter.poller import Poller

log = logging.getLogger("confscale.exporter")
StartResponse = Callable[..., Any]

_INDEX = b"""<html><head><title>confscale exporter</title></head><body>
<h1>confscale exporter</h1><ul><li><a href="metrics">/metrics</a></li>
<li>/probe?node=NAME</li><li><a href="-/healthy">/-/healthy</a></li></ul></body></html>"""


class ExporterApp:
    """The WSGI application; ``reload`` is whatever re-reads the configuration."""

    def __init__(self, poller: Poller, reload: Callable[[], None]) -> None:
        self._poller = poller
        self._reload = reload
        self._page = MetricsPage(poller.snapshot)
        poller.on_snapshot(self._page.refresh)

    def __call__(self, environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/metrics":
            return _body(start, self._page.body())
        if path == "/probe":
            return self._probe(environ, start)
        if path == "/-/healthy":
            return _text(start, "200 OK", "OK\n")
        if path == "/-/reload":
            if method != "POST":
                return _text(start, "405 Method Not Allowed", "use POST\n")
            try:
                self._reload()
            except ConfigError as exc:
                return _text(start, "500 Internal Server Error", f"reload failed: {exc}\n")
            return _text(start, "200 OK", "reloaded\n")
        if path == "/":
            start("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [_INDEX]
        return _text(start, "404 Not Found", "not found\n")

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


def _text(start: StartResponse, status: str, text: str) -> Iterable[bytes]:
    body = text.encode("utf-8")
    start(
        status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    )
    return [body]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _ThreadingServerV6(_ThreadingServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        # Request lines are not logged: a /probe query names nodes, nothing more is useful.
        return


def serve(app: ExporterApp, host: str, port: int) -> WSGIServer:
    """A threading HTTP server for ``app`` bound to host:port (not yet serving)."""
    server_class = _ThreadingServerV6 if ":" in host else _ThreadingServer
    return make_server(host, port, app, server_class=server_class, handler_class=_QuietHandler)
