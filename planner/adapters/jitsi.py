"""Jitsi: drain a JVB the placement takes out, undrain it when it comes back.

Checked against jitsi/jitsi-videobridge a29d97d13fbfb54afc676a526485ce87df4f7a64
(``jvb/src/main/java/org/jitsi/videobridge/rest/root/colibri/drain/Drain.java``,
``…/rest/root/colibri/stats/Stats.java``, ``jvb/src/main/kotlin/org/jitsi/videobridge/
stats/VideobridgeStatisticsShim.kt``, ``jvb/src/main/kotlin/org/jitsi/videobridge/rest/
RestConfig.kt``, ``jvb/src/main/resources/reference.conf``):

- ``POST {base}/colibri/drain/enable`` and ``…/drain/disable`` (no body; 200 empty, 500
  on error; 404 when ``videobridge.rest.drain.enabled`` is false — it is on by default);
  ``GET {base}/colibri/drain`` answers ``{"drain": bool}``.
- ``GET {base}/colibri/stats`` (only with the COLIBRI REST API on — off by default) has
  ``drain``, ``graceful_shutdown``, ``shutting_down`` and ``healthy``.

Each cycle reads every bridge's own state back (stats, else the drain resource), so it
knows whether a drain took effect; a bridge drained by someone else, shutting down or
failing its own health check is left alone (and reported: not online capacity); only
bridges this adapter drained are undrained. If someone undrains a bridge it drained, it
steps back until the node was available once.
One bridge failing never stops the others. Dry-run: reads, and logs what it would do.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import requests
from confscale.planner.adapters.health import AdapterHealth
from confscale.planner.adapters.http import AdapterError, call, install_log_redaction
from confscale.planner.adapters.memory import NodeRecords
from confscale.planner.placement import Placement

log = logging.getLogger(__name__)
RECORD_SCHEMA = {"ours": (bool,), "stepped_back": (bool,)}


@dataclass(frozen=True)
class BridgeState:
    """What the bridge says about itself (None: it does not say)."""

    drain: bool
    graceful_shutdown: bool | None = None
    shutting_down: bool | None = None
    healthy: bool | None = None

    @classmethod
    def parse(cls, body: object) -> BridgeState:
        if not isinstance(body, dict) or not isinstance(body.get("drain"), bool):
            raise AdapterError("the bridge's answer has no boolean 'drain'")

        def flag(key: str) -> bool | None:
            value = body.get(key)
            return value if isinstance(value, bool) else None

        return cls(
            drain=body["drain"],
            graceful_shutdown=flag("graceful_shutdown"),
            shutting_down=flag("shutting_down"),
            healthy=flag("healthy"),
        )


@dataclass(frozen=True)
class Plan:
    calls: tuple[tuple[str, str], ...]  # (node, "enable"|"disable")
    records: dict[str, dict]
    held_by_operator: dict[str, str]


def plan(
    placement: Placement, states: Mapping[str, BridgeState], memory: Mapping[str, dict]
) -> Plan:
    """The drain calls this placement asks for, given each bridge's own state (pure)."""
    calls: list[tuple[str, str]] = []
    records: dict[str, dict] = {}
    held: dict[str, str] = {}
    for node in placement.nodes:
        bridge = states.get(node.node)
        if bridge is None:
            continue
        record = {"ours": False, "stepped_back": False, **(memory.get(node.node) or {})}
        if bridge.graceful_shutdown or bridge.shutting_down:
            held[node.node] = "shutting down"
            records[node.node] = record
            continue
        if bridge.healthy is False:  # jicofo stops using it; not capacity, nothing to do
            held[node.node] = "unhealthy (the bridge's own health check)"
            records[node.node] = record
            continue
        if bridge.drain and not record["ours"]:
            held[node.node] = "drained by the operator"
            records[node.node] = record
            continue
        if record["ours"] and not bridge.drain:
            # someone undrained it (or it restarted): do not fight them
            record["ours"], record["stepped_back"] = False, node.state == "out"
        if node.state == "available":
            record["stepped_back"] = False
        records[node.node] = record
        if not bridge.drain and (
            node.state == "maintenance" or (node.state == "out" and not record["stepped_back"])
        ):
            calls.append((node.node, "enable"))
        elif node.state == "available" and record["ours"] and bridge.drain:
            calls.append((node.node, "disable"))
    return Plan(tuple(calls), records, held)


@dataclass
class JitsiAdapter:
    """Drains and undrains bridges given as node → base URL of the JVB's REST API."""

    bridges: dict[str, str]
    dry_run: bool = True
    timeout: float = 5.0
    session: requests.Session = field(default_factory=requests.Session, repr=False)
    memory: NodeRecords = field(default_factory=lambda: NodeRecords(RECORD_SCHEMA))
    health: AdapterHealth = field(default_factory=lambda: AdapterHealth("jitsi"))
    name: str = "jitsi"

    def __post_init__(self) -> None:
        self.health.actuating = not self.dry_run
        install_log_redaction()

    def _base(self, node: str) -> str:
        return self.bridges[node].rstrip("/")

    def _json(self, response: requests.Response, node: str) -> object:
        try:
            return response.json()
        except ValueError:
            self.health.count("bad_answer")
            raise AdapterError(f"jitsi {node}: the answer is not JSON") from None

    def state(self, node: str) -> BridgeState:
        """The bridge's own state: /colibri/stats, else /colibri/drain (stats off)."""
        base = self._base(node)
        response = call(
            self.session, self.health, "GET", f"{base}/colibri/stats", timeout=self.timeout,
            accept=(404,),
        )  # fmt: skip
        if response.status_code == 404:
            response = call(
                self.session, self.health, "GET", f"{base}/colibri/drain", timeout=self.timeout
            )
        body = self._json(response, node)
        try:
            state = BridgeState.parse(body)
        except AdapterError as exc:
            self.health.count("bad_answer")
            raise AdapterError(f"jitsi {node}: {exc}") from None
        self.health.count("ok")
        return state

    def drain(self, node: str, action: str) -> None:
        """POST drain/enable|disable, then read back that the bridge did it."""
        url = f"{self._base(node)}/colibri/drain/{action}"
        call(self.session, self.health, "POST", url, timeout=self.timeout)
        self.health.count("ok")
        if self.state(node).drain != (action == "enable"):
            self.health.count("bad_answer")
            raise AdapterError(f"jitsi {node}: drain/{action} answered 200 but did not take effect")

    def apply(self, placement: Placement) -> list[tuple[str, str]]:
        states: dict[str, BridgeState] = {}
        failures: list[str] = []
        for node in placement.nodes:
            if node.node not in self.bridges:
                continue
            try:
                states[node.node] = self.state(node.node)
            except AdapterError as exc:
                failures.append(str(exc) if node.node in str(exc) else f"{node.node}: {exc}")
        result = plan(placement, states, self.memory.snapshot())
        if not self.dry_run:
            for name, record in result.records.items():
                self.memory.put(name, record)
        for name, action in result.calls:
            if self.dry_run:
                log.info("jitsi dry-run: would drain/%s %s", action, name)
                continue
            try:
                self.drain(name, action)
            except AdapterError as exc:
                log.warning("jitsi: drain/%s %s failed: %s", action, name, exc)
                failures.append(f"{name}: {exc}")
                continue
            log.info("jitsi: did drain/%s %s", action, name)
            self.memory.put(name, {"ours": action == "enable", "stepped_back": False})
        if failures:
            raise AdapterError("; ".join(failures))
        held_out = tuple(n for n, r in self.memory.snapshot().items() if r.get("ours"))
        self.health.succeeded(held_out, result.held_by_operator)
        return list(result.calls)
