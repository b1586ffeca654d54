"""The exporter's HTTP server: wsgiref with every resource a client can hold bounded.

``http.server`` alone lets a client hold a thread for ever (no deadline on the request
head, a socket timeout that restarts on every byte) and buffer up to 100 header lines
of 64 KiB each, which becomes tens of MB per connection once parsed; 100 such
connections took the exporter past 3 GB. Here:

- at most ``MAX_CONNECTIONS`` connections are served at once (one thread each); one more
  is answered ``503`` at once and closed;
- the request line and headers must arrive within ``HEAD_TIMEOUT`` seconds in total
  (exporter/deadline.py), and hold at most ``MAX_REQUEST_LINE`` and ``MAX_HEAD_BYTES``
  bytes (``414`` / ``431`` otherwise);
- the answer must be taken within ``WRITE_TIMEOUT`` seconds (a total for ``sendall``);
- one request per connection (HTTP/1.0 semantics): nothing idles between requests.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import IO, Any, cast
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from confscale.exporter.deadline import Reaper

from confscale.log import get_logger

log = get_logger("confscale.exporter")

MAX_CONNECTIONS = 64  # Prometheus servers, /probe jobs and a few curls
HEAD_TIMEOUT = 10.0  # seconds for the request line and all headers
WRITE_TIMEOUT = 30.0  # seconds to take the whole answer
MAX_REQUEST_LINE = 8 * 1024
MAX_HEAD_BYTES = 32 * 1024  # request line and headers together
LINGER = 1.0  # seconds to drain a refused request, so its client reads the error
_BUSY = (
    b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 22\r\n"
    b"Retry-After: 1\r\nConnection: close\r\n\r\ntoo many connections\r\n"
)


class _HeadReader:
    """The connection's input with a budget of bytes for the request head."""

    def __init__(self, raw: Any, budget: int) -> None:
        self._raw = raw
        self._left = budget
        self.exceeded = False

    def readline(self, limit: int = -1) -> bytes:
        if self._left <= 0:
            self.exceeded = True
            return b""
        size = self._left if limit is None or limit < 0 else min(limit, self._left)
        line = self._raw.readline(size)
        self._left -= len(line)
        if self._left <= 0 and not line.endswith(b"\n"):
            self.exceeded = True
        return line

    def __getattr__(self, name: str) -> Any:  # read(), close(), ... for wsgi.input
        return getattr(self._raw, name)


class _ServerHandler(ServerHandler):
    def log_exception(self, exc_info: Any) -> None:
        # wsgiref prints the traceback to stderr, past the logging redaction: one line instead
        log.error("request failed", extra={"exception": exc_info[0].__name__})


class _Handler(WSGIRequestHandler):
    def setup(self) -> None:
        # per recv; socketserver reads the handler's timeout from the instance
        self.timeout = self.server.head_timeout  # type: ignore[attr-defined,misc]
        super().setup()

    def handle(self) -> None:
        server: BoundedWSGIServer = self.server  # type: ignore[assignment]
        head = _HeadReader(self.rfile, MAX_HEAD_BYTES)
        with server.reaper.guard(server.head_timeout) as guard:
            server.reaper.watch(guard, self.connection)
            self.raw_requestline = head.readline(MAX_REQUEST_LINE + 1)
            if len(self.raw_requestline) > MAX_REQUEST_LINE:
                self.requestline = self.request_version = self.command = ""
                self.send_error(414)
                self._linger()
                return
            # parse_request reads the headers through the budget (it only calls readline)
            self.rfile = head  # type: ignore[assignment]
            parsed = self.parse_request()
        if guard.expired:
            return  # cut at the deadline: the socket is shut
        if not parsed:
            self._linger()  # parse_request sent the error
            return
        if head.exceeded:
            self.close_connection = True
            self.send_error(431, "Request header fields too large")
            self._linger()
            return
        self.connection.settimeout(server.write_timeout)  # sendall: a total since 3.5
        handler = _ServerHandler(
            cast(IO[bytes], self.rfile),
            cast(IO[bytes], self.wfile),
            self.get_stderr(),
            self.get_environ(),
            multithread=False,
        )
        handler.request_handler = self  # type: ignore[attr-defined]  # as wsgiref.simple_server
        app = server.get_app()
        assert app is not None  # set before serving
        handler.run(app)

    def _linger(self) -> None:
        """After an error answer, read (and drop) what the client is still sending for
        at most LINGER seconds (RFC 7230 §6.6, "tear-down"): closing with unread input
        makes the kernel send a reset, and the client may lose the answer that says what
        was wrong."""
        deadline = time.monotonic() + LINGER
        budget = 1 << 20  # bytes; the time bound is what matters
        with contextlib.suppress(OSError):
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            while budget > 0 and (left := deadline - time.monotonic()) > 0:
                self.connection.settimeout(left)
                data = self.connection.recv(min(65536, budget))
                if not data:
                    return
                budget -= len(data)

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines are not logged: a /probe query names nodes, nothing more is useful.
        return


class BoundedWSGIServer(WSGIServer):
    """One thread per connection, at most ``max_connections`` of them."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        *args: Any,
        max_connections: int = MAX_CONNECTIONS,
        head_timeout: float = HEAD_TIMEOUT,
        write_timeout: float = WRITE_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        self.head_timeout = head_timeout
        self.write_timeout = write_timeout
        self._slots = threading.BoundedSemaphore(max_connections)
        self.reaper = Reaper("confscale-http-deadline")
        super().__init__(*args, **kwargs)

    def process_request(  # type: ignore[override]  # a TCP server: always a socket
        self, request: socket.socket, client_address: Any
    ) -> None:
        if not self._slots.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.settimeout(0)  # a fresh socket's buffer takes this without waiting
                request.sendall(_BUSY)
            self.shutdown_request(request)
            return
        thread = threading.Thread(
            target=self._serve_one, args=(request, client_address), daemon=True
        )
        try:
            thread.start()
        except BaseException:
            self._slots.release()
            self.shutdown_request(request)
            raise

    def _serve_one(self, request: socket.socket, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away mid-answer is not news; never print a traceback with
        # whatever it sent.
        return

    def server_close(self) -> None:
        super().server_close()
        self.reaper.close()


class BoundedWSGIServerV6(BoundedWSGIServer):
    address_family = socket.AF_INET6


def make_bounded_server(
    host: str,
    port: int,
    app: Any,
    *,
    max_connections: int = MAX_CONNECTIONS,
    head_timeout: float = HEAD_TIMEOUT,
    write_timeout: float = WRITE_TIMEOUT,
) -> BoundedWSGIServer:
    """A bounded threading WSGI server for ``app`` bound to host:port (not yet serving)."""
    server_class = BoundedWSGIServerV6 if ":" in host else BoundedWSGIServer
    server = server_class(
        (host, port),
        _Handler,
        max_connections=max_connections,
        head_timeout=head_timeout,
        write_timeout=write_timeout,
    )
    server.set_app(app)
    return server
