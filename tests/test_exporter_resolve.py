"""Name resolution inside a poll's deadline (exporter/resolve.py), against a real DNS
server on 127.0.0.1 whose answers the test holds back (tests/fake_dns.py).

The exporter's own path runs unchanged — poll_source, HttpClient, the guarded urllib3
connection — with the Resolver's injectable lookup pointed at that server instead of
the system's getaddrinfo (no change to /etc/resolv.conf). Nothing here reads a clock:
a poll that ends as ``timeout`` while its answer is still held back ended before the
resolver did.
"""

from __future__ import annotations

import socket
import threading

import pytest
from confscale.exporter.config import JitsiSource, NodeConfig
from confscale.exporter.fetch import HttpClient, PollError
from confscale.exporter.poller import poll_source
from confscale.exporter.resolve import Resolver, ResolveTimeout
from fake_dns import SlowDns, stub_lookup
from fake_jvb import FakeBridge, serve
from harness import wait_until
from localhttp import Incoming, answering

FAST, SLOW, GONE = "bbb-fast.pool.test", "bbb-slow.pool.test", "bbb-gone.pool.test"


def node(name: str, url: str) -> NodeConfig:
    return NodeConfig(name=name, settings={"jitsi": JitsiSource(url=url)})


@pytest.fixture
def dns():
    server = SlowDns({FAST: "127.0.0.1", SLOW: "127.0.0.1"}, held={SLOW})
    with server.running():
        yield server


def test_a_slow_resolver_costs_the_poll_its_deadline_not_the_cycle(dns) -> None:
    bridge = FakeBridge()
    client = HttpClient(resolver=Resolver(stub_lookup(dns.address)))
    try:
        with serve(bridge) as base:
            port = base.rsplit(":", 1)[1]
            fast = node("jvb-fast", f"http://{FAST}:{port}/colibri/stats")
            slow = node("jvb-slow", f"http://{SLOW}:{port}/colibri/stats")
            gone = node("jvb-gone", f"http://{GONE}:{port}/colibri/stats")
            answered = poll_source(client, fast, "jitsi", timeout=5, max_bytes=1 << 20)
            assert answered.reason is None and answered.ok
            assert bridge.calls == [("GET", "/colibri/stats", b"")]
            held = poll_source(client, slow, "jitsi", timeout=0.5, max_bytes=1 << 20)
            assert held.reason == "timeout"  # not "overrun": the poll's own deadline
            assert not dns.release.is_set() and dns.count(SLOW) == 1  # the answer is still held
            assert len(bridge.calls) == 1  # nothing was sent to the held name's node
            missing = poll_source(client, gone, "jitsi", timeout=5, max_bytes=1 << 20)
            assert missing.reason == "connect"  # NXDOMAIN: does not resolve, as before
            dns.release.set()
            later = poll_source(client, slow, "jitsi", timeout=5, max_bytes=1 << 20)
            assert later.reason is None and later.ok  # no failure is remembered
    finally:
        client.close()


def test_concurrent_polls_of_a_held_name_share_one_lookup(dns) -> None:
    resolver = Resolver(stub_lookup(dns.address))
    errors: list[BaseException] = []

    def resolve() -> None:
        try:
            resolver.resolve(SLOW, 80, 0.5)
        except ResolveTimeout as exc:
            errors.append(exc)

    workers = [threading.Thread(target=resolve) for _ in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert len(errors) == 6 and "not resolved within 0.5s" in str(errors[0])
    assert dns.count(SLOW) == 1  # one lookup held one thread, not six
    dns.release.set()
    assert resolver.resolve(SLOW, 80, 30)[0][4] == ("127.0.0.1", 80)
    # no cache of our own: once that lookup is over, the next one asks the server again
    wait_until(
        lambda: resolver.resolve(SLOW, 80, 30) and dns.count(SLOW) == 2,
        timeout=10,
        what="a second query of the name",
    )
    with pytest.raises(socket.gaierror):
        resolver.resolve(GONE, 80, 30)
    assert resolver.resolve("127.0.0.1", 80, 0)[0][4] == ("127.0.0.1", 80)  # no lookup
    assert dns.count("127.0.0.1") == 0
    resolver.close()


def test_the_request_still_names_the_host_and_says_why_it_failed(dns) -> None:
    hosts: list[str | None] = []

    def respond(request: Incoming) -> tuple[int, str, bytes]:
        hosts.append(request.headers.get("Host"))
        return 200, "text/plain", b"ok\n"

    client = HttpClient(resolver=Resolver(stub_lookup(dns.address)))
    try:
        with answering(respond) as base:
            port = base.rsplit(":", 1)[1]
            assert client.get(f"http://{FAST}:{port}/", timeout=5, max_bytes=64) == (200, b"ok\n")
            assert hosts == [f"{FAST}:{port}"]  # the name, not the address it resolved to
            with pytest.raises(PollError) as failed:
                client.get(f"http://{SLOW}:{port}/", timeout=0.5, max_bytes=64)
            assert failed.value.reason == "timeout"
            assert failed.value.detail == "host name not resolved within 0.5s"
    finally:
        client.close()
