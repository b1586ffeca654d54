"""Plain-http GETs on kept-alive sockets: HttpClient's transport for ``http://`` URLs.

A urllib3 exchange costs about 0.3 ms of CPU on a 127.0.0.1 keep-alive socket where the
socket's own work is 0.04 ms (bench/bench_fetch.py): the PoolManager's routing, the
header block read through ``email.feedparser``, header objects, three ``read1`` calls.
At 1,000 nodes (2,000 exchanges a cycle) that was a third of the cycle's CPU. This is the
least HTTP/1.1 a GET of a node's page needs, with every check the urllib3 path has:

- one deadline for the whole exchange (exporter/fetch.py's Guard): the lookup and the
  connect bounded by the time left, then a blocking socket the Reaper shuts down when the
  deadline passes (a socket timeout would make CPython poll() before every recv: two
  GIL hand-offs a read, and with 64 workers that doubled the cycle's context switches);
- the answer's head read as http.client reads it: lines end in LF (CR before it
  dropped), at most 64 KiB a line and 100 header lines, folded lines joined, a line
  without a colon (or a name with a space) refused as malformed, 1xx heads skipped;
- the body framed as RFC 9112 section 6 says: no body for 204/304, chunked (its size
  lines bounded, extensions and trailers read and dropped), Content-Length (two that
  differ, or one that is not a number, refused: a smuggling shape), else up to close;
- request header values with CR or LF refused before anything is sent;
- a connection is kept only after a complete body that the server did not close
  (``Connection: close``, HTTP/1.0 without keep-alive, a body read to EOF), and an idle
  one (of a second or more) that became readable (closed or junk) is dropped before
  reuse; a GET that got no
  byte on a reused connection is sent once more on a new one (the server closed it
  between our check and our request: RFC 9112 section 9.3.1).

Errors are :class:`HttpFault` with the reason and text ``PollError`` carries; they never
hold the URL (its query is a checksum) nor what the server sent.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

CHUNK = 256 * 1024
MAX_LINE = 65536  # http.client's _MAXLINE
MAX_HEADERS = 100  # http.client's _MAXHEADERS
FRESH_SECONDS = 1.0  # an idle connection younger than this is reused without a check
_NAME = re.compile(rb"[!-9;-~]+\Z")  # a header name: printable, no colon, no space
_STATUS = re.compile(rb"HTTP/(\d)\.(\d) (\d{3})(?: [^\r\n]*)?\Z")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}\Z")


class HttpFault(Exception):
    """A failed exchange: ``reason`` (a PollError reason) and a message safe to log."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class Deadline(Exception):
    """The exchange's deadline passed (or the client is closing)."""


class Head:
    """Status, version and headers (names lower-cased; a repeated one keeps every value)."""

    __slots__ = ("headers", "status", "version")

    def __init__(self, version: int, status: int, headers: dict[bytes, list[bytes]]) -> None:
        self.version = version
        self.status = status
        self.headers = headers

    def get(self, name: bytes) -> bytes | None:
        values = self.headers.get(name)
        return None if values is None else b", ".join(values)


class Conn:
    """One socket and what has been read from it past the last answer's end."""

    __slots__ = ("buffer", "idle_since", "key", "sock")

    def __init__(self, sock: socket.socket, key: tuple[str, int]) -> None:
        self.sock = sock
        self.key = key
        self.buffer = b""
        self.idle_since = 0.0


class Pool:
    """Idle keep-alive connections per (host, port), newest first; thread-safe.

    At most ``per_host`` idle connections a host and ``hosts`` hosts (the least recently
    used host's connections closed first): more exchanges at once open more sockets,
    closed when they end.
    """

    def __init__(self, per_host: int, hosts: int) -> None:
        self._per_host = max(per_host, 1)
        self._hosts = max(hosts, 1)
        self._idle: OrderedDict[tuple[str, int], list[Conn]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: tuple[str, int]) -> Conn | None:
        while True:
            with self._lock:
                idle = self._idle.get(key)
                if not idle:
                    return None
                conn = idle.pop()
            # Idle for less than FRESH_SECONDS: no server idle timeout has passed (they are
            # seconds to minutes), and a close in that moment costs one resend (fetch.py);
            # the check is a syscall and a GIL hand-off per exchange, so it is skipped.
            if time.monotonic() - conn.idle_since < FRESH_SECONDS or _alive(conn.sock):
                return conn
            conn.sock.close()

    def give(self, conn: Conn) -> None:
        closing: list[Conn] = []
        conn.idle_since = time.monotonic()
        with self._lock:
            idle = self._idle.setdefault(conn.key, [])
            self._idle.move_to_end(conn.key)
            if len(idle) < self._per_host:
                idle.append(conn)
            else:
                closing.append(conn)
            while len(self._idle) > self._hosts:
                closing.extend(self._idle.popitem(last=False)[1])
        for old in closing:
            old.sock.close()

    def clear(self) -> None:
        with self._lock:
            conns = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for conn in conns:
            conn.sock.close()


