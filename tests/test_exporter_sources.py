"""Sources over real sockets: deadline, byte cap, failures; host figures from a real
prometheus-node-exporter and from /proc."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confscale.exporter.bbb import poll_bbb
from confscale.exporter.config import BbbSource, HostSource, JitsiSource, Secret
from confscale.exporter.fetch import HttpClient, PollError
from confscale.exporter.host import is_uplink, poll_host, read_proc
from confscale.exporter.jitsi import poll_jitsi
from harness import fixture_path, node_exporter
from localhttp import serving

Behaviour = Callable[[socket.socket], None]


@contextlib.contextmanager
def raw_server(behaviour: Behaviour) -> Iterator[str]:
    """A real TCP server on 127.0.0.1 running ``behaviour`` per connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()
    workers: list[threading.Thread] = []

    def handle(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(10)
            conn.recv(65536)  # the request; its content does not matter here
            behaviour(conn)

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            worker = threading.Thread(target=handle, args=(conn,), daemon=True)
            worker.start()
            workers.append(worker)

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    finally:
        stop.set()
        acceptor.join(5)
        listener.close()
        for worker in workers:
            worker.join(10)


def answer(
    body: bytes, *, status: str = "200 OK", length: bool = True, content_type: str = "text/xml"
) -> Behaviour:
    def run(conn: socket.socket) -> None:
        head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nConnection: close\r\n"
        if length:
            head += f"Content-Length: {len(body)}\r\n"
        conn.sendall(head.encode() + b"\r\n" + body)

    return run


def drip(body: bytes, pause: float, stop_after: float) -> Behaviour:
    """Headers at once, then the body a few bytes at a time: each read is quick."""

    def run(conn: socket.socket) -> None:
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode())
        deadline = time.monotonic() + stop_after
        for start in range(0, len(body), 4):
            if time.monotonic() > deadline:
                return
            conn.sendall(body[start : start + 4])
            time.sleep(pause)

    return run


def hold(seconds: float) -> Behaviour:
    def run(conn: socket.socket) -> None:
        time.sleep(seconds)

    return run


def close_at_once(conn: socket.socket) -> None:
    return


def bbb(url: str) -> BbbSource:
    return BbbSource(url=url, secret=Secret("test-secret"), checksum="sha256")


FIXTURE = "getMeetings_apiphp_3meetings_breakout.xml"


def poll_reason(
    behaviour: Behaviour, *, timeout: float = 1.0, max_bytes: int = 1 << 20
) -> str | None:
    client = HttpClient()
    with raw_server(behaviour) as url:
        try:
            poll_bbb(client, bbb(url), timeout=timeout, max_bytes=max_bytes)
        except PollError as exc:
            return exc.reason
        finally:
            client.close()
    return None


def test_a_good_answer_parses() -> None:
    body = fixture_path("bbb", FIXTURE).read_bytes()
    with raw_server(answer(body)) as url:
        figures = poll_bbb(HttpClient(), bbb(url), timeout=2, max_bytes=1 << 20)
    assert figures.meetings == 3 and figures.video_fanout == 12


def test_slow_drip_is_cut_at_the_deadline() -> None:
    # Every single read returns well within the timeout, the whole body would take ~10 s:
    # only a total deadline turns this into a timeout instead of a (late) success.
    body = fixture_path("bbb", FIXTURE).read_bytes()
    assert poll_reason(drip(body, pause=0.01, stop_after=15), timeout=1.0) == "timeout"


def test_no_answer_is_a_timeout() -> None:
    assert poll_reason(hold(1.5), timeout=0.5) == "timeout"


def test_closed_without_answer_is_connect() -> None:
    assert poll_reason(close_at_once) == "connect"


def test_refused_port_is_connect() -> None:
    port = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{port.getsockname()[1]}/"
    port.close()
    with pytest.raises(PollError) as raised:
        poll_bbb(HttpClient(), bbb(url), timeout=1, max_bytes=1 << 20)
    assert raised.value.reason == "connect"


def test_http_error_status() -> None:
    assert poll_reason(answer(b"<html>bad gateway</html>", status="502 Bad Gateway")) == "http"


def test_html_page_with_200_is_parse() -> None:
    page = b"<!DOCTYPE html><html><body><h1>Maintenance</h1></body></html>"
    assert poll_reason(answer(page, content_type="text/html")) == "parse"


