"""Hostile nodes on raw sockets: answers no real server sends, each as one behaviour.

``HostileNode`` accepts on 127.0.0.1, records every request head it receives (so a test
can check that no checksum that was sent shows up anywhere) and runs its behaviour per
connection in a daemon thread, bounded in time: a behaviour that drips or waits stops
after ``hold`` seconds (counted in ``held_out``: a client that waited that long had no
deadline of its own), and ``close`` ends every connection. This module holds no tests.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable

Behaviour = Callable[["Conn"], None]
GET_MEETINGS = (
    b"<response><returncode>SUCCESS</returncode><meetings/>"
    b"<messageKey>noMeetings</messageKey></response>"
)


class Conn:
    """One accepted connection: the socket, and when the behaviour must give up."""

    def __init__(self, node: HostileNode, sock: socket.socket) -> None:
        self.node = node
        self.sock = sock
        self.stop = node._stop
        self.until = time.monotonic() + node.hold

    def alive(self) -> bool:
        if self.stop.is_set():
            return False
        if time.monotonic() < self.until:
            return True
        self.node._held_out()  # counted before the socket closes: the client sees it first
        return False

    def drip(self, data: bytes, pause: float) -> None:
        """``data`` one byte per ``pause`` seconds, until it is sent or time is up."""
        for index in range(len(data)):
            if not self.alive():
                return
            self.sock.sendall(data[index : index + 1])
            self.stop.wait(pause)

    def wait_out(self) -> None:
        """Keep the connection open and silent until time is up."""
        while self.alive():
            self.stop.wait(min(0.1, max(self.until - time.monotonic(), 0)))


class HostileNode:
    """A TCP server on 127.0.0.1 running ``behaviour`` for every connection."""

    def __init__(self, behaviour: Behaviour, *, hold: float = 20.0, read_head: bool = True) -> None:
        self.behaviour = behaviour
        self.hold = hold
        self.read_head = read_head  # False: answer whatever arrives first (a TLS hello)
        self.requests: list[bytes] = []
        self.held_out = 0  # connections the node gave up on itself: the client outwaited it
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/"

    def checksums(self) -> set[str]:
        """Every checksum value a client sent to this node."""
        found: set[str] = set()
        for head in self.requests:
            found.update(re.findall(rb"checksum=([0-9A-Za-z]+)", head))
        return {value.decode() for value in found}

    def _held_out(self) -> None:
        with self._lock:
            self.held_out += 1

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._conns.append(conn)
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, sock: socket.socket) -> None:
        with sock, contextlib.suppress(OSError):
            sock.settimeout(self.hold)
            head = b"" if self.read_head else sock.recv(65536)
            while self.read_head and b"\r\n\r\n" not in head and len(head) < 65536:
                data = sock.recv(65536)
                if not data:
                    return
                head += data
            with self._lock:
                self.requests.append(head)
            self.behaviour(Conn(self, sock))

    def close(self) -> None:
        self._stop.set()
        self._acceptor.join(5)
        self._listener.close()
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> HostileNode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- behaviours ------------------------------------------------------------------------


def header_drip(pause: float = 0.1) -> Behaviour:
    """A status line at once, then one header byte per ``pause`` seconds, for ever."""

    def run(conn: Conn) -> None:
        conn.sock.sendall(b"HTTP/1.1 200 OK\r\n")
        conn.drip(b"X-Drip: " + b"a" * 100_000, pause)

    return run


def status_drip(pause: float = 0.1) -> Behaviour:
    """The status line itself, one byte per ``pause`` seconds."""
    return lambda conn: conn.drip(b"HTTP/1.1 200 OK" + b" " * 100_000, pause)


def body_drip(pause: float = 0.05) -> Behaviour:
    """Headers at once, then the body one byte per ``pause`` seconds."""

    def run(conn: Conn) -> None:
        body = GET_MEETINGS * 50
        head = f"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {len(body)}\r\n\r\n"
        conn.sock.sendall(head.encode())
        conn.drip(body, pause)

    return run


def head_then(status: bytes, headers: list[bytes], body: bytes = GET_MEETINGS) -> Behaviour:
    """A complete answer with the given status line and raw header lines."""

    def run(conn: Conn) -> None:
        conn.sock.sendall(
            status + b"\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body
        )

    return run


def malformed_header() -> Behaviour:
    """A valid BBB answer whose head holds one line with no colon."""
    return head_then(
        b"HTTP/1.1 200 OK",
        [
            b"Content-Type: text/xml",
            b"this line has no colon",
            f"Content-Length: {len(GET_MEETINGS)}".encode(),
            b"Connection: close",
        ],
    )


def many_headers(count: int = 200) -> Behaviour:
    return head_then(b"HTTP/1.1 200 OK", [f"X-H{i}: v".encode() for i in range(count)])


def huge_header(size: int = 200_000) -> Behaviour:
    return head_then(b"HTTP/1.1 200 OK", [b"X-Huge: " + b"h" * size])


def lying_length(extra: int = 1000) -> Behaviour:
    """Content-Length promises more than is sent, then the connection stays open."""

    def run(conn: Conn) -> None:
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(GET_MEETINGS) + extra}\r\n\r\n"
        conn.sock.sendall(head.encode() + GET_MEETINGS)
        conn.wait_out()

    return run


def short_length_then_close(extra: int = 1000) -> Behaviour:
    """Content-Length promises more than is sent, then the connection closes."""

    def run(conn: Conn) -> None:
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(GET_MEETINGS) + extra}\r\n\r\n"
        conn.sock.sendall(head.encode() + GET_MEETINGS)

    return run


def redirect(location: str) -> Behaviour:
    return head_then(
        b"HTTP/1.1 302 Found",
        [f"Location: {location}".encode(), b"Content-Length: 0", b"Connection: close"],
        b"",
    )


def not_http() -> Behaviour:
    """Something that is not HTTP at all (an SSH banner)."""
    return lambda conn: conn.sock.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n")


def plain_http() -> Behaviour:
    """A plain HTTP answer to whatever was sent (use with ``read_head=False``): an https
    client gets no TLS at all, as from nginx answering a hello on a plain port."""
    return head_then(b"HTTP/1.1 400 Bad Request", [b"Content-Length: 0", b"Connection: close"], b"")


def silence() -> Behaviour:
    """Accepts, reads the request, never answers (until ``hold`` or close)."""
    return lambda conn: conn.wait_out()


def https_url(url: str) -> str:
    return url.replace("http://", "https://", 1)


def slow_answer(delay: float) -> Behaviour:
    """A valid, empty getMeetings answer after ``delay`` seconds."""
    answer = head_then(
        b"HTTP/1.1 200 OK",
        [b"Content-Type: text/xml", f"Content-Length: {len(GET_MEETINGS)}".encode()],
    )

    def run(conn: Conn) -> None:
        conn.stop.wait(delay)
        answer(conn)

    return run
