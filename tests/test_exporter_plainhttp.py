"""The plain-http transport (exporter/plainhttp.py) through HttpClient, on raw sockets.

Each server here is a HostileNode (tests/hostile.py) whose behaviour writes exact bytes, so
every framing case is what the test says it is: keep-alive reuse, chunked bodies, heads
the way http.client reads them, connections the server closes, and the refusals.
"""

from __future__ import annotations

import logging
import threading

import hostile
import pytest
from confscale.exporter import plainhttp
from confscale.exporter.fetch import HttpClient, PollError

BODY = b"<response><returncode>SUCCESS</returncode></response>"


def answer(body: bytes = BODY, *, head: list[bytes] | None = None, status: bytes = b"200 OK"):
    lines = [b"HTTP/1.1 " + status, *(head or [b"Content-Length: %d" % len(body)])]
    return b"".join(line + b"\r\n" for line in lines) + b"\r\n" + body


class Script:
    """A behaviour answering the requests of each connection with ``answers`` in turn
    (one list per connection, the last list for the rest; after a list its last answer
    again), counting connections and requests; a closing connection closes after its list."""

    def __init__(self, *answers: list[bytes], close: bool | set[int] = False) -> None:
        self.answers = answers
        self.close = close  # True: every connection closes after its answers; or which
        self.connections = 0
        self.heads: list[bytes] = []
        self._lock = threading.Lock()

    def __call__(self, conn: hostile.Conn) -> None:
        with self._lock:
            number = self.connections
            self.connections += 1
        replies = self.answers[min(number, len(self.answers) - 1)]
        closing = self.close is True or bool(self.close and number in self.close)
        for index in range(64):  # the list in turn, then its last answer again (bounded)
            if index:  # the next request on this connection
                if closing and index >= len(replies):
                    return
                head = b""
                while b"\r\n\r\n" not in head:
                    data = conn.sock.recv(65536)
                    if not data:
                        return
                    head += data
                self.heads.append(head)
            else:
                self.heads.append(conn.node.requests[-1])
            conn.sock.sendall(replies[min(index, len(replies) - 1)])
            if index + 1 >= len(replies) and b"408" in replies[-1]:
                break  # bytes nobody asked for were sent: answer nothing more here
        if not closing:
            conn.wait_out()


def get(client: HttpClient, url: str, **options) -> bytes:
    return client.get(url, timeout=options.pop("timeout", 3), max_bytes=1 << 20, **options)[1]


def test_one_connection_serves_every_get_and_the_head_is_as_sent() -> None:
    script = Script([answer()] * 5)
    client = HttpClient()
    with hostile.HostileNode(script, hold=10) as node:
        url = node.url
        for _ in range(5):
            assert get(client, url + "api?checksum=abc") == BODY
        client.close()
    assert script.connections == 1 and len(script.heads) == 5
    first = script.heads[0].split(b"\r\n")
    assert first[0] == b"GET /api?checksum=abc HTTP/1.1"
    assert first[1] == b"Host: " + url[7:-1].encode()  # the URL's authority
    assert b"Accept-Encoding: identity" in first


def test_chunked_body_with_extensions_and_trailers_then_reuse() -> None:
    chunked = answer(
        b"5;name=x\r\n<resp\r\n0A\r\nonse>12345\r\n0\r\nX-Trailer: t\r\n\r\n",
        head=[b"Transfer-Encoding: chunked"],
    )
    script = Script([chunked, answer()])
    client = HttpClient()
    with hostile.HostileNode(script, hold=10) as node:
        assert get(client, node.url) == b"<response>12345"
        assert get(client, node.url) == BODY  # the framing ended exactly: reused
        client.close()
    assert script.connections == 1


def test_lf_only_head_folded_line_and_an_interim_answer() -> None:
    reply = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 200 OK\nX-Folded: one\n two\nContent-Length: %d\n\n" % len(BODY) + BODY
    )
    client = HttpClient()
    with hostile.HostileNode(Script([reply]), hold=10) as node:
        assert get(client, node.url) == BODY
        client.close()


@pytest.mark.parametrize(
    "reply",
    [
        answer(head=[b"Content-Length: %d" % len(BODY), b"Connection: close"]),
        b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY,
        answer(head=[]),  # no length: the body is what comes before the server closes
    ],
    ids=["connection-close", "http-1.0", "body-to-close"],
)
def test_an_answer_that_closes_is_not_reused(reply: bytes) -> None:
    script = Script([reply], close=True)
    client = HttpClient()
    with hostile.HostileNode(script, hold=10) as node:
        assert get(client, node.url) == BODY
        assert get(client, node.url) == BODY
        client.close()
    assert script.connections == 2


