"""HTTP: one threaded listener, node ``NAME`` under ``/NAME/``, admin under ``/_admin/``.

Routing and faults only; answers come from bbbapi / exposition.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from confscale.simulator import bbbapi, exposition, huge, proxy, turn
from confscale.simulator.pool import FaultError, Pool

MAX_BODY = 16 * 1024 * 1024  # POSTed create bodies (presentation modules) we read and drop
HTML_ERROR = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
HTML_MAINTENANCE = (
    b"<!DOCTYPE html><html><head><title>Maintenance</title></head><body>"
    b"<h1>This server is under maintenance</h1><p>Please try again later.</p></body></html>"
)


@dataclass(frozen=True)
class Settings:
    secret: str
    accepted: tuple[str, ...]  # checksum algorithms the nodes accept
    render_cache: bool = True  # off only to measure what the cache buys (bench_sim)


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], pool: Pool, settings: Settings) -> None:
        super().__init__(address, Handler)
        self.pool = pool
        self.settings = settings


def truth(pool: Pool, names: list[str] | None = None) -> dict[str, Any]:
    """Ground truth of the current instant, for every node or the ``names`` given."""
    wanted = [n for n in names or pool.names if not (pool.proxy and n == pool.proxy_name)]
    unknown = [n for n in wanted if n not in pool.kinds]
    if unknown:
        raise ValueError(f"unknown node(s) {', '.join(unknown)} in ?node=")
    t = pool.clock.now()
    nodes = {}
    for name in wanted:
        node = pool.node(name)
        assert node is not None
        fault = pool.fault(name)
        nodes[name] = exposition.node_truth(
            node,
            t,
            exposition.model.LINK_CAPACITY_BYTES,
            fault.mode if fault else "",
            fault.number() if fault else 0.0,
            str(fault.arg) if fault else "",
        )
    answer: dict[str, Any] = {"now": t, "nodes": nodes}
    if pool.proxy is not None:
        answer["proxy"] = {"name": pool.proxy_name, **pool.proxy.figures(pool, t)}
    return answer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body leave in one segment: no Nagle / delayed-ACK stall on keep-alive
    disable_nagle_algorithm = True
    wbufsize = 256 * 1024
    server: SimServer

    def version_string(self) -> str:
        return "nginx"  # BBB nodes answer through nginx

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request would drown the logs of 1,000-node runs

    # --- plumbing -----------------------------------------------------------------------

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "text/plain",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            if key.lower() != "content-type":
                self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: object) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _drop(self) -> None:
        """Close the connection without an answer."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _body(self) -> dict[str, Any]:
        text = self.headers.get("Content-Length", "0").strip()
        if not text.isdigit():
            raise ValueError(f"Content-Length {text!r} is not a number")
        length = int(text)
        if length <= 0:
            return {}
        if length > 1_000_000:
            self.close_connection = True
            raise ValueError("request body too large (admin bodies are small JSON objects)")
        data = json.loads(self.rfile.read(length) or b"{}")
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        return data

    def _discard_body(self) -> None:
        length = self.headers.get("Content-Length", "0").strip()
        remaining = int(length) if length.isdigit() else 0
        if remaining > MAX_BODY:
            self.close_connection = True
            return
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 65536))
            if not chunk:
                break
            remaining -= len(chunk)

    def do_GET(self) -> None:
        self._route("GET")

    def do_HEAD(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def _route(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = parts.path
        try:
            if path.startswith("/_admin/"):
                self._admin(method, path[len("/_admin/") :].rstrip("/"), parts.query)
            elif path == "/_turn/metrics":
                body = turn.metrics_page(self.server.pool, self.server.pool.clock.now())
                self._send(200, body, "text/plain; version=0.0.4; charset=utf-8")
            else:
                if method != "GET":
                    self._discard_body()  # e.g. create's XML modules; keep-alive stays in sync
                name, _, rest = path.lstrip("/").partition("/")
                self._node(name, "/" + rest, parts.query)
        except (ValueError, FaultError) as exc:
            self._json(400, {"error": str(exc)})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # --- admin --------------------------------------------------------------------------

    def _admin(self, method: str, what: str, query: str) -> None:
        pool = self.server.pool
        if what == "health":
            self._json(200, {"ok": True})
        elif what == "nodes":
            self._json(200, [{"name": n, "kind": pool.kinds[n]} for n in pool.names])
        elif what == "truth":
            self._json(200, truth(pool, parse_qs(query).get("node")))
        elif what == "clock":
            if method == "POST":
                seconds = float(self._body().get("advance", 0))
                self._json(200, {"now": pool.clock.advance(seconds)})
            else:
                self._json(200, {"now": pool.clock.now()})
        elif what == "faults":
            if method == "POST":
                body = self._body()
                fault = pool.set_fault(
                    str(body.get("node", "")), str(body.get("mode", "")), body.get("arg")
                )
                self._json(200, {"node": body.get("node"), **fault.as_dict()})
            elif method == "DELETE":
                node = parse_qs(query).get("node", [None])[-1]
                pool.clear_faults(node)
                self._json(200, pool.faults())
            else:
                self._json(200, pool.faults())
        else:
            self._json(404, {"error": f"no admin endpoint {what!r}"})

    # --- nodes --------------------------------------------------------------------------

    def _node(self, name: str, rest: str, query: str) -> None:
        pool = self.server.pool
        node = pool.node(name)
        is_proxy = node is None and pool.proxy is not None and name == pool.proxy_name
        if node is None and not is_proxy:
            self._send(404, f"no simulated node {name!r}\n".encode())
            return
        fault = pool.fault(name)
        mode = fault.mode if fault else ""
        arg = fault.number() if fault else 0.0
        if mode == "refused":
            self._drop()
            return
        if mode == "timeout":
            time.sleep(arg)
            self._drop()
            return
        if mode == "slow":
            time.sleep(arg)
        if mode == "html":
            self._send(200, HTML_MAINTENANCE, "text/html")
            return
        if mode == "http_error":
            self._send(int(arg), HTML_ERROR, "text/html")
            return
        if is_proxy:
            self._proxy_answer(rest)
            return
        status, body, content_type, headers = self._node_answer(name, rest, query, mode, fault)
        if mode == "invalid_xml" and status == 200 and body:
            body = body[: max(len(body) * 2 // 3, 10)] + b"<meeting><unclosed"
        self._send(status, body, content_type, headers)

    def _proxy_answer(self, rest: str) -> None:
        pool = self.server.pool
        assert pool.proxy is not None
        if rest != "/nginx_status":
            self._send(404, f"{pool.proxy_name}: nothing at {rest}\n".encode(), "text/plain")
            return
        figures = pool.proxy.figures(pool, pool.clock.now())
        self._send(200, proxy.stub_status_page(figures), "text/plain")

    def _node_answer(
        self, name: str, rest: str, query: str, mode: str, fault: Any
    ) -> tuple[int, bytes, str, Mapping[str, str]]:
        pool = self.server.pool
        settings = self.server.settings
        node = pool.node(name)
        assert node is not None
        t = pool.clock.now()
        if rest == "/metrics":
            with node.lock:
                snap = node.snapshot(t)
                load = exposition.load_average(node.active(t), t, node.cpu_count)
            arg = fault.number() if fault else 0.0
            body = exposition.node_metrics(name, snap, t, load, node.kind, mode, arg)
            return 200, body, "text/plain; version=0.0.4; charset=utf-8", {}
        if rest in ("/colibri/stats", "/colibri/stats/") and node.kind == "jitsi":
            return 200, exposition.colibri_json(node, t, mode), "application/json", {}
        if rest == "/jvb/metrics" and node.kind == "jitsi":
            body = exposition.jvb_native_page(node, t, mode)
            return 200, body, "text/plain; version=0.0.4; charset=utf-8", {}
        if rest.startswith("/bigbluebutton/api") and node.kind == "bbb":
            call = rest[len("/bigbluebutton/api") :].strip("/")
            if not call:
                answer = bbbapi.api_root(
                    str(fault.arg) if mode == "bbb_version" else bbbapi.BBB_VERSION
                )
            elif mode == "checksum":
                answer = bbbapi.Answer(
                    200, bbbapi.XML, bbbapi.bbbxml.message("FAILED", "checksumError")
                )
            elif (
                mode == "huge"
                and call == "getMeetings"
                and bbbapi.checksum_ok(call, query, settings.secret, settings.accepted)
            ):
                with pool.huge_lock:
                    body = huge.get_meetings(pool.huge_answers, fault.number())
                answer = bbbapi.Answer(200, bbbapi.XML, body)
            else:
                host = self.headers.get("Host", "127.0.0.1")
                separator = str(fault.arg) if mode == "thousands" else ""
                answer = bbbapi.handle(
                    node,
                    call,
                    query,
                    t=t,
                    secret=settings.secret,
                    accepted=settings.accepted,
                    base_url=f"http://{host}/{name}",
                    separator=separator,
                    cache=settings.render_cache,
                    mode=mode,
                    arg=fault.number() if fault else 0.0,
                )
            return answer.status, answer.body, answer.headers["Content-Type"], answer.headers
        return 404, f"{name}: nothing at {rest}\n".encode(), "text/plain", {}


def serve(pool: Pool, settings: Settings, host: str, port: int) -> SimServer:
    """Bind (port 0 picks a free one); the caller runs ``serve_forever``."""
    server_class = _SimServerV6 if ":" in host else SimServer
    return server_class((host, port), pool, settings)


class _SimServerV6(SimServer):
    address_family = socket.AF_INET6
