"""The cluster proxy source: nginx stub_status parsed, polled over HTTP, configured."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler

import pytest
from confscale.exporter.config import ConfigValueError, parse_config
from confscale.exporter.exposition import render
from confscale.exporter.fetch import HttpClient, PollError
from confscale.exporter.proxy import ProxyFamilies, ProxySource, parse_stub_status, poll_proxy
from localhttp import serving
from test_exporter_support import parse_text, value

# The example of nginx.org's ngx_http_stub_status_module documentation, its spacing kept.
PAGE = (
    b"Active connections: 291 \n"
    b"server accepts handled requests\n"
    b" 16630948 16630940 31070465 \n"
    b"Reading: 6 Writing: 179 Waiting: 106 \n"
)


def test_stub_status_figures() -> None:
    figures = parse_stub_status(PAGE)
    assert (figures.active, figures.reading, figures.writing, figures.waiting) == (
        291,
        6,
        179,
        106,
    )
    assert (figures.accepted, figures.handled, figures.requests) == (16630948, 16630940, 31070465)


@pytest.mark.parametrize("page", [b"", b"<html>502 Bad Gateway</html>", PAGE[:40]])
def test_not_a_stub_status_page(page: bytes) -> None:
    with pytest.raises(PollError) as raised:
        parse_stub_status(page)
    assert raised.value.reason == "parse"


def test_polled_over_http_and_rendered() -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)

        def log_message(self, *args: object) -> None:
            return

    with serving(Handler) as server:
        source = ProxySource(f"{server.url}/nginx_status")
        figures = poll_proxy(HttpClient(), source, timeout=5, max_bytes=1 << 20)
    families = ProxyFamilies(["node"])
    families.add(figures, {"node": "proxy-01"})
    samples = parse_text(render(families.families()).decode())
    assert value(samples, "confscale_proxy_connections", node="proxy-01", state="writing") == 179
    assert value(samples, "confscale_proxy_connections_accepted_total", node="proxy-01") == (
        16630948
    )
    assert value(samples, "confscale_proxy_requests_total", node="proxy-01") == 31070465


def test_proxy_config() -> None:
    node = {
        "name": "proxy-01",
        "pool": "campus-proxy",
        "proxy": {"stub_status": "https://proxy.example.org/nginx_status"},
        "host": {"node_exporter": "https://proxy.example.org:9100/metrics"},
    }
    config = parse_config({"nodes": [node]}, "t.yml", {})
    assert config.nodes[0].sources() == ("proxy", "host")
    assert config.nodes[0].source("proxy").stub_status.endswith("/nginx_status")
    for bad in ({}, {"stub_status": "ftp://x/"}, {"stub_status": "http://x/", "extra": 1}):
        with pytest.raises(ConfigValueError, match="proxy"):
            parse_config({"nodes": [{**node, "proxy": bad}]}, "t.yml", {})
