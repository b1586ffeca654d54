"""HTTP GET of one source with a total deadline and a byte cap, streamed into a sink.

Plain ``http://`` exchanges go through exporter/plainhttp.py (kept-alive sockets per host,
the least HTTP/1.1 a GET needs, every check below: a fifth of urllib3's CPU per exchange,
bench/bench_fetch.py); ``https://`` and sources with TLS options through one urllib3
PoolManager, thread-safe, connections kept alive per host.

One deadline covers the host name's lookup, connect, TLS handshake, status line, headers
and every body read (exporter/resolve.py waits for a lookup at most the time left;
exporter/deadline.py shuts the socket down when it passes), so a slow resolver, or a
server that drips one byte a second in its headers or its body, still costs at most the
node's timeout; and ``close`` ends every exchange in flight at once. Status line and
header lines are bounded by http.client (64 KiB a line, 100 lines): more is reason
``http``, "headers too large".
Error messages never carry the URL (its query holds the checksum) nor anything the
server sent.
"""

from __future__ import annotations

import contextvars
import http.client
import logging
import socket
import ssl
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from http.client import BadStatusLine, HTTPException, LineTooLong, RemoteDisconnected
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import urllib3
from confscale.exporter import plainhttp
from confscale.exporter.deadline import Guard, Reaper
from confscale.exporter.resolve import AddrInfo, Resolver, ResolveTimeout
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HeaderParsingError,
    HTTPError,
    InsecureRequestWarning,
    NameResolutionError,
    NewConnectionError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.util import parse_url
from urllib3.util.response import assert_header_parsing

from confscale.redact import MARK, redact_url

if TYPE_CHECKING:
    from confscale.exporter.config import TlsOptions