@pytest.mark.parametrize("length", [True, False], ids=["content-length", "no-length"])
def test_body_over_the_cap_is_too_large(length: bool) -> None:
    meeting = (
        b"<meeting><participantCount>1</participantCount><videoCount>0</videoCount>"
        b"<attendees/></meeting>"
    )
    body = (
        b"<response><returncode>SUCCESS</returncode><meetings>"
        + meeting * 20000
        + b"</meetings></response>"
    )
    assert poll_reason(answer(body, length=length), max_bytes=256 * 1024) == "too_large"
    # exactly at the cap is accepted (a generous timeout: 20,000 meetings on busy cores)
    assert poll_reason(answer(body, length=length), max_bytes=len(body), timeout=20) is None


def test_a_compressed_answer_is_refused() -> None:
    import gzip

    bomb = gzip.compress(b"<response>" + b" " * (8 << 20) + b"</response>")

    def gzipped(conn: socket.socket) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nConnection: close\r\n"
            + f"Content-Length: {len(bomb)}\r\n\r\n".encode()
            + bomb
        )

    assert poll_reason(gzipped, max_bytes=1 << 20) == "parse"


def test_fetch_hands_over_the_whole_body() -> None:
    body = bytes(range(256)) * 1000
    received: list[bytes] = []
    with raw_server(answer(body, length=False)) as url:
        size = HttpClient().fetch(url, timeout=2, max_bytes=len(body), sink=received.append)
    assert size == len(body) and b"".join(received) == body


def test_jitsi_over_http() -> None:
    stats = b'{"conferences": 1, "participants": 3, "stress_level": 0.5}'
    with raw_server(answer(stats, content_type="application/json")) as url:
        figures = poll_jitsi(HttpClient(), JitsiSource(url=url), timeout=2, max_bytes=1 << 20)
    assert dict(figures.values) == {"conferences": 1, "participants": 3, "stress_level": 0.5}


def test_truncated_node_exporter_page_is_parse() -> None:
    page = (
        b'node_cpu_seconds_total{cpu="0",mode="idle"} 1\n'
        b'node_cpu_seconds_total{cpu="0",mode="user"} 2\n'
        b'node_network_transmit_bytes_total{device="eth0"} 12'
    )
    with (
        raw_server(answer(page, content_type="text/plain")) as url,
        pytest.raises(PollError) as raised,
    ):
        poll_host(HttpClient(), HostSource(node_exporter=url), timeout=2, max_bytes=1 << 20)
    assert raised.value.reason == "parse" and "truncated" in raised.value.detail


def proc_counters(interface: str | None) -> tuple[dict[str, float], float, float, int]:
    figures = read_proc(interface=interface)
    return (
        dict(figures.cpu_seconds),
        figures.transmit_bytes,
        figures.receive_bytes,
        figures.cpu_count,
    )


def first_uplink() -> str:
    for line in Path("/proc/net/dev").read_text().splitlines()[2:]:
        name = line.partition(":")[0].strip()
        if is_uplink(name):
            return name
    pytest.fail("this machine has no uplink interface in /proc/net/dev")


@pytest.mark.parametrize("one_interface", [False, True], ids=["auto", "configured"])
def test_real_node_exporter_matches_proc(one_interface: bool) -> None:
    """node_exporter reads the same /proc: its figures sit between two local readings."""
    interface = first_uplink() if one_interface else None
    with node_exporter() as url:
        before = proc_counters(interface)
        figures = poll_host(
            HttpClient(),
            HostSource(node_exporter=url, interface=interface),
            timeout=5,
            max_bytes=16 << 20,
        )
        after = proc_counters(interface)
    cpu = dict(figures.cpu_seconds)
    assert figures.cpu_count == before[3]
    for mode in ("user", "system", "idle"):
        # node_exporter rounds to centiseconds like /proc's USER_HZ ticks
        assert before[0][mode] - 0.02 <= cpu[mode] <= after[0][mode] + 0.02, mode
    assert before[1] <= figures.transmit_bytes <= after[1]
    assert before[2] <= figures.receive_bytes <= after[2]


def test_local_host_source() -> None:
    figures = poll_host(HttpClient(), HostSource(node_exporter=None), timeout=1, max_bytes=1)
    stat_cpus = sum(
        1
        for line in Path("/proc/stat").read_text().splitlines()
        if line.startswith("cpu") and not line.startswith("cpu ")
    )
    assert figures.cpu_count == stat_cpus
    assert dict(figures.cpu_seconds)["idle"] > 0


def test_local_host_source_unknown_interface_names_it() -> None:
    with pytest.raises(PollError, match="no-such-if0"):
        read_proc(interface="no-such-if0")


