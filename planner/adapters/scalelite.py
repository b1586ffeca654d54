"""Scalelite: cordon a node the placement takes out, re-enable it, weight the others.

Checked against blindsidenetworks/scalelite 7498a81dc813efcb5116143c64d23493292f7b57
(``config/routes.rb`` scope ``scalelite/api``; ``app/controllers/api/servers_controller.rb``;
``app/controllers/api/scalelite_api_controller.rb``; ``app/controllers/concerns/api_helper.rb``
``verify_checksum``; ``app/services/server_update_service.rb``; ``lib/tasks/poll.rake``):

- reads ``GET /scalelite/api/getServers?checksum=C`` and writes
  ``POST /scalelite/api/updateServer?checksum=C`` with the JSON body
  ``{"id": ID, "server": {"state": "enable"|"cordon", "load_multiplier": X}}``;
  C = hex digest of the lower-camel action name + the query without the checksum (empty
  here) + LOADBALANCER_SECRET, sha256 by default (Scalelite accepts sha1/sha256/sha512,
  told apart by length). The checksum does not cover the body: use TLS.
- Scalelite answers a failed checksum, a wrong content type and an unknown route with
  HTTP 200 and an XML ``<returncode>FAILED</returncode>`` body: that is a failure here.
- ``getServers`` answers 404 ``{"error": "No servers are configured"}`` for an empty
  pool, renders ``load_multiplier`` as a string (BigDecimal) and every server's BBB
  ``secret``: the secret is dropped while parsing and never logged, kept or shown.

What it does: cordon an ``enabled`` server whose node is out; ``enable`` a server it
cordoned when the node is available again (also after Scalelite's poller turned the
drained cordoned server into ``disabled`` by itself); set ``load_multiplier`` to the
operator's own multiplier (the base, remembered in ``--adapters.state-dir``) times
:func:`desired_factor`, and back to the base when the factor is 1. Servers an operator
cordoned or disabled are left alone (and reported, so they are not online capacity);
servers outside the pool are never touched; down or stale nodes are left to Scalelite's
own health checks (with admission they are cordoned: not among the best); ``disable``,
``deleteServer`` and ``panicServer`` are never sent. If someone enables a server it
cordoned, it steps back until the node was available once.
With ``admission`` (opt-in), it also cordons the available servers that are not among
the best nodes for new rooms and enables them when they are (:func:`plan`): Scalelite
(``app/models/server.rb``, ``bigbluebutton_api_controller.rb``) adds only 1 ×
multiplier per create, re-reads loads at its next poll, and honours a cordon at once.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import requests
from confscale.planner.adapters.health import AdapterHealth
from confscale.planner.adapters.http import AdapterError, call, install_log_redaction
from confscale.planner.adapters.memory import NodeRecords
from confscale.planner.placement import NodePlacement, Placement, PressureTargets
from confscale.planner.reservations import admitted, typical_meeting, with_reserved

from confscale import redact

log = logging.getLogger(__name__)
API = "/scalelite/api"
ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}
STATES = ("enabled", "cordoned", "disabled")
# Below this pressure a node is "normal": the operator's own multiplier, unchanged.
NORMAL_PRESSURE = 0.5
MAX_FACTOR = 3.0
RECORD_SCHEMA = {
    "server_id": (str,),
    "base": (float, int),  # the operator's own load_multiplier
    "ours": (float, int, None),  # the multiplier we set (None: the base is in place)
    "cordoned": (bool,),  # we cordoned it
    "stepped_back": (bool,),  # someone enabled it while out: wait until it was back once
    "admission": (bool,),  # our cordon only keeps new rooms off (not among the best nodes)
}


def checksum(action: str, query: str, secret: str, algorithm: str = "sha256") -> str:
    """Scalelite's checksum: hex digest of action + query (without checksum) + secret."""
    return ALGORITHMS[algorithm](f"{action}{query}{secret}".encode()).hexdigest()


