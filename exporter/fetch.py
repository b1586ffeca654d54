"""HTTP GET of one source with a total deadline and a byte cap, streamed into a sink.

One urllib3 PoolManager serves every worker thread: it is thread-safe, keeps connections
alive per host, and costs about a third of a ``requests.Session`` call in CPU (measured in
bench/bench_exporter.py; at 1,000 nodes that is most of a core-second per cycle).

The deadline covers connect, headers and every body read, so a server that drips one
byte a second still costs at most the node's timeout. Error messages never carry the URL
(its query holds the checksum) nor anything the server sent.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from types import MappingProxyType
from typing import TYPE_CHECKING

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    InsecureRequestWarning,
    NewConnectionError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.util import parse_url

if TYPE_CHECKING:
    from confscale.exporter.config import TlsOptions

CHUNK = 64 * 1024
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

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class HttpClient:
    """Keep-alive connections for every node, shared by the worker threads."""

    def __init__(self, *, connections_per_host: int = 4, hosts: int = 64) -> None:
        self._pool = urllib3.PoolManager(
            num_pools=max(hosts, 16),
            maxsize=connections_per_host,
            block=False,
            retries=False,
            headers=dict(_HEADERS),
        )

    def fetch(
        self,
        url: str,
        *,
        timeout: float,
        max_bytes: int,
        sink: Callable[[bytes], None],
        tls: TlsOptions | None = None,
    ) -> int:
        """GET ``url`` and hand each body chunk to ``sink``; returns the body size.

        Raises PollError with reason timeout, connect, http or too_large; whatever
        ``sink`` raises passes through. ``tls`` overrides how an https certificate is
        checked (its connections live in their own pool, keyed by those options).
        """
        deadline = time.monotonic() + timeout
        options = {
            "preload_content": False,
            "redirect": False,
            "retries": False,
            "timeout": urllib3.Timeout(connect=timeout, read=timeout, total=timeout),
        }
        try:
            if tls is None:
                response = self._pool.request("GET", url, **options)
            else:
                pool = self._pool.connection_from_url(url, pool_kwargs=_tls_kwargs(tls))
                response = pool.urlopen(
                    "GET", parse_url(url).request_uri, headers=dict(_HEADERS), **options
                )
        except NewConnectionError as exc:  # before its base class ConnectTimeoutError
            raise PollError("connect", _connect_detail(exc)) from None
        except (ConnectTimeoutError, ReadTimeoutError, TimeoutError):
            raise PollError("timeout", f"no answer within {timeout:g}s") from None
        except SSLError:
            raise PollError("connect", "TLS handshake failed") from None
        except (HTTPError, OSError) as exc:
            raise PollError("connect", _connect_detail(exc)) from None
        try:
            if response.status != 200:
                raise PollError("http", f"HTTP status {response.status}")
            encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
            if encoding not in ("", "identity"):
                # Asked for identity; decoding it anyway could blow past the cap in one read.
                raise PollError("parse", f"compressed answer ({encoding[:20]}) refused")
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > max_bytes:
                raise PollError(
                    "too_large", f"body of {length} bytes exceeds the cap of {max_bytes} bytes"
                )
            size = _stream(response, deadline, timeout, max_bytes, sink)
        except BaseException:
            response.close()  # a half-read connection cannot be reused
            raise
        finally:
            response.release_conn()
        return size

    def close(self) -> None:
        self._pool.clear()


def _tls_kwargs(tls: TlsOptions) -> dict[str, object]:
    if tls.insecure_skip_verify:
        # the operator chose no check for this source; say so once in the docs, not per poll
        urllib3.disable_warnings(InsecureRequestWarning)
        return {"cert_reqs": "CERT_NONE", "assert_hostname": False}
    return {"cert_reqs": "CERT_REQUIRED", "ca_certs": tls.ca_file}


def _stream(
    response: urllib3.BaseHTTPResponse,
    deadline: float,
    timeout: float,
    max_bytes: int,
    sink: Callable[[bytes], None],
) -> int:
    sock = _socket_of(response)
    total = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise PollError("timeout", f"body not complete within {timeout:g}s")
        try:
            if sock is not None:
                sock.settimeout(remaining)  # OSError when the peer's close already shut it
            chunk = response.read1(CHUNK)
        except (ReadTimeoutError, TimeoutError):
            raise PollError("timeout", f"body not complete within {timeout:g}s") from None
        except (HTTPError, OSError):
            raise PollError("connect", "connection broken while reading the body") from None
        if not chunk:
            if sock is not None:
                with contextlib.suppress(OSError):  # closed: the pool will not reuse it
                    sock.settimeout(timeout)  # the connection goes back to the pool
            return total
        total += len(chunk)
        if total > max_bytes:
            raise PollError("too_large", f"body exceeds the cap of {max_bytes} bytes")
        sink(chunk)


def _socket_of(response: urllib3.BaseHTTPResponse) -> socket.socket | None:
    sock = getattr(getattr(response, "connection", None), "sock", None)
    return sock if isinstance(sock, socket.socket) else None


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