def test_an_idle_connection_the_server_closed_or_wrote_to_is_replaced() -> None:
    # first connection: an answer, then the server closes it (a keep-alive timeout);
    # second: an answer followed by bytes nobody asked for (a 408 some servers send)
    script = Script(
        [answer()], [answer() + answer(status=b"408 Request Timeout")], [answer()], close={0}
    )
    client = HttpClient()
    with hostile.HostileNode(script, hold=10) as node:
        for _ in range(3):
            assert get(client, node.url) == BODY
        client.close()
    assert script.connections == 3


@pytest.mark.parametrize(
    ("reply", "reason", "words"),
    [
        (answer(head=[b"Content-Length: 10", b"Content-Length: 12"]), "http", "conflicting"),
        (answer(head=[b"Content-Length: 1e3"]), "http", "malformed Content-Length"),
        (answer(b"zz\r\n", head=[b"Transfer-Encoding: chunked"]), "http", "bad chunk size"),
        (answer(b"0x5\r\n", head=[b"Transfer-Encoding: chunked"]), "http", "bad chunk size"),
        (answer(b"5\r\nabcdeXX\r\n", head=[b"Transfer-Encoding: chunked"]), "http", "no line end"),
        (answer(head=[b"Content-Length: 9999999"]), "too_large", "exceeds the cap"),
        (answer(b"FFFF\r\n", head=[b"Transfer-Encoding: chunked"]), "too_large", "cap"),
        (answer(head=[b"Content-Encoding: gzip", b"Content-Length: 3"]), "parse", "gzip"),
        (answer(head=[b" X-Starts-Folded: v"]), "http", "malformed header"),
        (answer(head=[b"Bad Name: v"]), "http", "malformed header"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n", "connect", "middle of the headers"),
        (b"", "connect", "without an answer"),
    ],
    ids=[
        "two-lengths",
        "bad-length",
        "bad-chunk",
        "hex-prefix-chunk",
        "chunk-overrun",
        "length-over-cap",
        "chunks-over-cap",
        "compressed",
        "folded-first",
        "space-in-name",
        "closed-in-head",
        "closed-at-once",
    ],
)
def test_refusals_name_their_reason(reply: bytes, reason: str, words: str) -> None:
    client = HttpClient()
    with hostile.HostileNode(Script([reply], close=True), hold=10) as node:
        with pytest.raises(PollError) as failed:
            client.get(node.url + "?checksum=secret123", timeout=3, max_bytes=1000)
        client.close()
    assert failed.value.reason == reason and words in failed.value.detail, failed.value
    assert "secret123" not in str(failed.value)


def test_a_header_value_with_a_line_break_is_never_sent() -> None:
    script = Script([answer()])
    client = HttpClient()
    with hostile.HostileNode(script, hold=10) as node:
        with pytest.raises(PollError) as failed:
            get(client, node.url, headers={"Authorization": "Basic x\r\nX-Injected: 1"})
        assert get(client, node.url) == BODY
        client.close()
    assert failed.value.reason == "connect" and "line break" in failed.value.detail
    assert all(b"X-Injected" not in head for head in script.heads)


def test_idle_connections_are_bounded_per_host() -> None:
    script = Script([answer()])
    client = HttpClient(connections_per_host=2)
    barrier = threading.Barrier(4)
    with hostile.HostileNode(script, hold=10) as node:

        def fetch() -> None:
            barrier.wait(5)
            assert get(client, node.url) == BODY

        workers = [threading.Thread(target=fetch) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(10)
        opened = script.connections
        for _ in range(4):  # sequential: the two kept connections serve them all
            assert get(client, node.url) == BODY
        client.close()
    assert 2 <= opened <= 4 and script.connections == opened


def test_the_debug_line_names_the_request_without_its_query(caplog) -> None:
    client = HttpClient()
    with hostile.HostileNode(Script([answer()]), hold=10) as node:
        with caplog.at_level(logging.DEBUG, logger="confscale.exporter.fetch"):
            get(client, node.url + "api/getMeetings?checksum=deadbeef")
        client.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "confscale.exporter.fetch"]
    assert any("getMeetings?<redacted>" in line and " 200 " in line for line in lines)
    assert not any("deadbeef" in line for line in lines)


def test_an_idle_connection_that_got_bytes_later_is_not_reused() -> None:
    """Junk that arrives after the answer (a server's 408 at its idle timeout) is found
    by the check before reuse once the connection has been idle FRESH_SECONDS."""
    late = answer(status=b"408 Request Timeout")

    def first_connection(conn: hostile.Conn) -> None:
        conn.sock.sendall(answer())
        conn.stop.wait(0.2)
        conn.sock.sendall(late)
        conn.wait_out()

    script = Script([answer()])
    behaviours = iter([first_connection])

    def run(conn: hostile.Conn) -> None:
        next(behaviours, script)(conn)

    client = HttpClient()
    with hostile.HostileNode(run, hold=10) as node:
        assert get(client, node.url) == BODY
        threading.Event().wait(plainhttp.FRESH_SECONDS + 0.3)
        assert get(client, node.url) == BODY  # not the 408: a new connection
        client.close()
    assert script.connections == 1  # the second GET went to a connection of its own