@dataclass(frozen=True)
class Server:
    """One getServers entry, without its BBB secret."""

    id: str
    url: str
    state: str
    load_multiplier: float
    tag: str
    online: bool

    @classmethod
    def parse(cls, raw: object) -> Server:
        if not isinstance(raw, dict) or not raw.get("id"):
            raise AdapterError("getServers: an entry without an id", "bad_answer")
        state = str(raw.get("state", ""))
        if state not in STATES:
            raise AdapterError(f"getServers: server {raw['id']} has state {state!r}")
        try:  # a string (BigDecimal) when set, the number 1.0 when never set
            multiplier = float(raw.get("load_multiplier", 1.0))
        except (TypeError, ValueError):
            raise AdapterError(
                f"getServers: server {raw['id']} has a load_multiplier that is not a number"
            ) from None
        return cls(
            id=str(raw["id"]),
            url=str(raw.get("url", "")),
            state=state,
            load_multiplier=multiplier if multiplier > 0 else 1.0,
            tag=str(raw.get("tag") or ""),
            online=raw.get("online") == "online",
        )


def match_servers(
    nodes: list[str], servers: list[Server], mapping: Mapping[str, str]
) -> dict[str, Server]:
    """node → server: by the explicit map, else the node name as the URL's host (label)."""
    by_id = {s.id: s for s in servers}
    matched: dict[str, Server] = {}
    for node in nodes:
        if node in mapping:
            if mapping[node] in by_id:
                matched[node] = by_id[mapping[node]]
            continue
        for server in servers:
            host = urlsplit(server.url).hostname or ""
            if host == node or host.split(".")[0] == node:
                matched[node] = server
                break
    return matched


def desired_factor(node: NodePlacement) -> float | None:
    """The factor on the operator's multiplier for this node (1.0 = normal; None = leave).

    Available nodes above :data:`NORMAL_PRESSURE` get 1 + 2·(p − 0.5), so 1.8 at the
    take-out pressure 0.9, rounded to 0.05 against churn. The one place that turns a
    node's state into a Scalelite weight (reservations can raise it here).
    """
    if node.state != "available" or node.pressure is None:
        return None
    excess = max(0.0, node.pressure - NORMAL_PRESSURE) / (1.0 - NORMAL_PRESSURE)
    return min(MAX_FACTOR, round((1.0 + excess) * 20) / 20)


@dataclass(frozen=True)
class Action:
    """One updateServer call, why, and the node's record once it succeeded."""

    node: str
    server_id: str
    server: dict[str, object]
    reason: str
    after: dict[str, object]


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    records: dict[str, dict]  # every matched node's record before any action
    held_by_operator: dict[str, str]  # node → why (operator cordoned/disabled it)


def _same(a: float, b: float) -> bool:
    return abs(a - b) < 0.005


def plan(
    placement: Placement,
    servers: Mapping[str, Server],
    memory: Mapping[str, dict],
    admitted: frozenset[str] | None = None,
) -> Plan:
    """The updateServer calls this placement asks for (pure).

    ``admitted`` (admission control; None: off): the available nodes new rooms should go
    to; the other available nodes are cordoned until they are among them again.
    Scalelite sends each create to its lowest-load enabled server, adding only 1 ×
    multiplier for a room that grows to tens of users over the next minutes, and
    re-reads loads once a minute; a cordon is the one change it honours at once.
    """
    actions: list[Action] = []
    records: dict[str, dict] = {}
    held: dict[str, str] = {}
    if admitted is not None and not admitted:
        admitted = None  # no node is available (our data failing?): hold nothing back
    for node in placement.nodes:
        server = servers.get(node.node)
        if server is None:
            continue
        current = server.load_multiplier
        old = memory.get(node.node) or {}
        record: dict[str, Any] = {
            "server_id": server.id,
            "base": float(old.get("base", current)),
            "ours": old.get("ours"),
            "cordoned": bool(old.get("cordoned", False)),
            "stepped_back": bool(old.get("stepped_back", False)),
            "admission": bool(old.get("admission", False)),
        }
        if record["ours"] is None or not _same(current, float(record["ours"])):
            record["base"], record["ours"] = current, None  # the operator's value now
        if server.state != "enabled" and not record["cordoned"]:
            held[node.node] = f"{server.state} by the operator in Scalelite"
            records[node.node] = record
            continue
        admit = admitted is None or node.node in admitted
        if record["cordoned"] and server.state == "enabled":
            record["cordoned"] = record["admission"] = False  # someone enabled it: do not
            record["stepped_back"] = node.state == "out" or not admit  # fight them
        if node.state == "available" and admit:
            record["stepped_back"] = False
        if node.state in ("out", "maintenance"):
            record["admission"] = False  # held out, not admission
        records[node.node] = record
        unknown = node.state in ("down", "stale")
        if unknown and admitted is None:
            continue  # Scalelite polls health itself; never act on an unknown state
        change: dict[str, object] = {}
        after = dict(record)
        reason = node.reason
        state = server.state
        # with admission a node we cannot read is not among the best: left enabled, it
        # would take every create once the others are cordoned (Scalelite takes a dead
        # server offline only after two failed polls)
        keep_off = node.state == "out" or (not admit and (unknown or node.state == "available"))
        if state == "enabled" and (
            node.state == "maintenance" or (keep_off and not record["stepped_back"])
        ):
            change["state"], after["cordoned"], state = "cordon", True, "cordoned"
            after["admission"] = node.state not in ("out", "maintenance")
            if after["admission"]:
                reason += "; not among the best nodes for new rooms (admission)"
        elif node.state == "available" and admit and record["cordoned"]:
            change["state"], after["cordoned"], state = "enable", False, "enabled"
            after["admission"] = False
            if server.state == "disabled":
                reason += "; re-enable after Scalelite's auto-disable"
            else:
                reason += "; re-enable"
        factor = desired_factor(node)
        if factor is not None and state == "enabled":
            base = float(record["base"])
            wanted = base if factor == 1.0 else round(base * factor, 2)
            if not _same(current, wanted):
                change["load_multiplier"] = wanted
                after["ours"] = None if factor == 1.0 else wanted
                reason += f"; multiplier {base:g} × {factor:g}"
        if change:
            actions.append(Action(node.node, server.id, change, reason, after))
    return Plan(tuple(actions), records, held)