def _alive(sock: socket.socket) -> bool:
    """An idle connection with nothing to read: a readable one was closed (EOF) or holds
    bytes no request asked for; either way it is not reused."""
    try:  # the socket blocks (the Reaper bounds it): one syscall, no poll before it
        return not sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return True
    except OSError:
        return False


def split_url(url: str) -> tuple[str, int, str, str]:
    """(host, port, request target, Host header) of an ``http://`` URL."""
    rest = url[7:] if url[:7].lower() == "http://" else url
    cut = len(rest)
    for mark in "/?#":
        at = rest.find(mark)
        if 0 <= at < cut:
            cut = at
    authority, target = rest[:cut], rest[cut:].split("#", 1)[0]
    if "@" in authority:
        raise HttpFault("connect", "credentials in the URL are not sent")
    if authority.startswith("["):
        close = authority.find("]")
        host, port_text = authority[1:close], authority[close + 2 :]
    else:
        host, _, port_text = authority.partition(":")
    if not host or (port_text and not port_text.isdigit()):
        raise HttpFault("connect", "not a valid http URL")
    port = int(port_text) if port_text else 80
    if not target.startswith("/"):
        target = "/" + target
    return host, port, target, authority


def request_bytes(target: str, authority: str, headers: Mapping[str, str]) -> bytes:
    """The GET's head; a header name or value that would split it is refused."""
    lines = [f"GET {target} HTTP/1.1", f"Host: {authority}"]
    for name, value in headers.items():
        if not _NAME.match(name.encode("latin-1", "replace")) or any(c in value for c in "\r\n\0"):
            raise HttpFault("connect", "a request header holds a line break")
        lines.append(f"{name}: {value}")
    try:
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    except UnicodeEncodeError:
        raise HttpFault("connect", "a request header is not latin-1") from None


class Exchange:
    """Reads one answer from ``conn`` under ``remaining`` (seconds left, ≤ 0: expired)."""

    __slots__ = ("conn", "expired", "got_bytes", "remaining")

    def __init__(
        self, conn: Conn, remaining: Callable[[], float], expired: Callable[[], bool]
    ) -> None:
        self.conn = conn
        self.remaining = remaining
        self.expired = expired
        self.got_bytes = False

    def recv(self) -> bytes:
        """The next bytes from the socket ('' at EOF) within the deadline."""
        left = self.remaining()
        if left <= 0 or self.expired():
            raise Deadline
        try:
            data = self.conn.sock.recv(CHUNK)
        except TimeoutError:
            raise Deadline from None
        except OSError:
            if self.expired():
                raise Deadline from None
            raise HttpFault("connect", "connection broken while reading") from None
        if not data and self.expired():  # the Reaper's shutdown reads as EOF
            raise Deadline
        if data:
            self.got_bytes = True
        return data

    def head(self) -> Head:
        """The final (non-1xx) answer's head."""
        while True:
            head = self._one_head()
            if not 100 <= head.status < 200:
                return head

    def _one_head(self) -> Head:
        conn = self.conn
        data, start, status_seen = conn.buffer, 0, False
        while True:
            if not status_seen and b"\n" in data:  # refuse a banner at once, as http.client
                # the line alone: a split would copy the body bytes after it too
                _parse_status(data[: data.index(b"\n")].rstrip(b"\r"))
                status_seen = True
            # the usual end first; a bare-LF end only before it (a whole body is no head)
            crlf = data.find(b"\n\r\n", start)
            end = data.find(b"\n\n", start, len(data) if crlf < 0 else crlf + 1)
            if end < 0 and crlf >= 0:
                end, stop = crlf, crlf + 3
            else:
                stop = end + 2
            if end >= 0:
                conn.buffer = data[stop:]
                return _parse_head(data[: end + 1])
            _check_partial_head(data)
            start = max(len(data) - 2, 0)
            chunk = self.recv()
            if not chunk:
                if not data.strip():
                    raise HttpFault("connect", "connection closed without an answer")
                if b"\n" not in data:
                    _parse_status(data.rstrip(b"\r\n"))  # a banner, not a status line
                raise HttpFault("connect", "connection closed in the middle of the headers")
            data += chunk

    def body(self, head: Head, max_bytes: int, sink: Callable[[bytes], None]) -> tuple[int, bool]:
        """Stream the body into ``sink``: (its size, whether the connection can be kept)."""
        status, version = head.status, head.version
        connection = (head.get(b"connection") or b"").lower()
        keep = b"close" not in connection and (version >= 11 or b"keep-alive" in connection)
        if status in (204, 304):
            return 0, keep
        encoding = head.get(b"transfer-encoding")
        if encoding is not None:
            codings = [c.strip() for c in encoding.lower().split(b",")]
            if codings[-1] != b"chunked":  # RFC 9112 6.3: read until the server closes
                return self._until_close(max_bytes, sink), False
            return self._chunked(max_bytes, sink), keep
        lengths = {v.strip() for v in head.headers.get(b"content-length", ())}
        if len(lengths) > 1:
            raise HttpFault("http", "conflicting Content-Length headers")
        if lengths:
            (text,) = lengths
            if not text.isdigit():
                raise HttpFault("http", "malformed Content-Length header")
            length = int(text)
            if length > max_bytes:
                raise HttpFault(
                    "too_large", f"body of {length} bytes exceeds the cap of {max_bytes} bytes"
                )
            return self._exactly(length, sink), keep
        return self._until_close(max_bytes, sink), False

    def _take_buffer(self) -> bytes:
        data, self.conn.buffer = self.conn.buffer, b""
        return data

    def _exactly(self, length: int, sink: Callable[[bytes], None]) -> int:
        left = length
        data = self._take_buffer()
        while True:
            if data:
                if len(data) > left:  # bytes past the body: not a clean keep-alive
                    self.conn.buffer = data[left:]
                    data = data[:left]
                left -= len(data)
                sink(data)
            if left <= 0:
                return length
            data = self.recv()
            if not data:
                raise HttpFault("connect", "connection broken while reading the body")

    def _until_close(self, max_bytes: int, sink: Callable[[bytes], None]) -> int:
        total = 0
        data = self._take_buffer()
        while True:
            if data:
                total += len(data)
                if total > max_bytes:
                    raise HttpFault("too_large", f"body exceeds the cap of {max_bytes} bytes")
                sink(data)
            data = self.recv()
            if not data:
                return total

    def _line(self) -> bytes:
        """One line of the chunked framing (size line or trailer), at most MAX_LINE."""
        conn = self.conn
        while True:
            end = conn.buffer.find(b"\n")
            if end >= 0:
                line, conn.buffer = conn.buffer[:end], conn.buffer[end + 1 :]
                if len(line) > MAX_LINE:
                    raise HttpFault("http", f"malformed chunked body: a line over {MAX_LINE} bytes")
                return line.rstrip(b"\r")
            if len(conn.buffer) > MAX_LINE:
                raise HttpFault("http", f"malformed chunked body: a line over {MAX_LINE} bytes")
            data = self.recv()
            if not data:
                raise HttpFault("connect", "connection broken while reading the body")
            conn.buffer += data

    def _chunked(self, max_bytes: int, sink: Callable[[bytes], None]) -> int:
        total = 0
        while True:
            size_text = self._line().split(b";", 1)[0].strip()
            if not _CHUNK_SIZE.match(size_text):
                raise HttpFault("http", "malformed chunked body: bad chunk size")
            size = int(size_text, 16)
            if size == 0:
                for _ in range(MAX_HEADERS + 1):  # trailer fields, dropped
                    if not self._line():
                        return total
                raise HttpFault("http", f"headers too large: more than {MAX_HEADERS} trailer lines")
            total += size
            if total > max_bytes:
                raise HttpFault("too_large", f"body exceeds the cap of {max_bytes} bytes")
            self._exactly(size, sink)
            if self._line():
                raise HttpFault("http", "malformed chunked body: no line end after a chunk")


