"""exporter/deadline.py on real socket pairs: a passed deadline shuts the socket a thread
is blocked on; a connection taken over by the next exchange is left alone."""

from __future__ import annotations

import socket

from confscale.exporter.deadline import Reaper


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
