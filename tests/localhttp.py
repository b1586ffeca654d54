"""HTTP servers on 127.0.0.1 for tests: the one way the fakes (fake_*.py) and the tests'
small upstreams run one — a port the kernel picks, a daemon thread, shut down on exit.

``serving(Handler)`` runs a ``BaseHTTPRequestHandler`` class; ``answering(respond)`` runs
a plain function of the request (what a fake's upstream code decides) and writes its
status, content type and body.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LocalServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer on 127.0.0.1 that knows its base URL."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[LocalServer]:
    """Serve ``handler`` on 127.0.0.1 (a free port) until the block ends."""
    server = LocalServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class Incoming:
    """One request as a fake sees it: method, target (path and query), headers, body."""

    method: str
    target: str
    headers: Message
    body: bytes


Answer = tuple[int, str, bytes]  # status, Content-Type, body


def json_or_html(body: bytes) -> str:
    """The content type of a server that answers JSON objects and HTML error pages."""
    return "application/json" if body.startswith(b"{") else "text/html"


def answering(
    respond: Callable[[Incoming], Answer], methods: Sequence[str] = ("GET", "POST")
) -> contextlib.AbstractContextManager[str]:
    """Serve ``respond`` for ``methods`` (others: the server's 501); yields the base URL."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _do(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, content_type, answer = respond(
                Incoming(self.command, self.path, self.headers, body)
            )
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(answer)  # a client that timed out has gone

    for method in methods:
        setattr(Handler, f"do_{method}", Handler._do)
    return _base_url(serving(Handler))


@contextlib.contextmanager
def _base_url(server: contextlib.AbstractContextManager[LocalServer]) -> Iterator[str]:
    with server as running:
        yield running.url
