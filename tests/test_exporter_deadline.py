"""exporter/deadline.py on real socket pairs: a passed deadline shuts the socket a thread
is blocked on; a connection taken over by the next exchange is left alone; and the
poller starts the sources that took longest (a timeout) first."""

from __future__ import annotations

import contextlib
import socket

import hostile
from confscale.exporter.config import parse_config
from confscale.exporter.deadline import Reaper
from confscale.exporter.poller import Poller


def test_an_expired_guard_ends_a_blocked_recv() -> None:
    reaper = Reaper()
    left, right = socket.socketpair()
    with left, right:
        left.settimeout(30)  # far beyond the deadline: only the reaper can end the recv
        with reaper.guard(0.2) as guard:
            reaper.watch(guard, left)
            assert left.recv(1) == b""
        assert guard.expired
    reaper.close()


def test_a_target_taken_over_by_the_next_exchange_is_not_shut_by_the_old_deadline() -> None:
    reaper = Reaper()
    reused, peer = socket.socketpair()
    waiter, waiter_peer = socket.socketpair()
    with reused, peer, waiter, waiter_peer:
        reused.settimeout(30)
        waiter.settimeout(30)
        with reaper.guard(0.2) as old, reaper.guard(30) as new:
            reaper.watch(old, reused)
            reaper.watch(new, reused)  # a keep-alive connection reused by another poll
            with reaper.guard(0.5) as later:  # to wait past the old deadline, bounded
                reaper.watch(later, waiter)
                assert waiter.recv(1) == b""
            assert old.expired and not new.expired
            peer.sendall(b"x")
            assert reused.recv(1) == b"x"  # the taken-over connection still works
    reaper.close()


def test_after_close_every_exchange_is_expired_at_once() -> None:
    reaper = Reaper()
    left, right = socket.socketpair()
    with left, right:
        left.settimeout(30)
        with reaper.guard(600) as guard:
            reaper.watch(guard, left)
            reaper.abort_all()
            assert left.recv(1) == b""
            assert guard.expired
        with reaper.guard(600) as later:
            assert later.expired  # stopping: nothing new runs
    reaper.close()


def test_a_source_that_timed_out_starts_first_in_the_next_cycle() -> None:
    """Longest first: a dead node's poll waits out its timeout beside the others, not
    after them (one worker here, so the start order is the queue's order)."""
    arrivals: list[str] = []

    def behaviour(name: str, hold: bool) -> hostile.Behaviour:
        def run(conn: hostile.Conn) -> None:
            arrivals.append(name)
            if hold:
                conn.wait_out()
            else:
                conn.sock.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")

        return run

    names = ["jvb-a", "jvb-b", "jvb-dead", "jvb-c"]
    with contextlib.ExitStack() as stack:
        nodes = {
            name: stack.enter_context(
                hostile.HostileNode(behaviour(name, name == "jvb-dead"), hold=5)
            )
            for name in names
        }
        config = parse_config(
            {
                "timeout": "400ms",
                "interval": "30s",
                "nodes": [
                    {"name": name, "jitsi": {"url": nodes[name].url + "colibri/stats"}}
                    for name in names
                ],
            },
            "t.yml",
            {},
        )
        poller = Poller(config, workers=1)
        try:
            first = poller.run_cycle()
            assert arrivals == names  # the configured order while nothing is known
            arrivals.clear()
            second = poller.run_cycle()
        finally:
            poller.stop()
    assert arrivals[0] == "jvb-dead" and sorted(arrivals) == sorted(names)
    for snapshot in (first, second):  # the snapshot keeps the configured order
        assert [r.node for r in snapshot.results] == names
        assert {r.node: r.reason for r in snapshot.results}["jvb-dead"] == "timeout"