def test_a_cycle_gets_one_interval_and_reports_the_rest_as_overrun() -> None:
    """One worker, three nodes that never answer: the cycle ends after one interval."""
    from confscale.exporter.config import NodeConfig, PoolConfig
    from confscale.exporter.poller import Poller

    with raw_server(hold(1.5)) as url:
        nodes = tuple(
            NodeConfig(name=f"jvb-0{i}", settings={"jitsi": JitsiSource(url=url)})
            for i in (1, 2, 3)
        )
        poller = Poller(PoolConfig(nodes=nodes, interval=0.5, timeout=0.3), workers=1)
        try:
            snapshot = poller.run_cycle()
        finally:
            poller.stop()
    reasons = {r.node: r.reason for r in snapshot.results}
    assert reasons == {"jvb-01": "timeout", "jvb-02": "overrun", "jvb-03": "overrun"}
    assert snapshot.errors[("jvb-03", "jitsi", "overrun")] == 1


def test_reload_during_a_cycle_publishes_only_nodes_still_configured() -> None:
    from confscale.exporter.config import NodeConfig, PoolConfig
    from confscale.exporter.poller import Poller

    holder: list[Poller] = []
    smaller: list[PoolConfig] = []

    def reload_then_answer(conn: socket.socket) -> None:
        holder[0].replace_config(smaller[0])  # the cycle is running: its request is here
        answer(b'{"conferences": 1}', content_type="application/json")(conn)

    with raw_server(reload_then_answer) as url:
        nodes = tuple(
            NodeConfig(name=f"jvb-0{i}", settings={"jitsi": JitsiSource(url=url)}) for i in (1, 2)
        )
        smaller.append(PoolConfig(nodes=nodes[:1], interval=5, timeout=2))
        poller = Poller(PoolConfig(nodes=nodes, interval=5, timeout=2), workers=2)
        holder.append(poller)
        try:
            snapshot = poller.run_cycle()
        finally:
            poller.stop()
    assert [r.node for r in snapshot.results] == ["jvb-01"]
    assert [n.name for n in snapshot.config.nodes] == ["jvb-01"]
    assert poller.config is smaller[0]


def test_connections_are_kept_alive_between_polls() -> None:
    """Three polls of a keep-alive server through one client use one TCP connection."""
    import http.server

    connections: list[int] = []
    body = fixture_path("bbb", FIXTURE).read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            connections.append(1)
            super().setup()

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    client = HttpClient()
    try:
        with serving(Handler) as server:
            url = f"{server.url}/api/"
            figures = [poll_bbb(client, bbb(url), timeout=5, max_bytes=1 << 20) for _ in range(3)]
    finally:
        client.close()
    assert [f.meetings for f in figures] == [3, 3, 3]
    assert len(connections) == 1


def test_a_bug_while_polling_costs_one_poll_not_the_loop(caplog: pytest.LogCaptureFixture) -> None:
    from confscale.exporter.config import NodeConfig
    from confscale.exporter.poller import poll_source

    # An algorithm config.py would refuse: hashlib raises inside the poll.
    broken = BbbSource(
        url="http://127.0.0.1:9/api/", secret=Secret("test-secret"), checksum="no-such-hash"
    )
    result = poll_source(
        HttpClient(),
        NodeConfig(name="bbb-x", settings={"bbb": broken}),
        "bbb",
        timeout=1,
        max_bytes=1024,
    )
    assert (result.ok, result.reason) == (False, "internal")
    assert "poll crashed node=bbb-x source=bbb error=ValueError at=" in caplog.text
    assert "test-secret" not in caplog.text and "127.0.0.1:9" not in caplog.text


class _ResponseOnClosedSocket:
    """What urllib3's response does once the peer's close shut the socket under it."""

    def read1(self, size: int) -> bytes:
        raise OSError(9, "Bad file descriptor")


def test_a_socket_closed_under_the_body_is_connect_not_a_crash() -> None:
    # A bare OSError (EBADF) once escaped as reason "internal" (CI log:
    # "poll crashed node=bbb-01 source=bbb error=OSError") and took a healthy node down.
    from confscale.exporter.deadline import Guard
    from confscale.exporter.pooled import _stream

    with pytest.raises(PollError) as caught:
        _stream(_ResponseOnClosedSocket(), Guard(time.monotonic() + 5), 5.0, 1 << 20, print)
    assert caught.value.reason == "connect"