CHUNK = 64 * 1024
_LOG = logging.getLogger("confscale.exporter.fetch")
_SOCKET_OPTIONS: list[tuple[int, int, int | bytes]] = [
    (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
]  # urllib3's default
# http.client's own limits on an answer's head (it raises LineTooLong / HTTPException)
MAX_HEADER_LINE_BYTES = 65536
MAX_HEADER_LINES = 100
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
# Compressed answers could expand past the cap inside one read; ask for plain bytes.
_HEADERS = MappingProxyType({"Accept-Encoding": "identity", "User-Agent": "confscale-exporter"})

# Reasons counted in confscale_node_poll_errors_total (documented in docs/exporter.md).
REASONS = (
    "timeout",
    "connect",
    "http",
    "checksum",
    "failed",
    "parse",
    "too_large",
    "overrun",
    "internal",
)


class PollError(Exception):
    """A failed poll: ``reason`` is the metric label, the message is safe to log."""

    def __init__(self, reason: str, detail: str, *, status: int | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.status = status  # the HTTP status of an answer refused for it


class MalformedHeaders(HTTPException):
    """A header block that does not parse (a line with no colon, a stray continuation)."""


class _StrictResponse(http.client.HTTPResponse):
    """Refuses a head that does not parse instead of reading on with headers lost.

    http.client keeps going after a bad line and drops every header after it
    (Content-Length, Content-Encoding), and urllib3 then logs a warning naming the URL.
    """

    def begin(self) -> None:
        super().begin()
        try:
            assert_header_parsing(self.msg)
        except HeaderParsingError:
            raise MalformedHeaders("malformed header line") from None


class _ResolveTimeoutError(ConnectTimeoutError):
    """The host name was not resolved before the exchange's deadline."""


class _Guarded:
    """A urllib3 connection that puts itself under the current exchange's deadline.

    It resolves its host name through the exchange's Resolver within the time left and
    connects within what is left after that; it attaches when it connects (the TCP
    socket exists before the TLS handshake), when a request is sent on it (a reused
    keep-alive connection) and before the status line and headers are read, so the
    deadline covers every phase of the exchange. A
    connection has one guard at a time: the next exchange on it takes it over, so an old
    deadline never shuts a connection another poll is using. (urllib3 returns it to the
    pool on reading the body's end, a moment before the guard ends; a deadline passing in
    that moment shuts an idle pooled connection, which urllib3 finds dropped and replaces.)
    """

    def connect(self) -> None:
        _attach(self)
        super().connect()  # type: ignore[misc]
        _attach(self)

    def _new_conn(self) -> socket.socket:
        """urllib3's HTTPConnection._new_conn (its errors, its audit event), with the
        lookup and the connect bounded by the exchange's deadline."""
        exchange = _EXCHANGE.get()
        if exchange is None:
            return super()._new_conn()  # type: ignore[misc]
        _, guard, resolver = exchange
        host: str = self.host  # type: ignore[attr-defined]
        port: int = self.port  # type: ignore[attr-defined]
        try:
            addresses = resolver.resolve(host.strip("[]"), port, guard.remaining())
        except ResolveTimeout as exc:
            raise _ResolveTimeoutError(self, str(exc)) from None
        except socket.gaierror as exc:
            raise NameResolutionError(host, self, exc) from exc  # type: ignore[arg-type]
        limit = guard.remaining()
        timeout = self.timeout  # type: ignore[attr-defined]
        if isinstance(timeout, int | float):
            limit = min(limit, timeout)
        try:
            if limit <= 0:
                raise TimeoutError
            sock = _connect(addresses, limit, self.source_address, self.socket_options)  # type: ignore[attr-defined]
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, f"Connection to {host} timed out") from exc
        except OSError as exc:
            message = f"Failed to establish a new connection: {exc}"
            raise NewConnectionError(self, message) from exc  # type: ignore[arg-type]
        sys.audit("http.client.connect", self, host, port)
        return sock

    def request(self, *args: object, **kwargs: object) -> None:
        _attach(self)
        super().request(*args, **kwargs)  # type: ignore[misc]

    def getresponse(self) -> urllib3.HTTPResponse:
        _attach(self)
        return super().getresponse()  # type: ignore[misc]


# _Guarded is a mixin typed without its base, so mypy compares its getresponse() with
# HTTPConnection's as if unrelated; at run time it is HTTPConnection's, returned as is.
class _GuardedHTTPConnection(_Guarded, HTTPConnection):  # type: ignore[misc]
    response_class = _StrictResponse


class _GuardedHTTPSConnection(_Guarded, HTTPSConnection):  # type: ignore[misc]  # as above
    response_class = _StrictResponse


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


# (reaper, guard, resolver) of the current thread's exchange, for _Guarded to attach to
_EXCHANGE: contextvars.ContextVar[tuple[Reaper, Guard, Resolver] | None] = contextvars.ContextVar(
    "confscale_exchange", default=None
)


def _connect(
    addresses: Sequence[AddrInfo],
    timeout: float,
    source_address: tuple[str, int] | None,
    options: list[tuple[int, int, int | bytes]] | None,
) -> socket.socket:
    """urllib3.util.connection.create_connection's loop over resolved addresses: the
    first that accepts within ``timeout`` (each try gets the whole of it, as there)."""
    error: OSError = OSError("getaddrinfo returns an empty list")
    for family, kind, proto, _, address in addresses:
        sock = None
        try:
            sock = socket.socket(family, kind, proto)
            for option in options or ():
                sock.setsockopt(*option)
            sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(address)
            return sock
        except OSError as exc:
            error = exc
            if sock is not None:
                sock.close()
    raise error


def _attach(connection: object) -> None:
    exchange = _EXCHANGE.get()
    if exchange is not None:
        exchange[0].watch(exchange[1], connection)  # type: ignore[arg-type]


class HttpClient:
    """Keep-alive connections for every node, shared by the worker threads."""

    def __init__(
        self, *, connections_per_host: int = 4, hosts: int = 64, resolver: Resolver | None = None
    ) -> None:
        self._pool = urllib3.PoolManager(
            num_pools=max(hosts, 16),
            maxsize=connections_per_host,
            block=False,
            retries=False,
            headers=dict(_HEADERS),
        )
        self._pool.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
        self._plain = plainhttp.Pool(connections_per_host, max(hosts, 16))
        self._plain_http = True  # http:// through plainhttp (bench_fetch compares both)
        self._reaper = Reaper("confscale-fetch-deadline")
        self._resolver = resolver or Resolver()

    def fetch(
        self,
        url: str,
        *,
        timeout: float,
        max_bytes: int,
        sink: Callable[[bytes], None],
        tls: TlsOptions | None = None,
        headers: Mapping[str, str] | None = None,
        statuses: Collection[int] = (200,),
        on_status: Callable[[int], None] | None = None,
    ) -> int:
        """GET ``url`` and hand each body chunk to ``sink``; returns the body size.

        ``headers`` are sent besides the client's own (credentials: they are never in an
        error); an answer whose status is not in ``statuses`` is reason ``http`` with the
        status in ``PollError.status`` (an API's error bodies: list their statuses).

        One deadline of ``timeout`` seconds covers the name's lookup, connect, TLS
        handshake, status line, headers and body. Raises PollError with reason timeout,
        connect, http or too_large; whatever ``sink`` raises passes through. ``tls``
        overrides how an https certificate is checked (its connections live in their own
        pool, keyed by those options).
        """
        with self._reaper.guard(timeout) as guard:
            token = _EXCHANGE.set((self._reaper, guard, self._resolver))
            try:
                return self._exchange(
                    url, guard, timeout, max_bytes, sink, tls, headers or {}, statuses, on_status
                )
            finally:
                _EXCHANGE.reset(token)

    def _exchange(
        self,
        url: str,
        guard: Guard,
        timeout: float,
        max_bytes: int,
        sink: Callable[[bytes], None],
        tls: TlsOptions | None,
        extra: Mapping[str, str],
        statuses: Collection[int],
        on_status: Callable[[int], None] | None,
    ) -> int:
        sent = {**_HEADERS, **extra}
        if self._plain_http and tls is None and url[:7].lower() == "http://":
            return self._plain_exchange(
                url, guard, timeout, max_bytes, sink, sent, statuses, on_status
            )
        options: dict[str, Any] = {
            "preload_content": False,
            "redirect": False,
            "retries": False,
            "timeout": urllib3.Timeout(connect=timeout, read=timeout),
        }
        try:
            if guard.expired:
                raise TimeoutError  # stopping: nothing new is sent
            if tls is None:
                response = self._pool.request("GET", url, headers=sent, **options)
            else:
                pool = self._pool.connection_from_url(url, pool_kwargs=_tls_kwargs(tls))
                response = pool.urlopen("GET", parse_url(url).request_uri, headers=sent, **options)
        except Exception as exc:
            raise _request_error(exc, guard, timeout) from None
        try:
            if guard.expired:
                raise PollError("timeout", f"no answer within {timeout:g}s")
            _accept(response.status, response.headers.get("Content-Encoding"), statuses, on_status)
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > max_bytes:
                raise PollError(
                    "too_large", f"body of {length} bytes exceeds the cap of {max_bytes} bytes"
                )
            size = _stream(response, guard, timeout, max_bytes, sink)
        except BaseException:
            response.close()  # a half-read connection cannot be reused
            raise
        finally:
            response.release_conn()
        return size

    def _plain_exchange(
        self,
        url: str,
        guard: Guard,
        timeout: float,
        max_bytes: int,
        sink: Callable[[bytes], None],
        sent: Mapping[str, str],
        statuses: Collection[int],
        on_status: Callable[[int], None] | None,
    ) -> int:
        """One GET through exporter/plainhttp.py, its faults as PollError."""
        phase = "no answer"
        try:
            host, port, target, authority = plainhttp.split_url(url)
            request = plainhttp.request_bytes(target, authority, sent)
            conn = self._plain.take((host, port))
            for fresh in (conn is None, True):  # a reused connection found closed: once more
                if guard.expired:
                    raise plainhttp.Deadline
                if conn is None:
                    conn = plainhttp.Conn(self._open(host, port, guard, timeout), (host, port))
                self._reaper.watch(guard, conn.sock)
                exchange = plainhttp.Exchange(conn, guard.remaining, lambda: guard.expired)
                keep = False
                try:
                    try:
                        conn.sock.sendall(request)
                        head = exchange.head()
                    except (plainhttp.HttpFault, OSError):
                        if fresh or exchange.got_bytes or guard.expired:
                            raise
                        continue
                    coding = head.get(b"content-encoding")
                    shown = None if coding is None else coding.decode("latin-1")
                    _accept(head.status, shown, statuses, on_status)
                    phase = "body not complete"
                    size, keep = exchange.body(head, max_bytes, sink)
                    keep = keep and not conn.buffer and not guard.expired
                    if _LOG.isEnabledFor(logging.DEBUG):  # as urllib3's request line
                        shown = redact_url(url) + (f"?{MARK}" if "?" in url else "")
                        _LOG.debug('"GET %s HTTP/1.1" %d %d', shown, head.status, size)
                    return size
                finally:
                    if keep:
                        self._plain.give(conn)
                    else:
                        conn.sock.close()
                    conn = None
            raise plainhttp.HttpFault("connect", "connection closed without an answer")
        except plainhttp.Deadline:
            raise PollError("timeout", f"{phase} within {timeout:g}s") from None
        except plainhttp.HttpFault as fault:
            raise PollError(fault.reason, fault.detail) from None
        except OSError as exc:
            if guard.expired or isinstance(exc, TimeoutError):
                raise PollError("timeout", f"{phase} within {timeout:g}s") from None
            raise PollError("connect", _connect_detail(exc)) from None

    def _open(self, host: str, port: int, guard: Guard, timeout: float) -> socket.socket:
        """A new connection to ``host`` within the time the exchange has left."""
        try:
            addresses = self._resolver.resolve(host, port, guard.remaining())
        except ResolveTimeout:
            raise PollError("timeout", f"host name not resolved within {timeout:g}s") from None
        except socket.gaierror:
            raise PollError("connect", "host name does not resolve") from None
        limit = min(guard.remaining(), timeout)
        if limit <= 0 or guard.expired:
            raise plainhttp.Deadline
        sock = _connect(addresses, limit, None, _SOCKET_OPTIONS)
        sock.settimeout(None)  # blocking from here: the Reaper shuts it at the deadline
        sys.audit("http.client.connect", self, host, port)
        return sock

    def get(
        self,
        url: str,
        *,
        timeout: float,
        max_bytes: int,
        headers: Mapping[str, str] | None = None,
        statuses: Collection[int] = (200,),
    ) -> tuple[int, bytes]:
        """``fetch`` into memory: (status, body), with the same deadline and cap."""
        chunks: list[bytes] = []
        status: list[int] = []
        self.fetch(
            url,
            timeout=timeout,
            max_bytes=max_bytes,
            sink=chunks.append,
            headers=headers,
            statuses=statuses,
            on_status=status.append,
        )
        return status[0], b"".join(chunks)

    def close(self) -> None:
        """Abort every exchange in flight (each ends as a timeout at once), drop the pools."""
        self._reaper.close()
        self._resolver.close()
        self._pool.clear()
        self._plain.clear()


def _accept(
    status: int,
    encoding: str | None,
    statuses: Collection[int],
    on_status: Callable[[int], None] | None,
) -> None:
    """An answer's status and Content-Encoding, before its body is read."""
    if status not in statuses:
        raise PollError("http", f"HTTP status {status}", status=status)
    if on_status is not None:
        on_status(status)
    coding = (encoding or "identity").strip().lower()
    if coding not in ("", "identity"):
        # Asked for identity; decoding it anyway could blow past the cap in one read.
        raise PollError("parse", f"compressed answer ({coding[:20]}) refused")


def _request_error(exc: Exception, guard: Guard, timeout: float) -> PollError:
    """The PollError for an exception raised before the status line and headers were in."""
    if isinstance(exc, PollError):
        return exc
    timed_out = isinstance(exc, ConnectTimeoutError | ReadTimeoutError | TimeoutError)
    # NewConnectionError is a ConnectTimeoutError to urllib3, but it is a refusal
    if any(isinstance(cause, _ResolveTimeoutError) for cause in _causes(exc)):
        return PollError("timeout", f"host name not resolved within {timeout:g}s")
    if (guard.expired or timed_out) and not isinstance(exc, NewConnectionError):
        return PollError("timeout", f"no answer within {timeout:g}s")
    causes = _causes(exc)
    for cause in causes:
        if isinstance(cause, LineTooLong):
            what = "status line" if "status" in str(cause) else "a header line"
            return PollError(
                "http", f"headers too large: {what} over {MAX_HEADER_LINE_BYTES} bytes"
            )
        if isinstance(cause, HTTPException) and "more than" in str(cause):
            return PollError(
                "http", f"headers too large: more than {MAX_HEADER_LINES} header lines"
            )
        if isinstance(cause, MalformedHeaders):
            return PollError("http", "malformed header line")
        if isinstance(cause, RemoteDisconnected):
            return PollError("connect", "connection closed without an answer")
        if isinstance(cause, BadStatusLine):
            return PollError("http", "not an HTTP answer (bad status line)")
    if any(isinstance(cause, SSLError | ssl.SSLError) for cause in causes):
        return PollError("connect", "TLS handshake failed")
    if isinstance(exc, HTTPError | OSError):
        return PollError("connect", _connect_detail(exc))
    raise exc


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc``, the exceptions urllib3 wrapped in it (args, cause, context), depth-first."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo and len(seen) < 16:
        current = todo.pop()
        if any(current is s for s in seen):
            continue
        seen.append(current)
        todo.extend(arg for arg in current.args if isinstance(arg, BaseException))
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                todo.append(linked)
    return seen


def _tls_kwargs(tls: TlsOptions) -> dict[str, object]:
    if tls.insecure_skip_verify:
        # the operator chose no check for this source; say so once in the docs, not per poll
        urllib3.disable_warnings(InsecureRequestWarning)
        return {"cert_reqs": "CERT_NONE", "assert_hostname": False}
    return {"cert_reqs": "CERT_REQUIRED", "ca_certs": tls.ca_file}


def _stream(
    response: urllib3.BaseHTTPResponse,
    guard: Guard,
    timeout: float,
    max_bytes: int,
    sink: Callable[[bytes], None],
) -> int:
    total = 0
    while True:
        if guard.remaining() <= 0 or guard.expired:
            raise PollError("timeout", f"body not complete within {timeout:g}s")
        try:
            chunk = response.read1(CHUNK)
        except (ReadTimeoutError, TimeoutError):
            raise PollError("timeout", f"body not complete within {timeout:g}s") from None
        except (HTTPError, OSError):
            if guard.expired:
                raise PollError("timeout", f"body not complete within {timeout:g}s") from None
            raise PollError("connect", "connection broken while reading the body") from None
        if not chunk:
            if guard.expired:  # the reaper's shutdown reads as EOF: not a complete body
                raise PollError("timeout", f"body not complete within {timeout:g}s")
            return total
        total += len(chunk)
        if total > max_bytes:
            raise PollError("too_large", f"body exceeds the cap of {max_bytes} bytes")
        sink(chunk)


def _connect_detail(exc: BaseException) -> str:
    text = str(exc).lower()
    if "refused" in text:
        return "connection refused"
    if (
        "reset" in text
        or "aborted" in text
        or "remotedisconnected" in text
        or "closed connection" in text
        or "remote end closed" in text
    ):
        return "connection closed without an answer"
    if "name or service" in text or "resolution" in text or "resolve" in text:
        return "host name does not resolve"
    return "connection failed"
