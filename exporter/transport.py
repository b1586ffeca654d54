"""What the transports of exporter/fetch.py's HttpClient share: the failure a poll reports
(PollError and its reasons), the request's own headers, the checks an answer's status
line and Content-Encoding get before its body is read, and the connect loop over the
resolved addresses.

Two transports implement :class:`Transport`: ``fetch.PlainTransport`` (plain ``http://``
on exporter/plainhttp.py's kept-alive sockets) and ``pooled.PooledTransport`` (urllib3,
for ``https://`` and sources with TLS options). Their errors never carry the URL (its
query holds the checksum) nor anything the server sent.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol

from confscale.exporter.deadline import Guard
from confscale.exporter.resolve import AddrInfo

if TYPE_CHECKING:
    from confscale.exporter.config import TlsOptions

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
# Compressed answers could expand past the cap inside one read; ask for plain bytes.
HEADERS = MappingProxyType({"Accept-Encoding": "identity", "User-Agent": "confscale-exporter"})
SOCKET_OPTIONS: list[tuple[int, int, int | bytes]] = [
    (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
]  # urllib3's default

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


@dataclass(frozen=True, slots=True)
class Request:
    """One GET as HttpClient.fetch hands it to a transport."""

    url: str
    guard: Guard  # the exchange's deadline, watched by the client's Reaper
    timeout: float
    max_bytes: int
    sink: Callable[[bytes], None]  # each body chunk, as it arrives
    headers: Mapping[str, str]  # every header sent (the client's own and the source's)
    statuses: Collection[int]  # the statuses whose body is read (else reason "http")
    on_status: Callable[[int], None] | None
    tls: TlsOptions | None  # how an https certificate is checked (None: the default)


class Transport(Protocol):
    """Sends a :class:`Request` and streams its answer's body into ``request.sink``;
    returns the body's size or raises PollError."""

    def exchange(self, request: Request) -> int: ...

    def clear(self) -> None:
        """Drop every kept connection."""


def accept(
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


def connect(
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


def connect_detail(exc: BaseException) -> str:
    """What a connection failure says, in words that hold nothing the server sent."""
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
