"""HTTP GET of one source with a total deadline and a byte cap, streamed into a sink.

:class:`HttpClient` is what sources call. Plain ``http://`` exchanges go through
:class:`PlainTransport` (exporter/plainhttp.py's kept-alive sockets per host, the least
HTTP/1.1 a GET needs with every check of the other path: a fifth of urllib3's CPU per
exchange, bench/bench_fetch.py); ``https://`` and sources with TLS options through
exporter/pooled.py (one urllib3 PoolManager, thread-safe, connections kept alive per
host). Both implement exporter/transport.py's Transport and raise its PollError.

One deadline covers the host name's lookup, connect, TLS handshake, status line, headers
and every body read (exporter/resolve.py waits for a lookup at most the time left;
exporter/deadline.py shuts the socket down when it passes), so a slow resolver, or a
server that drips one byte a second in its headers or its body, still costs at most the
node's timeout; and ``close`` ends every exchange in flight at once.
Error messages never carry the URL (its query holds the checksum) nor anything the
server sent.
"""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING

from confscale.exporter import plainhttp
from confscale.exporter.deadline import Guard, Reaper
from confscale.exporter.pooled import PooledTransport
from confscale.exporter.resolve import Resolver, ResolveTimeout
from confscale.exporter.transport import (
    DEFAULT_MAX_BODY_BYTES,
    HEADERS,
    REASONS,
    SOCKET_OPTIONS,
    PollError,
    Request,
    Transport,
    accept,
    connect,
    connect_detail,
)

from confscale.redact import MARK, redact_url

if TYPE_CHECKING:
    from confscale.exporter.config import TlsOptions

__all__ = ["DEFAULT_MAX_BODY_BYTES", "REASONS", "HttpClient", "PlainTransport", "PollError"]

_LOG = logging.getLogger("confscale.exporter.fetch")


class HttpClient:
    """Keep-alive connections for every node, shared by the worker threads."""

    def __init__(
        self, *, connections_per_host: int = 4, hosts: int = 64, resolver: Resolver | None = None
    ) -> None:
        self._reaper = Reaper("confscale-fetch-deadline")
        self._resolver = resolver or Resolver()
        hosts = max(hosts, 16)
        self._pooled = PooledTransport(
            self._reaper, self._resolver, connections_per_host=connections_per_host, hosts=hosts
        )
        self._plain = PlainTransport(self._reaper, self._resolver, connections_per_host, hosts)
        self._plain_http = True  # http:// through PlainTransport (bench_fetch compares both)

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
        plain = self._plain_http and tls is None and url[:7].lower() == "http://"
        transport: Transport = self._plain if plain else self._pooled
        with self._reaper.guard(timeout) as guard:
            request = Request(
                url,
                guard,
                timeout,
                max_bytes,
                sink,
                {**HEADERS, **(headers or {})},
                statuses,
                on_status,
                tls,
            )
            return transport.exchange(request)

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
        self._pooled.clear()
        self._plain.clear()


class PlainTransport:
    """Plain ``http://`` GETs on exporter/plainhttp.py's kept-alive sockets."""

    def __init__(
        self, reaper: Reaper, resolver: Resolver, connections_per_host: int, hosts: int
    ) -> None:
        self._reaper = reaper
        self._resolver = resolver
        self._pool = plainhttp.Pool(connections_per_host, hosts)

    def exchange(self, request: Request) -> int:
        """One GET through exporter/plainhttp.py, its faults as PollError."""
        url, guard, timeout = request.url, request.guard, request.timeout
        phase = "no answer"
        try:
            host, port, target, authority = plainhttp.split_url(url)
            sent = plainhttp.request_bytes(target, authority, request.headers)
            conn = self._pool.take((host, port))
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
                        conn.sock.sendall(sent)
                        head = exchange.head()
                    except (plainhttp.HttpFault, OSError):
                        if fresh or exchange.got_bytes or guard.expired:
                            raise
                        continue
                    coding = head.get(b"content-encoding")
                    shown = None if coding is None else coding.decode("latin-1")
                    accept(head.status, shown, request.statuses, request.on_status)
                    phase = "body not complete"
                    size, keep = exchange.body(head, request.max_bytes, request.sink)
                    keep = keep and not conn.buffer and not guard.expired
                    if _LOG.isEnabledFor(logging.DEBUG):  # as urllib3's request line
                        shown = redact_url(url) + (f"?{MARK}" if "?" in url else "")
                        _LOG.debug('"GET %s HTTP/1.1" %d %d', shown, head.status, size)
                    return size
                finally:
                    if keep:
                        self._pool.give(conn)
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
            raise PollError("connect", connect_detail(exc)) from None

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
        sock = connect(addresses, limit, None, SOCKET_OPTIONS)
        sock.settimeout(None)  # blocking from here: the Reaper shuts it at the deadline
        sys.audit("http.client.connect", self, host, port)
        return sock

    def clear(self) -> None:
        self._pool.clear()
