"""The pool's cluster proxy (``--pool.proxy``): nginx's stub_status at ``/proxy-01/nginx_status``.

The page follows nginx's ngx_http_stub_status_module (nginx/nginx@3f6f782
src/http/modules/ngx_http_stub_status_module.c: GET/HEAD only, text/plain, the formats
``"Active connections: %uA \\n"``, ``"server accepts handled requests\\n"``,
``" %uA %uA %uA \\n"``, ``"Reading: %uA Writing: %uA Waiting: %uA \\n"``, trailing spaces
kept). Every BBB HTML5 client holds one websocket through the proxy, so active connections
are the pool's BBB participants. ``accepts`` grows at a fixed rate per BBB node (simulated
seconds, scaled like the nodes' counters); the ``proxy_refusing:SHARE`` fault drops that
share of new connections from the moment it is set, so ``handled`` falls behind ``accepts``
as it does when nginx runs out of worker_connections.
"""

from __future__ import annotations

import math
import threading
from typing import Any, Protocol

PROXY_NAME = "proxy-01"
ACCEPTS_PER_NODE_SECOND = 2.0  # new client connections per BBB node per simulated second
REQUESTS_PER_CONNECTION = 12
READING_SHARE = 0.01  # of active connections: reading a request header
WRITING_SHARE = 0.1  # writing a response (the rest are idle websockets/keep-alives)


class _Pool(Protocol):
    bbb_names: list[str]
    counter_scale: float

    def node(self, name: str) -> Any: ...


class ProxyState:
    """The proxy's counters: closed forms of simulated time plus the drops of past faults."""

    def __init__(self, origin: float) -> None:
        self._origin = origin
        self._lock = threading.Lock()
        self._dropped_before = 0.0  # connections dropped by faults already cleared
        self._refusing: tuple[float, float] | None = None  # (since, share) of the live fault

    def _rate(self, pool: _Pool) -> float:
        return ACCEPTS_PER_NODE_SECOND * max(1, len(pool.bbb_names)) * pool.counter_scale

    def _dropped(self, rate: float, t: float) -> float:
        if self._refusing is None:
            return self._dropped_before
        since, share = self._refusing
        return self._dropped_before + max(0.0, t - since) * rate * share

    def set_refusing(self, pool: _Pool, t: float, share: float | None) -> None:
        """Start dropping ``share`` of new connections at ``t`` (None: stop)."""
        with self._lock:
            self._dropped_before = self._dropped(self._rate(pool), t)
            self._refusing = None if share is None else (t, share)

    def figures(self, pool: _Pool, t: float) -> dict[str, int]:
        participants = 0
        for name in pool.bbb_names:
            node = pool.node(name)
            with node.lock:
                participants += sum(m.attendance(t).participants for m in node.active(t))
        rate = self._rate(pool)
        with self._lock:
            offered = max(0.0, t - self._origin) * rate
            dropped = self._dropped(rate, t)
        accepted = math.floor(offered)
        reading = math.floor(participants * READING_SHARE)
        writing = math.floor(participants * WRITING_SHARE)
        return {
            "active": participants,
            "reading": reading,
            "writing": writing,
            "waiting": participants - reading - writing,
            "accepted": accepted,
            "handled": math.floor(offered - dropped),
            "requests": math.floor(offered * REQUESTS_PER_CONNECTION),
        }


def stub_status_page(figures: dict[str, int]) -> bytes:
    f = figures
    return (
        f"Active connections: {f['active']} \n"
        "server accepts handled requests\n"
        f" {f['accepted']} {f['handled']} {f['requests']} \n"
        f"Reading: {f['reading']} Writing: {f['writing']} Waiting: {f['waiting']} \n"
    ).encode()
