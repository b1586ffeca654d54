"""The exporter's HTTP server holds every client to a budget: connections, head size and
time, methods; and its memory stays flat under a header flood (RSS of the real process)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from confscale.exporter.server import MAX_HEAD_BYTES, MAX_REQUEST_LINE, make_bounded_server
from harness import wait_until
from test_exporter_support import closed_port_url, exporter

BIG = b"m" * (32 << 20)  # far more than the loopback socket buffers hold


def hello(environ: dict, start) -> list[bytes]:
    if environ["PATH_INFO"] == "/big":
        start("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(BIG)))])
        return [BIG]
    start("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"hi\n"]


@contextlib.contextmanager
def bounded(**limits: float) -> Iterator[tuple[str, int]]:
    server = make_bounded_server("127.0.0.1", 0, hello, **limits)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.server_address[:2]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def exchange(address: tuple[str, int], data: bytes) -> bytes:
    """Send ``data`` and read the answer until the server closes (bounded)."""
    with socket.create_connection(address, timeout=10) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(data)
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                answer += chunk
    return answer


def test_an_oversized_request_line_or_head_is_refused() -> None:
    with bounded() as address:
        line = b"GET /" + b"a" * MAX_REQUEST_LINE + b" HTTP/1.1\r\n\r\n"
        assert exchange(address, line).startswith(b"HTTP/1.0 414")
        # far past the budget: the server must drain the rest, or closing with unread
        # input resets the connection and the client never reads the 431
        headers = b"".join(b"X-%d: %s\r\n" % (i, b"v" * 3000) for i in range(64))
        assert len(headers) > 5 * MAX_HEAD_BYTES
        answer = exchange(address, b"GET / HTTP/1.1\r\n" + headers + b"\r\n")
        assert answer.startswith(b"HTTP/1.0 431")
        assert exchange(address, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").endswith(b"hi\n")


def test_a_client_dripping_its_head_is_cut_at_the_head_deadline() -> None:
    with bounded(head_timeout=0.5) as address, socket.create_connection(address) as sock:
        sock.settimeout(10)
        sock.sendall(b"GET / HTTP/1.1\r\n")
        cut = False
        for _ in range(200):  # one header byte per 0.05 s: each recv is quick, the whole is not
            try:
                sock.sendall(b"X")
            except OSError:
                cut = True
                break
            threading.Event().wait(0.05)
        if not cut:
            sock.settimeout(5)
            cut = sock.recv(1) == b""
        assert cut, "the server waited for the whole head"


def test_connections_are_bounded_and_idle_ones_time_out() -> None:
    with bounded(max_connections=3, head_timeout=2) as address:
        idle = [socket.create_connection(address, timeout=10) for _ in range(3)]
        wait_until(lambda: exchange(address, b"").startswith(b"HTTP/1.0 503"), timeout=10)
        # the idle ones are cut at the head deadline and their slots free up
        for sock in idle:
            assert sock.recv(1) == b""
            sock.close()
        answer = wait_until(
            lambda: exchange(address, b"GET / HTTP/1.0\r\n\r\n"), timeout=10, what="a free slot"
        )
        assert answer.endswith(b"hi\n")


def test_a_client_that_never_reads_the_answer_frees_its_slot() -> None:
    limits = {"max_connections": 1, "head_timeout": 5, "write_timeout": 0.5}
    with bounded(**limits) as address, socket.create_connection(address, timeout=10) as stuck:
        stuck.sendall(b"GET /big HTTP/1.0\r\n\r\n")  # and never reads a byte
        answer = wait_until(
            lambda: exchange(address, b"GET / HTTP/1.0\r\n\r\n").endswith(b"hi\n"),
            timeout=20,
            what="the slot held by a client that does not read",
        )
    assert answer


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    path: Path = tmp_path_factory.mktemp("server") / "pool.yml"
    path.write_text(
        "interval: 30s\ntimeout: 500ms\n"
        f"nodes: [{{name: dead, jitsi: {{url: '{closed_port_url('/colibri/stats')}'}}}}]\n"
    )
    with exporter(path) as proc:
        yield proc


@pytest.mark.parametrize("path", ["/metrics", "/probe?node=dead", "/-/healthy", "/"])
def test_head_answers_the_get_head_without_a_body(running, path: str) -> None:
    got = requests.get(f"{running.url}{path}", timeout=10)
    host, port = running.url.removeprefix("http://").rsplit(":", 1)
    raw = exchange((host, int(port)), f"HEAD {path} HTTP/1.0\r\n\r\n".encode())
    head, _, body = raw.partition(b"\r\n\r\n")
    assert got.status_code == 200 and head.startswith(b"HTTP/1.0 200")
    assert body == b"", "HEAD sent a body"
    assert f"Content-Type: {got.headers['Content-Type']}".encode() in head
    assert b"Content-Length: 0" not in head


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("POST", "/metrics", "GET, HEAD"),
        ("DELETE", "/probe?node=dead", "GET, HEAD"),
        ("PUT", "/metrics", "GET, HEAD"),
        ("GET", "/-/reload", "POST"),
    ],
)
def test_other_methods_are_405_with_allow(running, method: str, path: str, allow: str) -> None:
    response = requests.request(method, f"{running.url}{path}", timeout=10)
    assert response.status_code == 405
    assert response.headers["Allow"] == allow


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_memory_stays_flat_under_a_header_flood(running) -> None:
    """100 connections each sending 100 header lines of 16 KiB, held open unfinished:
    http.server alone buffers and parses all of it (gigabytes); the budget cuts each at
    32 KiB and refuses connections past the limit."""
    pid = running.proc.popen.pid
    requests.get(f"{running.url}/metrics", timeout=10)
    before = rss_bytes(pid)
    line = b"X-Flood: " + b"f" * 16_000 + b"\r\n"
    held: list[socket.socket] = []
    try:
        for _ in range(100):
            sock = socket.create_connection(("127.0.0.1", int(running.url.rsplit(":", 1)[1])))
            sock.settimeout(5)
            held.append(sock)
            with contextlib.suppress(OSError):
                sock.sendall(b"GET /metrics HTTP/1.1\r\n" + line * 100)  # no final blank line
        peak = rss_bytes(pid)
    finally:
        for sock in held:
            sock.close()
    assert running.proc.alive()
    print(f"RSS before {before >> 20} MiB, under the flood {peak >> 20} MiB")
    assert peak - before < 64 * 1024 * 1024, f"RSS grew by {(peak - before) >> 20} MiB"
    assert requests.get(f"{running.url}/-/healthy", timeout=10).status_code == 200


def test_an_app_error_is_one_log_line_not_a_traceback_on_stderr(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    def failing(environ: dict, start) -> list[bytes]:
        raise ValueError("from http://h/api/getMeetings?checksum=5f1c0ffee")

    server = make_bounded_server("127.0.0.1", 0, failing)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        answer = exchange(server.server_address[:2], b"GET / HTTP/1.0\r\n\r\n")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
    out, err = capfd.readouterr()
    assert answer.startswith(b"HTTP/1.0 500")
    assert "Traceback" not in err and "5f1c0ffee" not in out + err + caplog.text
    assert "request failed" in caplog.text
