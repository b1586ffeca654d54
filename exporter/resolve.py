"""Host names resolved within a poll's deadline.

``getaddrinfo`` cannot be interrupted, and the system resolver's own timeout
(resolv.conf's ``timeout:5 attempts:2`` per name server by default) knows nothing of a
node's timeout: a slow or dead DNS server held a worker far past the poll's deadline, and
the poll ended as an ``overrun`` of the whole cycle. Here a lookup runs on a thread of a
small pool of its own; the poll waits for its answer at most the time its deadline has
left and then fails as ``timeout`` ("host name not resolved within …"). The lookup itself
finishes in the background, and a poll of the same name meanwhile waits for that same
lookup instead of starting another one, so a hung resolver holds at most ``workers``
threads, never one per poll.

The answers are the system resolver's (``/etc/hosts``, nsswitch, its caches), as before.
No cache of our own: the system's (nscd, systemd-resolved) knows the records' TTLs and
ours would not, and a keep-alive connection only resolves its name when it is opened.
"""

from __future__ import annotations

import ipaddress
import queue
import socket
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from urllib3.util.connection import allowed_gai_family

# (family, type, proto, canonname, sockaddr), as socket.getaddrinfo returns them
AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]
Lookup = Callable[[str, int], Sequence[AddrInfo]]
DEFAULT_WORKERS = 8


def system_lookup(host: str, port: int) -> Sequence[AddrInfo]:
    """The system resolver's TCP addresses of ``host`` (IPv6 only where the host has it),
    as urllib3 asks for them."""
    return socket.getaddrinfo(host, port, allowed_gai_family(), socket.SOCK_STREAM)


class ResolveTimeout(TimeoutError):
    """The name's lookup did not answer within the time the poll had left."""


class Resolver:
    """``lookup`` with a deadline per call; concurrent lookups of one name share one.

    The lookups run on up to ``workers`` daemon threads, started when needed: a lookup
    hung in the system resolver never holds up the process's exit (a ThreadPoolExecutor's
    threads are joined at exit).
    """

    def __init__(self, lookup: Lookup = system_lookup, *, workers: int = DEFAULT_WORKERS) -> None:
        self._lookup = lookup
        self._workers = workers
        self._lock = threading.Lock()
        self._inflight: dict[tuple[str, int], Future[Sequence[AddrInfo]]] = {}
        self._jobs: queue.SimpleQueue[tuple[str, int, Future[Sequence[AddrInfo]]] | None] = (
            queue.SimpleQueue()
        )
        self._threads: list[threading.Thread] = []
        self._queued = 0  # lookups waiting for a thread
        self._busy = 0  # threads running a lookup
        self._closed = False

    def resolve(self, host: str, port: int, timeout: float) -> Sequence[AddrInfo]:
        """The addresses of ``host``; ResolveTimeout after ``timeout`` seconds, and the
        lookup's own error (``socket.gaierror``: no such name) when it fails in time."""
        if _numeric(host):  # an address literal: no lookup, no thread
            return socket.getaddrinfo(
                host, port, allowed_gai_family(), socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST
            )
        key = (host, port)
        with self._lock:
            if self._closed:
                raise ResolveTimeout("host name not resolved: stopping")
            future = self._inflight.get(key)
            if future is None:
                future = Future()
                self._inflight[key] = future
                self._jobs.put((host, port, future))
                self._queued += 1
                # a thread for every queued lookup, up to ``workers``: a hung lookup must
                # not hold up the next name while fewer threads than that are running
                free = len(self._threads) - self._busy
                if free < self._queued and len(self._threads) < self._workers:
                    thread = threading.Thread(
                        target=self._work, name="confscale-resolve", daemon=True
                    )
                    self._threads.append(thread)
                    thread.start()
        try:
            return future.result(timeout=max(0.0, timeout))
        except FutureTimeout:
            raise ResolveTimeout(f"host name not resolved within {timeout:.3g}s") from None
        except CancelledError:
            raise ResolveTimeout("host name not resolved: stopping") from None

    def close(self) -> None:
        """Drop the lookups not started and stop the threads; running lookups end on
        their own (their threads are daemons)."""
        with self._lock:
            self._closed = True
            while True:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    self._queued -= 1
                    job[2].cancel()
            for _ in self._threads:
                self._jobs.put(None)
            self._inflight.clear()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            host, port, future = job
            with self._lock:
                self._queued -= 1
                self._busy += 1
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(self._lookup(host, port))
                except BaseException as exc:  # handed to every caller waiting on the name
                    future.set_exception(exc)
            with self._lock:
                if self._inflight.get((host, port)) is future:
                    del self._inflight[(host, port)]
                self._busy -= 1


def _numeric(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])  # fe80::1%eth0: a scoped literal
    except ValueError:
        return False
    return True
