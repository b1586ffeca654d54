"""The urllib3 transport of exporter/fetch.py's HttpClient: ``https://`` and sources with
TLS options, through one thread-safe PoolManager, connections kept alive per host.

Its connections put themselves under the exchange's deadline (``_Guarded``): the host
name's lookup (exporter/resolve.py waits at most the time left), the connect, the TLS
handshake, the status line, the headers and every body read, so a slow resolver or a
server that drips one byte a second still costs at most the node's timeout. Status line
and header lines are bounded by http.client (64 KiB a line, 100 lines): more is reason
``http``, "headers too large"; a head that does not parse is refused, not read on.
"""

from __future__ import annotations

import contextvars
import http.client
import socket
import ssl
import sys
from collections.abc import Callable, Mapping
from http.client import BadStatusLine, HTTPException, LineTooLong, RemoteDisconnected
from typing import TYPE_CHECKING, Any

import urllib3
from confscale.exporter.deadline import Guard, Reaper
from confscale.exporter.resolve import Resolver, ResolveTimeout
from confscale.exporter.transport import (
    HEADERS,
    PollError,
    Request,
    accept,
    connect,
    connect_detail,
)
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

if TYPE_CHECKING:
    from confscale.exporter.config import TlsOptions

CHUNK = 64 * 1024
# http.client's own limits on an answer's head (it raises LineTooLong / HTTPException)
MAX_HEADER_LINE_BYTES = 65536
MAX_HEADER_LINES = 100


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
            sock = connect(addresses, limit, self.source_address, self.socket_options)  # type: ignore[attr-defined]
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


def _attach(connection: object) -> None:
    exchange = _EXCHANGE.get()
    if exchange is not None:
        exchange[0].watch(exchange[1], connection)  # type: ignore[arg-type]


class PooledTransport:
    """GETs through urllib3, each under its exchange's deadline (see the module)."""

    def __init__(
        self, reaper: Reaper, resolver: Resolver, *, connections_per_host: int, hosts: int
    ) -> None:
        self._reaper = reaper
        self._resolver = resolver
        self._manager = urllib3.PoolManager(
            num_pools=hosts,
            maxsize=connections_per_host,
            block=False,
            retries=False,
            headers=dict(HEADERS),
        )
        self._manager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}

    def exchange(self, request: Request) -> int:
        url, guard, timeout = request.url, request.guard, request.timeout
        token = _EXCHANGE.set((self._reaper, guard, self._resolver))
        try:
            response = self._request(url, guard, timeout, request.headers, request.tls)
            try:
                if guard.expired:
                    raise PollError("timeout", f"no answer within {timeout:g}s")
                coding = response.headers.get("Content-Encoding")
                accept(response.status, coding, request.statuses, request.on_status)
                length = response.headers.get("Content-Length", "")
                max_bytes = request.max_bytes
                if length.isdigit() and int(length) > max_bytes:
                    raise PollError(
                        "too_large", f"body of {length} bytes exceeds the cap of {max_bytes} bytes"
                    )
                return _stream(response, guard, timeout, max_bytes, request.sink)
            except BaseException:
                response.close()  # a half-read connection cannot be reused
                raise
            finally:
                response.release_conn()
        finally:
            _EXCHANGE.reset(token)

    def _request(
        self,
        url: str,
        guard: Guard,
        timeout: float,
        headers: Mapping[str, str],
        tls: TlsOptions | None,
    ) -> urllib3.BaseHTTPResponse:
        """The answer's status line and headers (its body not read yet)."""
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
                return self._manager.request("GET", url, headers=headers, **options)
            pool = self._manager.connection_from_url(url, pool_kwargs=_tls_kwargs(tls))
            target = parse_url(url).request_uri
            return pool.urlopen("GET", target, headers=headers, **options)
        except Exception as exc:
            raise _request_error(exc, guard, timeout) from None

    def clear(self) -> None:
        self._manager.clear()


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
        return PollError("connect", connect_detail(exc))
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
