"""HTTP GET of one source with a total deadline and a byte cap, streamed into a sink.

The deadline covers connect, headers and every body read, so a server that drips
one byte a second still costs at most the node's timeout. Error messages never carry
the URL (its query holds the checksum) nor anything the server sent.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import requests

CHUNK = 64 * 1024
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
# Compressed answers could expand past the cap inside one read; ask for plain bytes.
_HEADERS = {"Accept-Encoding": "identity", "User-Agent": "confscale-exporter"}

# Reasons counted in confscale_node_poll_errors_total (documented in docs/exporter.md).
REASONS = ("timeout", "connect", "http", "checksum", "failed", "parse", "too_large", "stale")


class PollError(Exception):
    """A failed poll: ``reason`` is the metric label, the message is safe to log."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def new_session(pool_size: int = 4) -> requests.Session:
    """A keep-alive session; one per worker thread (Session is not thread-safe)."""
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size,
                                            max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.trust_env = False  # a proxy from the environment would see every node's URL
    return session


def fetch(session: requests.Session, url: str, *, timeout: float, max_bytes: int,
          sink: Callable[[bytes], None]) -> int:
    """GET ``url`` and hand each body chunk to ``sink``; returns the body size.

    Raises PollError with reason timeout, connect, http or too_large; whatever ``sink``
    raises passes through.
    """
    deadline = time.monotonic() + timeout
    try:
        response = session.get(url, headers=_HEADERS, stream=True, allow_redirects=False,
                               timeout=(timeout, timeout))
    except requests.Timeout:
        raise PollError("timeout", f"no answer within {timeout:g}s") from None
    except requests.RequestException as exc:
        raise PollError("connect", _connect_detail(exc)) from None
    with response:
        if response.status_code != 200:
            raise PollError("http", f"HTTP status {response.status_code}")
        length = response.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > max_bytes:
            raise PollError("too_large", f"body of {length} bytes exceeds the cap of "
                                         f"{max_bytes} bytes")
        return _stream(response, deadline, timeout, max_bytes, sink)


def _stream(response: requests.Response, deadline: float, timeout: float, max_bytes: int,
            sink: Callable[[bytes], None]) -> int:
    raw = response.raw
    sock = _socket_of(response)
    total = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise PollError("timeout", f"body not complete within {timeout:g}s")
        if sock is not None:
            sock.settimeout(remaining)
        try:
            chunk = raw.read1(CHUNK)
        except (TimeoutError, requests.exceptions.ReadTimeout):
            raise PollError("timeout", f"body not complete within {timeout:g}s") from None
        except Exception as exc:  # urllib3 protocol errors: connection cut mid-body
            if "timed out" in str(exc).lower():
                raise PollError("timeout", f"body not complete within {timeout:g}s") from None
            raise PollError("connect", "connection broken while reading the body") from None
        if not chunk:
            return total
        total += len(chunk)
        if total > max_bytes:
            raise PollError("too_large", f"body exceeds the cap of {max_bytes} bytes")
        sink(chunk)


def _socket_of(response: requests.Response) -> socket.socket | None:
    connection = getattr(response.raw, "connection", None)
    sock = getattr(connection, "sock", None)
    return sock if isinstance(sock, socket.socket) else None


def _connect_detail(exc: requests.RequestException) -> str:
    text = str(exc).lower()
    if "refused" in text:
        return "connection refused"
    if "reset" in text or "aborted" in text or "remotedisconnected" in text \
            or "closed connection" in text:
        return "connection closed without an answer"
    if "name or service" in text or "resolution" in text or "resolve" in text:
        return "host name does not resolve"
    if "ssl" in text or "certificate" in text:
        return "TLS handshake failed"
    return "connection failed"
