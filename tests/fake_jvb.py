"""A fake jitsi-videobridge REST API (drain and stats) that follows the JVB's own source.

Upstream: jitsi/jitsi-videobridge at a29d97d13fbfb54afc676a526485ce87df4f7a64
- jvb/src/main/java/org/jitsi/videobridge/rest/root/colibri/drain/Drain.java:
  ``@Path("/colibri/drain")``: POST ``/enable`` and POST ``/disable`` set the drain mode
  and answer 200 with an empty body (500 on error); GET answers ``{"drain": bool}``
  (application/json). Registered only while ``videobridge.rest.drain.enabled`` (default
  true, jvb/src/main/resources/reference.conf; RestConfig.kt).
- jvb/src/main/java/org/jitsi/videobridge/rest/root/colibri/stats/Stats.java:
  GET ``/colibri/stats`` (only with the COLIBRI REST API on, default off) answers the
  VideobridgeStatisticsShim.kt JSON, which has ``drain`` (ColibriStatsExtension.DRAIN),
  ``graceful_shutdown`` (SHUTDOWN_IN_PROGRESS), ``shutting_down`` and ``healthy``.
- Anything else, or a disabled resource, is Jetty's 404.
"""

from __future__ import annotations

import contextlib
import json
import threading
from dataclasses import dataclass, field

from localhttp import Answer, Incoming, answering, json_or_html


@dataclass
class FakeBridge:
    drain: bool = False
    graceful_shutdown: bool = False
    shutting_down: bool = False
    healthy: bool = True
    colibri_rest: bool = True  # videobridge.apis.rest.enabled (/colibri/stats)
    drain_rest: bool = True  # videobridge.rest.drain.enabled
    ignore_drain: bool = False  # a broken bridge: answers 200 but does not drain
    calls: list[tuple[str, str, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def stats(self) -> dict[str, object]:
        return {
            "conferences": 3,
            "participants": 20,
            "stress_level": 0.4,
            "graceful_shutdown": self.graceful_shutdown,
            "shutting_down": self.shutting_down,
            "drain": self.drain,
            "healthy": self.healthy,
            "current_timestamp": "2026-12-01 21:00:00.000",
        }

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        with self.lock:
            self.calls.append((method, path, body))
            if self.drain_rest and path in ("/colibri/drain/enable", "/colibri/drain/disable"):
                if method != "POST":
                    return 405, b""
                if not self.ignore_drain:
                    self.drain = path.endswith("/enable")
                return 200, b""
            if self.drain_rest and path == "/colibri/drain" and method == "GET":
                return 200, json.dumps({"drain": self.drain}).encode()
            if self.colibri_rest and path == "/colibri/stats" and method == "GET":
                return 200, json.dumps(self.stats()).encode()
            return 404, b"<html><body><h2>HTTP ERROR 404 Not Found</h2></body></html>"


def serve(bridge: FakeBridge) -> contextlib.AbstractContextManager[str]:
    """Run the fake on 127.0.0.1 (a free port); yields its base URL."""

    def respond(request: Incoming) -> Answer:
        status, answer = bridge.handle(request.method, request.target, request.body)
        return status, json_or_html(answer), answer

    return answering(respond)
