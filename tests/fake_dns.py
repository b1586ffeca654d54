"""A tiny DNS server on 127.0.0.1 (UDP) whose answers the test holds back, and the stub
resolver that asks it: a slow resolver the test controls, with no change to /etc.

Wire format: RFC 1035 §4.1 (header, question, resource records; §4.1.4 name compression
in the answer's owner name), the A record of §3.4.1; NXDOMAIN is RCODE 3 (§4.1.1). The
stub maps answers the way glibc's getaddrinfo does: no such name is EAI_NONAME, no answer
in its own time EAI_AGAIN.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import struct
import threading
from collections import Counter
from collections.abc import Iterator

A, IN = 1, 1
NOERROR, NXDOMAIN = 0, 3


def _name(labels: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode("ascii") for p in labels.split(".")) + b"\0"


def _read_name(packet: bytes, offset: int) -> tuple[str, int]:
    labels = []
    while packet[offset]:
        if packet[offset] & 0xC0 == 0xC0:  # a pointer ends the name (§4.1.4)
            return ".".join(labels), offset + 2
        length = packet[offset]
        labels.append(packet[offset + 1 : offset + 1 + length].decode("ascii"))
        offset += 1 + length
    return ".".join(labels), offset + 1


class SlowDns:
    """``records``: name → IPv4 address; a name in ``held`` is answered only once
    ``release`` is set. ``queries`` counts the questions received per name."""

    def __init__(self, records: dict[str, str], held: set[str] | None = None) -> None:
        self.records = records
        self.held = held or set()
        self.release = threading.Event()
        self.queries: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.address: tuple[str, int] = self._sock.getsockname()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def count(self, name: str) -> int:
        with self._lock:
            return self.queries[name]

    @contextlib.contextmanager
    def running(self) -> Iterator[SlowDns]:
        thread = threading.Thread(target=self._serve, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.release.set()
            self._stop.set()
            for worker in [thread, *self._threads]:
                worker.join(timeout=10)
            self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                packet, client = self._sock.recvfrom(512)
            except TimeoutError:
                continue
            except OSError:
                return
            name, end = _read_name(packet, 12)
            with self._lock:
                self.queries[name] += 1
            if name in self.held and not self.release.is_set():
                later = threading.Thread(
                    target=self._answer_later, args=(packet, end, name, client), daemon=True
                )
                self._threads.append(later)
                later.start()
            else:
                self._answer(packet, end, name, client)

    def _answer_later(self, packet: bytes, end: int, name: str, client: tuple) -> None:
        self.release.wait(60)
        self._answer(packet, end, name, client)

    def _answer(self, packet: bytes, end: int, name: str, client: tuple) -> None:
        (ident,) = struct.unpack("!H", packet[:2])
        question = packet[12 : end + 4]
        qtype = struct.unpack("!H", packet[end : end + 2])[0]
        address = self.records.get(name)
        rcode = NXDOMAIN if address is None else NOERROR
        answers = b""
        if address is not None and qtype == A:
            answers = struct.pack("!HHHIH", 0xC00C, A, IN, 30, 4) + socket.inet_aton(address)
        header = struct.pack("!HHHHHH", ident, 0x8180 | rcode, 1, 1 if answers else 0, 0, 0)
        with contextlib.suppress(OSError):
            self._sock.sendto(header + question + answers, client)


_IDS = itertools.count(1)


def stub_lookup(server: tuple[str, int], *, timeout: float = 30.0):
    """A getaddrinfo-shaped lookup (host, port) → TCP addresses that asks ``server``."""

    def lookup(host: str, port: int) -> list[tuple]:
        ident = next(_IDS) & 0xFFFF
        query = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + _name(host)
        query += struct.pack("!HH", A, IN)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(timeout)
            sock.sendto(query, server)
            try:
                while True:
                    packet = sock.recv(512)
                    if struct.unpack("!H", packet[:2])[0] == ident:
                        break
            except TimeoutError:
                raise socket.gaierror(
                    socket.EAI_AGAIN, "Temporary failure in name resolution"
                ) from None
        flags, _, count = struct.unpack("!HHH", packet[2:8])
        if flags & 0xF == NXDOMAIN or not count:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        _, offset = _read_name(packet, 12)
        offset += 4  # the question's type and class
        found = []
        for _ in range(count):
            _, offset = _read_name(packet, offset)
            kind, _, _, length = struct.unpack("!HHIH", packet[offset : offset + 10])
            offset += 10
            if kind == A and length == 4:
                address = socket.inet_ntoa(packet[offset : offset + 4])
                found.append(
                    (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))
                )
            offset += length
        return found

    return lookup
