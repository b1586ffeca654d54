"""Total deadlines for socket exchanges, enforced from one thread.

A socket timeout bounds one ``recv``; a peer that sends one byte per second renews it
forever (urllib3 reads a status line and headers that way, ``http.server`` reads a
request head that way). A ``Reaper`` keeps every guarded exchange on a heap and, when
an exchange's deadline passes, shuts its socket down (``shutdown(SHUT_RDWR)``, not
``close``: the thread blocked in ``recv`` gets EOF or an error at once and the socket's
owner still closes it). ``abort_all`` does the same for everything in flight, which makes
stopping the process prompt.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from typing import Protocol


class HasSocket(Protocol):
    """A connection whose socket may change while it is guarded (TCP, then TLS)."""

    sock: socket.socket | None


Target = socket.socket | HasSocket


class Guard:
    """One exchange: the sockets it uses and whether its deadline has passed."""

    __slots__ = ("_done", "_targets", "deadline", "expired")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.expired = False
        self._done = False
        self._targets: list[Target] = []

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


class Reaper:
    """Shuts down the sockets of exchanges that outlive their deadline (one thread)."""

    def __init__(self, name: str = "confscale-deadline") -> None:
        self._name = name
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Guard]] = []
        self._active: set[Guard] = set()
        self._owner: dict[int, Guard] = {}  # id(target) -> the guard watching it now
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False

    @contextlib.contextmanager
    def guard(self, seconds: float) -> Iterator[Guard]:
        """An exchange that must be over within ``seconds``; ``watch`` its socket(s)."""
        guard = Guard(time.monotonic() + seconds)
        with self._cond:
            if self._closed:
                guard.expired = True
            self._active.add(guard)
            heapq.heappush(self._heap, (guard.deadline, next(self._seq), guard))
            self._start()
            if self._heap[0][2] is guard:  # only an earlier wake-up needs the thread now
                self._cond.notify()
        try:
            yield guard
        finally:
            self._finish(guard)

    def watch(self, guard: Guard, target: Target) -> None:
        """Shut ``target`` down if ``guard`` expires; a target has one guard at a time
        (a keep-alive connection reused by the next exchange leaves the previous one)."""
        with self._cond:
            previous = self._owner.get(id(target))
            if previous is not None and previous is not guard:
                with contextlib.suppress(ValueError):
                    previous._targets.remove(target)
            if guard._done:
                return
            self._owner[id(target)] = guard
            if target not in guard._targets:
                guard._targets.append(target)
            if guard.expired:
                _shut(target)

    def abort_all(self) -> None:
        """Expire every exchange in flight now (and every later one: we are stopping)."""
        with self._cond:
            self._closed = True
            for guard in list(self._active):
                self._expire(guard)
            self._cond.notify()

    def close(self) -> None:
        self.abort_all()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=5)

    def _finish(self, guard: Guard) -> None:
        with self._cond:
            guard._done = True
            self._active.discard(guard)
            for target in guard._targets:
                if self._owner.get(id(target)) is guard:
                    del self._owner[id(target)]
            guard._targets.clear()

    def _expire(self, guard: Guard) -> None:  # under the lock
        guard.expired = True
        if not guard._done:
            for target in guard._targets:
                _shut(target)

    def _start(self) -> None:  # under the lock
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                while self._heap and (self._heap[0][2]._done or self._heap[0][0] <= now):
                    _, _, guard = heapq.heappop(self._heap)
                    if not guard._done:
                        self._expire(guard)
                wait = self._heap[0][0] - now if self._heap else None
                self._cond.wait(wait)


def _shut(target: Target) -> None:
    sock = target if isinstance(target, socket.socket) else getattr(target, "sock", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            # the plain socket's shutdown, also for an SSLSocket: it must not touch the
            # TLS state another thread is reading with
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