def _parse_status(line: bytes) -> tuple[int, int]:
    match = _STATUS.match(line)
    if match is None:
        raise HttpFault("http", "not an HTTP answer (bad status line)")
    major, minor, status = match.groups()
    return int(major) * 10 + int(minor), int(status)


def _check_partial_head(data: bytes) -> None:
    """Refuse a head still arriving that already breaks a limit (so it never grows)."""
    lines = data.count(b"\n")
    if lines > MAX_HEADERS + 1:
        raise HttpFault("http", f"headers too large: more than {MAX_HEADERS} header lines")
    last = data.rfind(b"\n")
    if len(data) - last - 1 > MAX_LINE:
        what = "status line" if last < 0 else "a header line"
        raise HttpFault("http", f"headers too large: {what} over {MAX_LINE} bytes")


def _parse_head(block: bytes) -> Head:
    lines = block.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if len(lines) > MAX_HEADERS + 1:
        raise HttpFault("http", f"headers too large: more than {MAX_HEADERS} header lines")
    for number, line in enumerate(lines):
        if len(line) > MAX_LINE:
            what = "status line" if number == 0 else "a header line"
            raise HttpFault("http", f"headers too large: {what} over {MAX_LINE} bytes")
    version, status = _parse_status(lines[0].rstrip(b"\r"))
    headers: dict[bytes, list[bytes]] = {}
    last: list[bytes] | None = None
    for raw in lines[1:]:
        line = raw.rstrip(b"\r")
        if line[:1] in (b" ", b"\t"):
            if last is None:
                raise HttpFault("http", "malformed header line")
            last[-1] = last[-1] + b" " + line.strip()  # obsolete line folding
            continue
        name, colon, value = line.partition(b":")
        if not colon or not _NAME.match(name):
            raise HttpFault("http", "malformed header line")
        last = headers.setdefault(name.lower(), [])
        last.append(value.strip())
    return Head(version, status, headers)
