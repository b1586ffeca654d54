"""How many quick polls run at once (exporter/concurrency.py and the poller's queue).

The limiter is a pure function of each cycle's figures; the poller's side is checked on a
real server that counts the requests in flight: quick polls never exceed the limit, a
source that was slow last time runs beside them on a worker of its own, and a cycle that
waited for answers lets more polls in the next time.
"""

from __future__ import annotations

import socket
import threading
import time

from confscale.exporter.concurrency import FLOOR, HOLD, Limiter
from confscale.exporter.config import parse_config
from confscale.exporter.poller import Poller
from fake_jvb import FakeBridge, serve


def test_a_busy_cycle_halves_the_limit_down_to_the_floor() -> None:
    limiter = Limiter(64)
    limits = [limiter.observe(cpu=1.0, wall=1.0, polls=2000, late=False) for _ in range(8)]
    assert limits == [32, 16, 8, 4, 2, FLOOR, FLOOR, FLOOR]


def test_a_halving_that_costs_time_is_undone_and_held() -> None:
    limiter = Limiter(64)
    assert limiter.observe(cpu=1.0, wall=1.0, polls=1000, late=False) == 32
    # 20 % longer per poll is within the noise: kept, and still busy, so halved again
    assert limiter.observe(cpu=1.2, wall=1.2, polls=1000, late=False) == 16
    # a third longer than at 32: undone, and 32 held
    assert limiter.observe(cpu=1.6, wall=1.6, polls=1000, late=False) == 32
    held = [limiter.observe(cpu=1.0, wall=1.0, polls=1000, late=False) for _ in range(HOLD)]
    assert held == [32] * HOLD
    assert limiter.observe(cpu=1.0, wall=1.0, polls=1000, late=False) == 16  # tried again


def test_a_waiting_cycle_doubles_it_and_a_late_one_lets_every_worker_in() -> None:
    limiter = Limiter(64, limit=4)
    assert limiter.observe(cpu=0.2, wall=1.0, polls=100, late=False) == 8
    assert limiter.observe(cpu=0.7, wall=1.0, polls=100, late=False) == 8  # in between
    assert limiter.observe(cpu=0.9, wall=1.0, polls=100, late=True) == 64


class Counting(FakeBridge):
    """The fake bridge, answering after ``delay`` and counting requests in flight."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.inside = 0
        self.most = 0
        self.guard = threading.Lock()

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        with self.guard:
            self.inside += 1
            self.most = max(self.most, self.inside)
        try:
            time.sleep(self.delay)
            return super().handle(method, path, body)
        finally:
            with self.guard:
                self.inside -= 1


def test_quick_polls_run_at_most_the_limit_at_once_and_waiting_raises_it() -> None:
    bridge = Counting(delay=0.05)
    with serve(bridge) as base:
        nodes = [
            {"name": f"jvb-{n:02d}", "jitsi": {"url": f"{base}/colibri/stats"}} for n in range(12)
        ]
        config = parse_config({"interval": "30s", "timeout": "2s", "nodes": nodes}, "t.yml", {})
        poller = Poller(config, workers=16)
        try:
            poller._limiter.limit = 2  # as after busy cycles
            first = poller.run_cycle()
            most_at_two, bridge.most = bridge.most, 0
            raised = poller.concurrency  # that cycle waited for answers: more at once
            poller.run_cycle()
        finally:
            poller.stop()
    assert all(r.ok for r in first.results) and len(first.results) == 12
    assert most_at_two == 2
    assert raised == 4 and bridge.most == 4


def test_the_limiter_judges_the_quick_polls_span_not_a_dead_sources_timeout() -> None:
    """A dead node stretches the cycle to its timeout on a worker of its own; judged by
    the whole cycle a pool with dead nodes looked idle and let every worker in (256
    bodies in flight on the 1,000-node bench). The limiter gets the quick polls' span."""
    bridge = Counting(delay=0.0)
    silent = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    seen: list[dict[str, float]] = []
    try:
        with serve(bridge) as base:
            port = silent.getsockname()[1]
            nodes = [
                {"name": f"jvb-{n:02d}", "jitsi": {"url": f"{base}/colibri/stats"}}
                for n in range(12)
            ] + [{"name": "dead", "jitsi": {"url": f"http://127.0.0.1:{port}/colibri/stats"}}]
            config = parse_config({"interval": "30s", "timeout": "1s", "nodes": nodes}, "t.yml", {})
            poller = Poller(config, workers=16)
            poller._limiter.limit = 2  # (the test server's listen backlog is 5)
            observe = poller._limiter.observe

            def recording(**figures: float) -> int:
                seen.append(dict(figures))
                return observe(**figures)  # type: ignore[arg-type]

            poller._limiter.observe = recording  # type: ignore[method-assign]
            try:
                cycles = [poller.run_cycle() for _ in range(2)]
            finally:
                poller.stop()
    finally:
        silent.close()
    second = cycles[1]
    assert second.duration >= 0.9  # the dead node's timeout bounds the cycle
    failed = [(r.node, r.reason) for r in second.results if not r.ok]
    assert failed == [("dead", "timeout")]
    # the second cycle knew the dead source was slow: it ran apart, not in the queue
    assert seen[1]["polls"] == 12
    assert seen[1]["wall"] < second.duration / 2, (seen[1], second.duration)