@dataclass
class ScaleliteAdapter:
    """Applies placements to Scalelite (dry-run: reads getServers, logs what it would do)."""

    url: str
    secret: str = field(repr=False)
    mapping: dict[str, str] = field(default_factory=dict)
    dry_run: bool = True
    timeout: float = 10.0
    algorithm: str = "sha256"
    session: requests.Session = field(default_factory=requests.Session, repr=False)
    memory: NodeRecords = field(default_factory=lambda: NodeRecords(RECORD_SCHEMA))
    health: AdapterHealth = field(default_factory=lambda: AdapterHealth("scalelite"))
    name: str = "scalelite"
    # per node, what open reservations add to its pressure (service.reserved_pressure):
    # /next's, and the rooms Scalelite placed that the readings show starting
    reserved: Callable[[], Mapping[str, float]] | None = field(default=None, repr=False)
    # admission control: only the nodes within this many typical meetings' pressure of
    # the least-pressed available node stay enabled (None: off; plan's docstring says why)
    admission: float | None = None
    targets: PressureTargets = field(default_factory=PressureTargets, repr=False)

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"scalelite checksum algorithm must be one of {sorted(ALGORITHMS)}")
        self.health.actuating = not self.dry_run
        install_log_redaction()

    def _url(self, action: str) -> tuple[str, dict[str, str]]:
        digest = checksum(action, "", self.secret, self.algorithm)
        return f"{self.url.rstrip('/')}{API}/{action}", {"checksum": digest}

    def _where(self) -> str:
        return redact.redact_url(self.url)

    def _json(self, response: requests.Response, action: str) -> object:
        """The JSON answer, or the reason Scalelite's XML FAILED body gives (HTTP 200)."""
        text = response.text
        if "<returncode>" in text:
            key = text.split("<messageKey>", 1)[-1].split("</messageKey>", 1)[0][:64]
            result = "unauthorized" if key == "checksumError" else "bad_answer"
            self.health.count(result)
            why = {
                "checksumError": "checksum rejected (wrong secret or checksum algorithm)",
                "unsupportedRequest": "no such API (is this Scalelite ≥ 1.6 at this URL?)",
            }.get(key, f"Scalelite answered {key.strip('<>/ ') or 'an XML error'}")
            raise AdapterError(f"scalelite {action} at {self._where()}: {why}", result)
        try:
            return response.json()
        except ValueError:
            if response.status_code == 404:
                self.health.count("not_found")
                raise AdapterError(
                    f"scalelite {action} at {self._where()}: HTTP 404", "not_found"
                ) from None
            self.health.count("bad_answer")
            raise AdapterError(
                f"scalelite {action} at {self._where()}: the answer is not JSON"
            ) from None

    def servers(self) -> list[Server]:
        """getServers, parsed (secrets dropped); an empty pool is an empty list."""
        url, params = self._url("getServers")
        response = call(
            self.session,
            self.health,
            "GET",
            url,
            params=params,
            timeout=self.timeout,
            accept=(404,),
        )
        body = self._json(response, "getServers")
        if response.status_code == 404:
            if isinstance(body, dict) and body.get("error") == "No servers are configured":
                self.health.count("ok")
                return []
            self.health.count("not_found")
            raise AdapterError("scalelite getServers: HTTP 404", "not_found")
        if not isinstance(body, list):
            self.health.count("bad_answer")
            raise AdapterError("scalelite getServers: the answer is not a list of servers")
        try:
            servers = [Server.parse(raw) for raw in body]
        except AdapterError:
            self.health.count("bad_answer")
            raise
        self.health.count("ok")
        return servers

    def update_server(self, server_id: str, change: Mapping[str, object]) -> None:
        url, params = self._url("updateServer")
        response = call(
            self.session,
            self.health,
            "POST",
            url,
            params=params,
            json_body={"id": server_id, "server": dict(change)},
            timeout=self.timeout,
            accept=(400, 404),
        )
        body = self._json(response, "updateServer")
        if response.status_code in (400, 404):  # Scalelite's {"error": …} (set_server, update)
            result = "not_found" if response.status_code == 404 else "http_error"
            self.health.count(result)
            why = str(body.get("error", ""))[:200] if isinstance(body, dict) else ""
            raise AdapterError(
                f"scalelite updateServer {server_id}: HTTP {response.status_code} {why}".strip(),
                result,
            )
        if not isinstance(body, dict) or str(body.get("id")) != server_id:
            self.health.count("bad_answer")
            raise AdapterError(f"scalelite updateServer {server_id}: unexpected answer")
        self.health.count("ok")

    def decide(self, placement: Placement, servers: list[Server]) -> Plan:
        """What to change, given the placement and getServers (no I/O of its own)."""
        if self.reserved is not None:  # rooms the readings do not show the users of yet
            placement = with_reserved(placement, self.reserved())
        nodes = [n.node for n in placement.nodes if n.kind == "bbb"]
        matched = match_servers(nodes, servers, self.mapping)
        admit = None
        if self.admission is not None:
            typical = typical_meeting(n.reading for n in placement.nodes)
            band = self.admission * typical.pressure(self.targets)
            admit = admitted(placement, band)
            # a cordoned server keeps its load (an enable counts at once); not a disabled one
            ready = {n for n, s in matched.items() if s.state != "disabled" and s.online}
            if admit and not admit & ready:
                # the best nodes cannot take a create before Scalelite's next poll (a
                # server re-enabled from disabled has no load): the best of those that
                # can stay open too, or Scalelite would refuse creates
                can = replace(placement, nodes=tuple(n for n in placement.nodes if n.node in ready))
                admit = admit | admitted(can, band)
        return plan(placement, matched, self.memory.snapshot(), admit)

    def apply(self, placement: Placement) -> list[Action]:
        result = self.decide(placement, self.servers())
        if not self.dry_run:
            for node, record in result.records.items():
                self.memory.put(node, record)
        failures = []
        for action in result.actions:
            what = f"updateServer {action.server_id} ({action.node}) {action.server}"
            if self.dry_run:
                log.info("scalelite dry-run: would %s because %s", what, action.reason)
                continue
            try:
                self.update_server(action.server_id, action.server)
            except AdapterError as exc:
                log.warning("scalelite: %s failed: %s", what, exc)
                failures.append(f"{action.node}: {exc}")
                continue
            log.info("scalelite: did %s because %s", what, action.reason)
            self.memory.put(action.node, action.after)
        held_out = tuple(
            n
            for n, r in self.memory.snapshot().items()
            if r.get("cordoned") and not r.get("admission")
        )
        if failures:
            raise AdapterError("; ".join(failures))
        self.health.succeeded(held_out, result.held_by_operator)
        return list(result.actions)
